"""Errors of the serving part (the Ray Serve apps: policy, engines, classifier).

    BubblescopeError
    └── ServeError                    (code "serve")
        ├── VllmUnavailable           Ray Serve LLM (with vLLM) cannot be imported; the
        │                             message says how to install it
        ├── VllmConfigError           a vLLM serving file is wrong (ConfigError)
        └── VllmDeployError           the vLLM app cannot be deployed or does not answer a
                                      real decision at deploy (names the adapter or endpoint)

Model and adapter loading errors are the agent part's (agent/errors.py), speech and classifier
errors the perception part's. Each keeps bubblescope's picklable shape, so it survives Ray's
actor boundary.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError, ConfigError


class ServeError(BubblescopeError, code="serve"):
    """The root of every error the serve part raises."""


class VllmUnavailable(ServeError, code="serve.vllm"):
    """Ray Serve LLM (with vLLM) cannot be imported; the message says how to install it."""


class VllmConfigError(ServeError, ConfigError, code="serve.vllm-config"):
    """A vLLM serving file is wrong; one line naming the file, the key and the fix."""


class VllmDeployError(ServeError, code="serve.vllm-deploy"):
    """The vLLM app cannot be deployed, or gives no decision at deploy; one line naming the
    adapter or the endpoint."""
