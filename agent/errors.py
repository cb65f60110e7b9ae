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


class AgentError(BubblescopeError, code="agent"):
    """The root of every error the agent part raises."""


class ModelLoadError(AgentError, ConfigError, code="agent.model-load"):
    """The message is one line naming the model folder and what is wrong with it."""


class AdapterError(AgentError, ConfigError, code="agent.adapter"):
    """The message is one line naming the adapter (persona and path) and what is wrong."""


class PolicyUnavailable(AgentError, code="agent.policy-unavailable"):
    """The policy app gave no decision within the deadline; the message names the app."""
