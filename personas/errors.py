"""Errors of the personas part (see bubblescope.errors for the tree)."""

from bubblescope.errors import ConfigError


class PersonaFileError(ConfigError):
    code = "persona-file"
