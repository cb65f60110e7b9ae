"""Errors of the perception part: speech (VAD, ASR) and the category classifiers.

    BubblescopeError
    └── PerceptionError               (code "perception")
        ├── SpeechModelError          a configured speech model path is wrong or incomplete;
        │                             also a ConfigError, so the CLI reports it as a user error
        ├── AudioFormatError          audio handed to the speech path has the wrong shape or
        │                             type (also a ValueError)
        └── EmbeddingModelError       the text embedding model's files are missing or unreadable

Each keeps bubblescope's picklable shape, so it survives Ray's actor boundary.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError, ConfigError


class PerceptionError(BubblescopeError, code="perception"):
    """The root of every error the perception part raises."""


class SpeechModelError(PerceptionError, ConfigError, code="perception.speech-model"):
    """The message is one line naming the model folder and what it lacks."""


class AudioFormatError(PerceptionError, ValueError, code="perception.audio-format"):
    """Audio handed to the speech path has the wrong shape or type."""


class EmbeddingModelError(PerceptionError, code="perception.embedding-model"):
    """The text embedding model's files are missing or unreadable (message names the path)."""
