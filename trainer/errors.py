"""Errors of the training part.

    BubblescopeError
    └── TrainError                (code "trainer")
        ├── TrainConfigError      a training config or its data source is wrong (ConfigError)
        └── TrainingFailed        the Ray Train run ended without a checkpoint

Each keeps bubblescope's picklable shape, so it survives Ray's worker boundary.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError, ConfigError


class TrainError(BubblescopeError, code="trainer"):
    """The root of every error the trainer part raises."""


class TrainConfigError(TrainError, ConfigError, code="trainer.config"):
    """The message is one line naming the file, the key and what to do."""


class TrainingFailed(TrainError, code="trainer.failed"):
    """The Ray Train run ended without a checkpoint."""
