"""Errors of the agent part: model and adapter loading, and the policy client.

    BubblescopeError
    └── AgentError                    (code "agent")
        ├── ModelLoadError            a base model path is wrong or not a Qwen2.5-VL
        │                             checkpoint (ConfigError)
        ├── AdapterError              a persona's LoRA adapter is missing or corrupt (ConfigError)
        └── PolicyUnavailable         no decision from the policy app in time (Serve down,
                                      replicas restarting)

Each keeps bubblescope's picklable shape, so it survives Ray's actor boundary.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError, ConfigError


class AgentError(BubblescopeError):
    code = "agent"


class ModelLoadError(AgentError, ConfigError):
    """The message is one line naming the model folder and what is wrong with it."""

    code = "agent.model-load"


class AdapterError(AgentError, ConfigError):
    """The message is one line naming the adapter (persona and path) and what is wrong."""

    code = "agent.adapter"


class PolicyUnavailable(AgentError):
    """The policy app gave no decision within the deadline; the message names the app."""

    code = "agent.policy-unavailable"
