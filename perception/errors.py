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


class PerceptionError(BubblescopeError):
    code = "perception"


class SpeechModelError(PerceptionError, ConfigError):
    """The message is one line naming the model folder and what it lacks."""

    code = "perception.speech-model"


class AudioFormatError(PerceptionError, ValueError):
    code = "perception.audio-format"


class EmbeddingModelError(PerceptionError):
    """The text embedding model's files are missing or unreadable (message names the path)."""

    code = "perception.embedding-model"
