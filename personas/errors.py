"""Errors of the personas part (see bubblescope.errors for the tree)."""

from bubblescope.errors import ConfigError


class PersonaFileError(ConfigError):
    code = "persona-file"


class DatasetError(ConfigError):
    """A session dataset, or a source being imported into one, is malformed or missing."""

    code = "dataset"
