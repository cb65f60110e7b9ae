"""The agent policy as a device actor uses it: a client of a served model.

`ServedPolicy` is the one client interface: it builds the request, retries, and parses. Its
transports: `AgentPolicy` here (our policy app through a Ray handle, the persona's adapter as
the multiplexed model id) and `VllmPolicy` (agent/vllm_client.py: vLLM behind Ray Serve LLM,
its OpenAI API). The answer is parsed here (never executed), with the persona's median
watch time as the fallback when it does not parse. A replica that dies mid-request is retried
until `decide_timeout_s`: Serve starts a replacement, and the step is decided then, so no step
is skipped. Errors the app raises on purpose (an unknown persona, a broken adapter) are not
retried.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Sequence

from bubblescope.agent.action_grammar import parse_action
from bubblescope.agent.errors import PolicyUnavailable
from bubblescope.agent.policy import HistoryItem, Policy
from bubblescope.agent.spec import AgentPolicySpec
from bubblescope.agent.wire import (
    DEPLOYMENT,
    ClassifyReply,
    DecideReply,
    DecideRequest,
    PastView,
)
from bubblescope.contracts import Action, Observation, Served
from bubblescope.errors import BubblescopeError
from bubblescope.perception.classifier import Classifier
from bubblescope.personas.schema import Persona

REPLAY_LIMIT = 2.0  # as the baselines: nobody watches a video more than about twice through
RETRY_PAUSE_S = 0.5


def _slim(observation: Observation) -> Observation:
    """History as the prompt shows it: text and action, no frames (they are not sent twice)."""
    return observation.model_copy(update={"frames": ()})


class ServedPolicy(Policy):
    """A persona's policy answered by a served model: the request, the retries within
    `decide_timeout_s` and the parsing are here; how one request travels is the subclass's
    (`_once`), and so is which failures are worth a retry (`_retryable`)."""

    name = "agent"

    def __init__(self, spec: AgentPolicySpec, persona: Persona) -> None:
        self.spec = spec
        self.persona = persona
        self.key = spec.adapter_key(persona.id)
        self.replies = 0
        self._served: Served | None = None

    @property
    def endpoint(self) -> str:
        """What answers, as the error messages name it."""
        return f"the policy app {self.spec.deployment.app_name!r}"

    @abstractmethod
    def _once(self, request: DecideRequest, timeout_s: float) -> str:
        """The model's raw answer to `request`, within `timeout_s`."""

    @abstractmethod
    def _retryable(self, error: Exception) -> bool:
        """True for a failure of the serving system (a replica dying, a restart, a timeout);
        False for an answer that refuses the request, which a retry would only repeat."""

    def _request(self, observation: Observation, history: Sequence[HistoryItem]) -> DecideRequest:
        recent = list(history)[-self.spec.prompt.history:] if self.spec.prompt.history else []
        return DecideRequest(persona=self.persona.id, observation=observation, history=tuple(
            PastView(observation=_slim(item.observation), action=item.action) for item in recent))

    def ask(self, request: DecideRequest) -> str:
        """The raw answer, retried after serving failures until `decide_timeout_s`; then a
        PolicyUnavailable naming the persona and the endpoint (never a made-up decision)."""
        deadline = time.monotonic() + self.spec.decide_timeout_s
        while True:
            left = deadline - time.monotonic()
            try:
                return self._once(request, max(left, 1.0))
            except BubblescopeError:
                raise
            except Exception as error:
                if not self._retryable(error) or time.monotonic() + RETRY_PAUSE_S > deadline:
                    raise PolicyUnavailable(
                        f"persona {self.persona.id!r}: no decision from {self.endpoint} within "
                        f"{self.spec.decide_timeout_s:g} s ({type(error).__name__}: "
                        f"{(str(error).splitlines() or [''])[0][:300]})") from error
                time.sleep(RETRY_PAUSE_S)

    def decide(self, observation: Observation, history: Sequence[HistoryItem]) -> Action:
        raw = self.ask(self._request(observation, history))
        self.replies += 1
        cap = REPLAY_LIMIT * observation.video_duration_s if observation.video_duration_s else None
        parsed = parse_action(raw, fallback_watch_s=self.persona.stats.duration.median,
                              max_watch_s=cap)
        return parsed.action


class AgentPolicy(ServedPolicy):
    """Our policy app (transformers engine), reached by a Ray handle with the persona's
    adapter as the multiplexed model id."""

    def __init__(self, spec: AgentPolicySpec, persona: Persona, handle=None) -> None:
        super().__init__(spec, persona)
        self._handle = handle

    @property
    def handle(self):
        if self._handle is None:
            from ray import serve

            self._handle = serve.get_deployment_handle(DEPLOYMENT,
                                                       app_name=self.spec.deployment.app_name)
        return self._handle.options(multiplexed_model_id=self.key)

    def _once(self, request: DecideRequest, timeout_s: float) -> str:
        reply = DecideReply.model_validate(
            self.handle.decide.remote(request).result(timeout_s=timeout_s))
        self._served = Served(replica=reply.replica, adapter_loads=reply.adapter_loads,
                              adapter_evictions=reply.adapter_evictions)
        return reply.raw

    def _retryable(self, error: Exception) -> bool:
        return not _deliberate(error)

    def served(self) -> Served | None:
        return self._served


def _deliberate(error: Exception) -> bool:
    """An error the app raised on purpose (bad request), as opposed to a failure of Serve."""
    from ray.exceptions import RayTaskError

    cause = getattr(error, "cause", None)
    return isinstance(error, RayTaskError) and isinstance(cause, ValueError | BubblescopeError)


class VlmClassifier(Classifier):
    """The category from the policy app's base model (taxonomy-constrained prompt)."""

    name = "vlm"

    def __init__(self, app_name: str, timeout_s: float = 60, handle=None) -> None:
        self.app_name, self.timeout_s = app_name, timeout_s
        self._handle = handle

    def classify(self, observation: Observation) -> str | None:
        if self._handle is None:
            from ray import serve

            self._handle = serve.get_deployment_handle(DEPLOYMENT, app_name=self.app_name)
        reply = ClassifyReply.model_validate(
            self._handle.classify.remote(observation).result(timeout_s=self.timeout_s))
        return reply.category
