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


class PersonasError(BubblescopeError, code="personas"):
    """The root of every error the personas part raises."""


class PersonaFileError(PersonasError, ConfigError, code="personas.persona-file"):
    """A persona file, or a key in it, is wrong."""


class DatasetError(PersonasError, ConfigError, code="personas.dataset"):
    """A session dataset, or a source being imported into one, is malformed or missing."""
