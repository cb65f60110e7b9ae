"""Errors of the front door: job files, job stores and the Ray cluster the CLI talks to.

    BubblescopeError
    └── ClusterError                  (code "cluster")
        ├── JobFileError              a job file or a key in it is wrong (ConfigError, exit 2)
        ├── JobConflictError          the job id holds results of another spec, or is running
        ├── ClusterUnreachableError   no Ray cluster or dashboard answers at the address
        │                             (UnreachableError, exit 3)
        ├── ClusterAuthError          the cluster wants a token we do not have (ConfigError)
        ├── SubmissionNotFoundError   no submission by that id on the cluster (ConfigError)
        └── ClusterRequestError       the dashboard answered, but refused or failed the request

Each keeps bubblescope's picklable shape, so it survives Ray's actor boundary.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError, ConfigError, UnreachableError


class ClusterError(BubblescopeError, code="cluster"):
    """The root of every error the cluster part raises."""


class JobFileError(ClusterError, ConfigError, code="cluster.job-file"):
    """A job file, or a key in it, is wrong."""


class JobConflictError(ClusterError, code="cluster.job-conflict"):
    """The job id already holds results of a different spec, or the job is running."""


class ClusterUnreachableError(ClusterError, UnreachableError, code="cluster.unreachable"):
    """No Ray cluster or dashboard answers at the address."""


class ClusterAuthError(ClusterError, ConfigError, code="cluster.auth"):
    """The cluster wants a token we do not have."""


class SubmissionNotFoundError(ClusterError, ConfigError, code="cluster.submission-not-found"):
    """No submission by that id is on the cluster."""


class ClusterRequestError(ClusterError, code="cluster.request"):
    """The dashboard answered, but refused or failed the request."""
