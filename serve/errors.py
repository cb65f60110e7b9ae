"""Errors of the serving part (perception models behind the policy).

    BubblescopeError
    └── ServeError               (code "serve")
        ├── SpeechModelError     a configured speech model path is wrong or incomplete; also a
        │                        ConfigError, so the CLI reports it as a user error (exit 2)
        ├── AudioFormatError     audio handed to the speech path has the wrong shape or type
        ├── ModelLoadError       a base model path is wrong or not a Qwen2.5-VL checkpoint (ConfigError)
        └── AdapterError         a persona's LoRA adapter is missing or corrupt (ConfigError)

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


class ModelLoadError(ServeError, ConfigError):
    """The message is one line naming the model folder and what is wrong with it."""

    code = "serve.model"


class AdapterError(ServeError, ConfigError):
    """The message is one line naming the adapter (persona and path) and what is wrong."""

    code = "serve.adapter"
