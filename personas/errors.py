"""Errors of the personas part: persona files and session datasets.

    BubblescopeError
    └── PersonasError                 (code "personas")
        ├── PersonaFileError          a persona file or a key in it is wrong (ConfigError)
        └── DatasetError              a session dataset, or a source being imported into one,
                                      is malformed or missing (ConfigError)

Each keeps bubblescope's picklable shape, so it survives Ray's actor boundary.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError, ConfigError


class PersonasError(BubblescopeError):
    code = "personas"


class PersonaFileError(PersonasError, ConfigError):
    code = "personas.persona-file"


class DatasetError(PersonasError, ConfigError):
    """A session dataset, or a source being imported into one, is malformed or missing."""

    code = "personas.dataset"
