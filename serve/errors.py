"""Errors of the serving part (perception models behind the policy).

    BubblescopeError
    └── ServeError               (code "serve")
        ├── SpeechModelError     a configured speech model path is wrong or incomplete; also a
        │                        ConfigError, so the CLI reports it as a user error (exit 2)
        └── AudioFormatError     audio handed to the speech path has the wrong shape or type

Each keeps bubblescope's picklable shape, so it survives Ray's actor boundary.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError, ConfigError


class ServeError(BubblescopeError):
    code = "serve"


class SpeechModelError(ServeError, ConfigError):
    """The message is one line naming the model folder and what it lacks."""

    code = "serve.speech-model"


class AudioFormatError(ServeError, ValueError):
    code = "serve.audio"
