"""The persona policy on Ray Serve: one base model per replica, persona adapters multiplexed.

Requests name their adapter as Serve's multiplexed model id (the persona id; '' for the base
model), so Serve routes a persona to a replica that already holds its adapter, and each replica
keeps at most `max_adapters_per_replica` loaded (least recently used go). Concurrent requests
are batched (`serve/batching.py`: not `serve.batch`, which splits a batch by adapter) and each
batch is generated in one pass, adapters mixed. The reversed persona of a counterfactual phase
is the same adapter: the reversal acts on the decided watch time in the device actor, so there
is no second adapter.

Ray handles (device actors) and HTTP (`POST /<app>` with a JSON `DecideRequest` and the
`serve_multiplexed_model_id` header) reach the same method. The builder validates the spec,
then binds; the engine class is injected (`EchoEngine` for routing tests). `policy_serve_config`
is the app's one description: a Serve config that `deploy_policy` runs and that
`cluster/k8s_render.py` writes into the policy RayService's serveConfigV2.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import threading
from collections import defaultdict
from typing import Any

from ray import serve

from bubblescope.agent.category_prompt import category_prompt, parse_category
from bubblescope.agent.prompt import Prompt, decision_prompt
from bubblescope.agent.spec import AgentPolicySpec
from bubblescope.agent.wire import DEPLOYMENT, ClassifyReply, DecideReply, DecideRequest
from bubblescope.contracts import Observation
from bubblescope.personas.schema import Persona
from bubblescope.serve.batching import Batcher
from bubblescope.serve.engine import Engine, TransformersEngine


class _AdapterLease:
    """What Serve's multiplexing caches per adapter; evicting it unloads the adapter, unless
    the same adapter has been loaded again since. Serve calls `__del__` itself when it evicts,
    and Python calls it again when the lease is collected: only the first call releases."""

    def __init__(self, server: PolicyServer, key: str, generation: int) -> None:
        self.server, self.key, self.generation = server, key, generation
        self.released = False

    def __del__(self) -> None:
        if not self.released:
            self.released = True
            self.server.release(self.key, self.generation)


class _Churn:
    """Adapter loads and evictions not yet reported: each answer carries (and clears) them, so
    a job's step rows add up to the replica's churn with nothing counted twice."""

    def __init__(self) -> None:
        self.loads = self.evictions = 0
        self._lock = threading.Lock()  # counted in worker threads, taken on the event loop

    def loaded(self) -> None:
        with self._lock:
            self.loads += 1

    def evicted(self) -> None:
        with self._lock:
            self.evictions += 1

    def take(self) -> tuple[int, int]:
        with self._lock:
            taken = (self.loads, self.evictions)
            self.loads = self.evictions = 0
        return taken


class PolicyServer:
    def __init__(self, spec: dict, personas: dict[str, dict], engine_cls: type[Engine]) -> None:
        self.spec = AgentPolicySpec.model_validate(spec)
        self.personas = {pid: Persona.model_validate(p) for pid, p in personas.items()}
        self.prompt_config = self.spec.prompt
        self.engine = engine_cls(self.spec.base_model)
        self.generations: dict[str, int] = defaultdict(int)
        self.lock = asyncio.Lock()  # one engine call at a time: loads, unloads, generation
        # adapters Serve evicted, unloaded at the next engine call that does not use them
        self.evicted: dict[str, int] = {}
        self._evicted_lock = threading.Lock()
        self.churn = _Churn()
        self.batcher = Batcher(self._generate, self.spec.deployment.max_batch_size,
                               self.spec.deployment.batch_wait_s)

    async def get_adapter(self, key: str) -> _AdapterLease:
        """Serve's multiplexed loader; the builder wraps it in `serve.multiplexed` with the
        configured bound (Serve finds the method by this name, so it must keep it)."""
        path = self.spec.adapters[key]
        async with self.lock:
            await asyncio.to_thread(self._settle, set(), key)
            await asyncio.to_thread(self.engine.load_adapter, key, path)
            self.generations[key] += 1
            self.churn.loaded()
            return _AdapterLease(self, key, self.generations[key])

    def release(self, key: str, generation: int) -> None:
        """Serve evicted `key` (from a worker thread, maybe while a batch that uses it is being
        generated): unloading waits for the next engine call that does not need it."""
        with self._evicted_lock:
            if self.generations.get(key) == generation:
                self.evicted[key] = generation
                self.churn.evicted()

    def _settle(self, needed: set[str], loading: str = "") -> None:
        """Under the engine lock: unload what Serve evicted and nothing in `needed` uses, and
        load again what `needed` holds but an earlier eviction already unloaded (`loading`:
        the adapter the caller is about to load itself)."""
        with self._evicted_lock:
            gone = [key for key, generation in self.evicted.items()
                    if key not in needed | {loading} or self.generations.get(key) != generation]
            for key in gone:
                if self.generations.get(key) == self.evicted.pop(key):
                    self.engine.unload_adapter(key)
        missing = {key for key in needed if key} - set(self.engine.loaded())
        for key in sorted(missing):
            self.engine.load_adapter(key, self.spec.adapters[key])
            self.churn.loaded()

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
        loads, evictions = self.churn.take()
        return DecideReply(raw=raw, adapter=key, replica=str(os.getpid()), batch_size=size,
                           adapter_loads=loads, adapter_evictions=evictions)

    async def classify(self, observation: Observation | dict) -> ClassifyReply:
        """The video's category by the base model, asked with a taxonomy-constrained prompt."""
        observation = Observation.model_validate(observation)
        raw, _ = await self.batched(("", category_prompt(observation, self.prompt_config)))
        return ClassifyReply(raw=raw, category=parse_category(raw))

    async def batched(self, item: tuple[str, Prompt]) -> tuple[str, int]:
        """The answer to one (adapter, prompt) item and the size of the batch it was generated
        in: concurrent items are gathered into batches that mix adapters."""
        return await self.batcher.submit(item)

    async def _generate(self, items: list[tuple[str, Prompt]]) -> list[tuple[str, int]]:
        keys = [key for key, _ in items]
        prompts = [prompt for _, prompt in items]
        async with self.lock:
            await asyncio.to_thread(self._settle, set(keys))
            texts = await asyncio.to_thread(self.engine.generate, keys, prompts,
                                            self.spec.generation)
        return [(text, len(items)) for text in texts]

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
    """PolicyServer with the multiplexing bound of `spec` applied (its batch size and wait
    the server's own batcher reads from the spec)."""
    deployment = spec.deployment
    multiplexed = serve.multiplexed(max_num_models_per_replica=deployment.max_adapters_per_replica)
    return type(DEPLOYMENT, (PolicyServer,), {
        "get_adapter": multiplexed(PolicyServer.get_adapter),
    })


# The Serve config's import_path: Serve calls this builder with the config's `args`.
IMPORT_PATH = "bubblescope.serve.policy_app:policy_app"
DEFAULT_ENGINE = "bubblescope.serve.engine:TransformersEngine"


def _import(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def engine_path(engine_cls: type[Engine]) -> str:
    """`module:Class` of an engine, the form the Serve config's args carry (a replica imports
    it, so it must be importable there)."""
    if "<" in engine_cls.__qualname__ or engine_cls.__module__ == "__main__":
        raise ValueError(f"engine {engine_cls.__qualname__} is not importable by name; define "
                         "it at the top level of an importable module")
    return f"{engine_cls.__module__}:{engine_cls.__qualname__}"


def deployment_options(spec: AgentPolicySpec) -> dict[str, Any]:
    """The deployment's options for `spec`, as the Serve config's `deployments` entry names
    them; the builder applies the same ones, so the app is the same whether Serve builds it
    from a config file (KubeRay's serveConfigV2) or `serve.run` gets it (`serve up`)."""
    deployment = spec.deployment
    actor: dict[str, float] = {"num_cpus": deployment.cpus_per_replica}
    if deployment.gpus_per_replica:
        actor["num_gpus"] = deployment.gpus_per_replica
    scaling: dict[str, Any] = (
        {"autoscaling_config": deployment.autoscaling.serve_config(deployment.replicas)} if deployment.autoscaling
        else {"num_replicas": deployment.replicas})
    return {
        **scaling, "ray_actor_options": actor,
        "max_ongoing_requests": deployment.max_ongoing_requests,
        "health_check_period_s": 2, "health_check_timeout_s": 30,
        # one access-log line per decision would drown the audit's own output
        "logging_config": {"enable_access_log": False, "log_level": "WARNING"},
    }


def policy_serve_config(spec: AgentPolicySpec, personas: list[Persona],
                        engine: str = DEFAULT_ENGINE) -> dict[str, Any]:
    """The Serve config (`serve deploy`, KubeRay's serveConfigV2) of the policy app: the one
    description of it, which `deploy_policy` (so `serve up` and an audit) runs too.

    Plain data (YAML/JSON-able). Serve's HTTP options are not in it: they belong to the Serve
    instance, not the app (`deploy_policy` starts Serve on `http_port`; on KubeRay, Serve
    listens on 0.0.0.0:8000, the Service's port). No HTTP port: no route (handles only).
    """
    name = spec.deployment.app_name
    return {"applications": [{
        "name": name,
        "route_prefix": f"/{name}" if spec.deployment.http_port else None,
        "import_path": IMPORT_PATH,
        "args": {"spec": spec.model_dump(mode="json"),
                 "personas": {p.id: p.model_dump(mode="json") for p in personas},
                 "engine": engine},
        "deployments": [{"name": DEPLOYMENT, **deployment_options(spec)}],
    }]}


def policy_app(args: dict[str, Any]):
    """Serve's application builder (the config's import_path): the app `args` describe.

    Multiplexing and batching come from the spec (they are code, not deployment options);
    the options are `deployment_options(spec)`, which a config's `deployments` repeats.
    """
    spec = AgentPolicySpec.model_validate(args["spec"])
    app = serve.deployment(_server_class(spec), name=DEPLOYMENT, **deployment_options(spec))
    return app.bind(spec.model_dump(mode="json"), dict(args["personas"]),
                    _import(args["engine"]))


def build_policy_app(spec: AgentPolicySpec, personas: list[Persona],
                     engine_cls: type[Engine] = TransformersEngine):
    """The Serve application for `spec`, ready for `serve.run`: built from its Serve config
    exactly as Serve builds a config file's app (import_path called with args)."""
    return _from_config(policy_serve_config(spec, personas, engine_path(engine_cls)))


def _from_config(config: dict[str, Any]):
    """The application of a one-app Serve config, as Serve builds it: the builder named by
    import_path called with args (whose options equal the config's `deployments`)."""
    app_config = config["applications"][0]
    return _import(app_config["import_path"])(app_config["args"])


def deploy_policy(spec: AgentPolicySpec, personas: list[Persona],
                  engine_cls: type[Engine] = TransformersEngine):
    """Deploy (or update) the policy app from its Serve config; returns its handle. Serve
    fixes its HTTP settings when it first starts on a cluster, so `http_port` applies only to
    a fresh Serve."""
    config = policy_serve_config(spec, personas, engine_path(engine_cls))
    app, app_config = _from_config(config), config["applications"][0]
    port = spec.deployment.http_port
    serve.start(http_options={"host": "127.0.0.1", "port": port} if port
                else {"location": "NoServer"})
    return serve.run(app, name=app_config["name"], route_prefix=app_config["route_prefix"],
                     blocking=False)
