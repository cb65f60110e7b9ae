"""Errors of the front door (see bubblescope.errors for the tree)."""

from bubblescope.errors import BubblescopeError, ConfigError


class JobFileError(ConfigError):
    code = "job-file"


class JobConflictError(BubblescopeError):
    """The job id already holds results of a different spec, or the job is running."""

    code = "job-conflict"
