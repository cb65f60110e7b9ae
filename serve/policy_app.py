"""The persona policy on Ray Serve: one base model per replica, persona adapters multiplexed.

Requests name their adapter as Serve's multiplexed model id (the persona id; '' for the base
model), so Serve routes a persona to a replica that already holds its adapter, and each replica
keeps at most `max_adapters_per_replica` loaded (least recently used go). Concurrent requests
are batched (`serve.batch`) and each batch is generated per adapter. The reversed persona of a
counterfactual phase is the same adapter: the reversal acts on the decided watch time in the
device actor, so there is no second adapter.

Ray handles (device actors) and HTTP (`POST /<app>` with a JSON `DecideRequest` and the
`serve_multiplexed_model_id` header) reach the same method. The builder validates the spec,
then binds; the engine class is injected (`EchoEngine` for routing tests).
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict

from ray import serve

from bubblescope.agent.category_prompt import category_prompt, parse_category
from bubblescope.agent.prompt import Prompt, decision_prompt
from bubblescope.agent.spec import AgentPolicySpec
from bubblescope.agent.wire import DEPLOYMENT, ClassifyReply, DecideReply, DecideRequest
from bubblescope.contracts import Observation
from bubblescope.personas.schema import Persona
from bubblescope.serve.engine import Engine, TransformersEngine


class _AdapterLease:
    """What Serve's multiplexing caches per adapter; evicting it unloads the adapter, unless
    the same adapter has been loaded again since."""

    def __init__(self, server: PolicyServer, key: str, generation: int) -> None:
        self.server, self.key, self.generation = server, key, generation

    def __del__(self) -> None:
        self.server.release(self.key, self.generation)


class PolicyServer:
    def __init__(self, spec: dict, personas: dict[str, dict], engine_cls: type[Engine]) -> None:
        self.spec = AgentPolicySpec.model_validate(spec)
        self.personas = {pid: Persona.model_validate(p) for pid, p in personas.items()}
        self.prompt_config = self.spec.prompt
        self.engine = engine_cls(self.spec.base_model)
        self.generations: dict[str, int] = defaultdict(int)
        self.lock = asyncio.Lock()

    async def get_adapter(self, key: str) -> _AdapterLease:
        """Serve's multiplexed loader; the builder wraps it in `serve.multiplexed` with the
        configured bound (Serve finds the method by this name, so it must keep it)."""
        path = self.spec.adapters[key]
        async with self.lock:
            await asyncio.to_thread(self.engine.load_adapter, key, path)
            self.generations[key] += 1
            return _AdapterLease(self, key, self.generations[key])

    def release(self, key: str, generation: int) -> None:
        if self.generations.get(key) == generation:
            self.engine.unload_adapter(key)

    async def _adapter_key(self) -> str:
        key = serve.get_multiplexed_model_id()
        if key:
            if key not in self.spec.adapters:
                raise ValueError(f"no adapter for persona {key!r} in this policy app")
            await self.get_adapter(key)
        return key

    async def decide(self, request: DecideRequest | dict) -> DecideReply:
        request = DecideRequest.model_validate(request)
        key = await self._adapter_key()
        prompt = self._prompt(request)  # a bad request fails alone, before it joins a batch
        raw, size = await self.batched((key, prompt))
        return DecideReply(raw=raw, adapter=key, replica=str(os.getpid()), batch_size=size)

    async def classify(self, observation: Observation | dict) -> ClassifyReply:
        """The video's category by the base model, asked with a taxonomy-constrained prompt."""
        observation = Observation.model_validate(observation)
        raw, _ = await self.batched(("", category_prompt(observation, self.prompt_config)))
        return ClassifyReply(raw=raw, category=parse_category(raw))

    async def batched(self, items: list[tuple[str, Prompt]]) -> list[tuple[str, int]]:
        """Called with one (adapter, prompt) item; the builder wraps it in `serve.batch`, which
        hands it the items that arrived together. Answers with (text, size of its group)."""
        groups: dict[str, list[int]] = defaultdict(list)
        for index, (key, _) in enumerate(items):
            groups[key].append(index)
        replies: list[tuple[str, int]] = [("", 0)] * len(items)
        for key, indices in groups.items():
            async with self.lock:
                texts = await asyncio.to_thread(self.engine.generate, key,
                                                [items[i][1] for i in indices],
                                                self.spec.generation)
            for i, text in zip(indices, texts, strict=True):
                replies[i] = (text, len(indices))
        return replies

    def _prompt(self, request: DecideRequest):
        persona = self.personas.get(request.persona)
        if persona is None and self.prompt_config.persona:
            raise ValueError(f"unknown persona {request.persona!r} in this policy app")
        history = [(view.observation, view.action) for view in request.history]
        return decision_prompt(persona, request.observation, history, self.prompt_config)

    async def __call__(self, http_request) -> dict:
        reply = await self.decide(await http_request.json())
        return reply.model_dump()

    def loaded_adapters(self) -> list[str]:
        return self.engine.loaded()


def _server_class(spec: AgentPolicySpec) -> type:
    """PolicyServer with the multiplexing bound and batch size of `spec` applied."""
    deployment = spec.deployment
    multiplexed = serve.multiplexed(max_num_models_per_replica=deployment.max_adapters_per_replica)
    batched = serve.batch(max_batch_size=deployment.max_batch_size,
                          batch_wait_timeout_s=deployment.batch_wait_s)
    return type(DEPLOYMENT, (PolicyServer,), {
        "get_adapter": multiplexed(PolicyServer.get_adapter),
        "batched": batched(PolicyServer.batched),
    })


def build_policy_app(spec: AgentPolicySpec, personas: list[Persona],
                     engine_cls: type[Engine] = TransformersEngine):
    """The Serve application for `spec`, ready for `serve.run`."""
    deployment = spec.deployment
    options = {"num_cpus": deployment.cpus_per_replica}
    if deployment.gpus_per_replica:
        options["num_gpus"] = deployment.gpus_per_replica
    app = serve.deployment(
        _server_class(spec), name=DEPLOYMENT, num_replicas=deployment.replicas,
        ray_actor_options=options, max_ongoing_requests=deployment.max_ongoing_requests,
        health_check_period_s=2, health_check_timeout_s=30,
        # one access-log line per decision would drown the audit's own output
        logging_config={"enable_access_log": False, "log_level": "WARNING"},
    )
    return app.bind(spec.model_dump(mode="json"),
                    {p.id: p.model_dump(mode="json") for p in personas}, engine_cls)


def deploy_policy(spec: AgentPolicySpec, personas: list[Persona],
                  engine_cls: type[Engine] = TransformersEngine):
    """Deploy (or update) the policy app; returns its handle. Serve fixes its HTTP settings
    when it first starts on a cluster, so `http_port` applies only to a fresh Serve."""
    app = build_policy_app(spec, personas, engine_cls)
    name, port = spec.deployment.app_name, spec.deployment.http_port
    serve.start(http_options={"host": "127.0.0.1", "port": port} if port
                else {"location": "NoServer"})
    return serve.run(app, name=name, route_prefix=f"/{name}" if port else None, blocking=False)
