"""Decisions per second of the persona policy: C concurrent devices x A persona adapters, the
transformers engine in-process and through Ray Serve.

The tiny Qwen2.5-VL decides on simulated observations (the prompt the quickstart agents use),
greedy. Each row runs C device clients back to back, client i playing persona i mod A, each
with its own adapter; a decision counts when it ends inside the `--seconds` window that opens
`--warmup` seconds after the clients start. The paths of a row run in turn for each device
count, so their ratio compares the same moment of a shared machine. Paths (`PATHS`,
`--paths`):
- `in-process`: the policy server's own batching (`PolicyServer.batched`: the batcher and one
  engine call per batch, adapters mixed) on an event loop in this process, no Serve; clients
  build their prompts and wait for their answers from threads;
- `serve`: the deployed policy app (multiplexing and batching on), clients through the device
  actors' own client (`AgentPolicy`: a Ray handle per persona);
- `vllm`: the vLLM CPU engine behind Ray Serve LLM, the adapters loaded at run time from a
  local S3 (moto's server), clients through the device actors' vLLM client (`VllmPolicy`,
  HTTP). Runs only in the vLLM venv (`make vllm-env`), where the other paths run too.
All use `--threads` CPUs per replica (Ray turns a replica's CPUs into its torch threads), so
the ratio serve / in-process is Serve's own cost. Rows with batch 1 are one decision at a time
(vLLM batches on its own: its rows are always "batch" by the engine's scheduler);
`serve, echo engine` rows use the model-free engine (Serve's cost per request alone). Each
path is a context manager taking (spec, personas, engine) and giving a blocking, thread-safe
`decide(client, observation)`.

    .venv/bin/python bench/policy_serving.py [--seconds 10] [--paths in-process,serve] \
        [--out bench/RESULTS.md]
    .venv-vllm/bin/python bench/policy_serving.py --paths in-process,vllm --devices 16,64 \
        --adapters 1,16 --ab-rounds 0 [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("RAY_SERVE_QUEUE_LENGTH_RESPONSE_DEADLINE_S", "1")

import ray  # noqa: E402
from ray import serve  # noqa: E402

from bubblescope.agent.policy import HistoryItem  # noqa: E402
from bubblescope.agent.prompt import decision_prompt  # noqa: E402
from bubblescope.agent.serve_client import AgentPolicy  # noqa: E402
from bubblescope.agent.spec import AgentPolicySpec, GenerationSpec, PromptSpec  # noqa: E402
from bubblescope.contracts import Action  # noqa: E402
from bubblescope.personas.loader import load_persona  # noqa: E402
from bubblescope.serve.engine import EchoEngine, Engine, TransformersEngine  # noqa: E402
from bubblescope.serve.policy_app import PolicyServer, deploy_policy  # noqa: E402
from bubblescope.sim.catalogue import CatalogueConfig, build_catalogue  # noqa: E402
from bubblescope.sim.in_process_device import observe_video  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))  # tests.support: the local S3 the vLLM path loads adapters from
from steps_report import load_average, machine_line, publish  # noqa: E402

PROMPT = {"history": 3, "frames": 0, "instructions": False, "transcript_chars": 200}
GENERATION = GenerationSpec(max_new_tokens=32, temperature=0)
DEVICES = (1, 4, 16, 64)
ADAPTERS = (1, 4, 16)
Decide = Callable[[int, object], None]


def observations(n: int):
    catalogue = build_catalogue(CatalogueConfig())
    clock = datetime(2026, 1, 1, tzinfo=UTC)
    return [observe_video(catalogue, video, clock) for video in range(0, 7 * n, 7)]


def build_model(folder: Path, adapters: int, rank: int) -> tuple[Path, dict[str, str]]:
    from peft import LoraConfig, get_peft_model

    from bubblescope.agent.vlm import load_model
    from bubblescope.trainer.config import LANGUAGE_MODULES
    from bubblescope.trainer.tiny_corpus import tiny_corpus
    from bubblescope.trainer.tiny_model import build_tiny_model

    base = build_tiny_model(folder / "tiny", tiny_corpus(catalogue_step=40))
    paths = {}
    for i in range(adapters):
        model = get_peft_model(load_model(base), LoraConfig(
            r=rank, lora_alpha=2 * rank, target_modules=LANGUAGE_MODULES,
            init_lora_weights=False))
        paths[f"p{i}"] = str(folder / f"adapter-{i}")
        model.save_pretrained(paths[f"p{i}"])
    return base, paths


def spec_for(base: Path, adapters: dict[str, str], batch: int, threads: int, wait_s: float,
             name: str) -> AgentPolicySpec:
    return AgentPolicySpec.model_validate({
        "base_model": str(base), "adapters": adapters, "prompt": PROMPT,
        "generation": GENERATION.model_dump(), "decide_timeout_s": 300,
        "deployment": {"app_name": name, "max_batch_size": batch, "batch_wait_s": wait_s,
                       "max_adapters_per_replica": 16, "cpus_per_replica": threads,
                       "http_port": None, "max_ongoing_requests": 128}})


@contextlib.contextmanager
def in_process(spec: AgentPolicySpec, personas, engine: type[Engine]) -> Iterator[Decide]:
    """The policy server's batching and engine on an event loop of this process."""
    import torch

    torch.set_num_threads(int(spec.deployment.cpus_per_replica))
    server = PolicyServer(spec.model_dump(mode="json"),
                          {p.id: p.model_dump(mode="json") for p in personas}, engine)
    for key, path in spec.adapters.items():
        server.engine.load_adapter(key, path)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def decide(client: int, observation) -> None:
        persona = personas[client % len(personas)]
        history = [(observation, Action(watch_s=3.0))]  # as the Serve clients send
        prompt = decision_prompt(persona, observation, history, spec.prompt)
        key = spec.adapter_key(persona.id)
        asyncio.run_coroutine_threadsafe(server.batched((key, prompt)), loop).result(300)

    try:
        yield decide
    finally:
        asyncio.run_coroutine_threadsafe(_cancel_tasks(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


async def _cancel_tasks() -> None:
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            task.cancel()


@contextlib.contextmanager
def through_serve(spec: AgentPolicySpec, personas, engine: type[Engine]) -> Iterator[Decide]:
    """The deployed policy app, reached as the device actors reach it (each device actor has
    its own handle; the clients here share one, as they share one process)."""
    handle = deploy_policy(spec, personas, engine)
    policies: dict[int, AgentPolicy] = {}

    def decide(client: int, observation) -> None:
        if client not in policies:
            policies[client] = AgentPolicy(spec, personas[client % len(personas)], handle)
        history = [HistoryItem(observation, Action(watch_s=3.0))]
        policies[client].decide(observation, history)

    try:
        yield decide
    finally:
        serve.delete(spec.deployment.app_name)


@contextlib.contextmanager
def through_vllm(spec: AgentPolicySpec, personas, engine: type[Engine]) -> Iterator[Decide]:
    """vLLM behind Ray Serve LLM, deployed and checked as `serve up` does, the adapters
    uploaded to a local S3 first; clients through the device actors' HTTP client."""
    from bubblescope.agent.vllm_client import VllmPolicy
    from bubblescope.serve.vllm_deploy import deploy_vllm_policy
    from tests.support.s3_server import running_s3

    del engine  # vLLM is the engine
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as folder, \
            running_s3(Path(folder)) as s3, _environment(s3.env):
        agent = vllm_agent(spec, s3.create_bucket(spec.deployment.app_name), s3.env)
        deploy_vllm_policy(agent, personas, start_timeout_s=900)
        policies = {i: VllmPolicy(agent, persona) for i, persona in enumerate(personas)}

        def decide(client: int, observation) -> None:
            history = [HistoryItem(observation, Action(watch_s=3.0))]
            policies[client % len(personas)].decide(observation, history)

        try:
            yield decide
        finally:
            serve.delete(agent.deployment.app_name)


def vllm_agent(spec: AgentPolicySpec, bucket: str, env: dict[str, str]) -> AgentPolicySpec:
    """`spec` served by the vLLM CPU engine: as many adapters per replica as the spec has, on
    a replica of the same CPUs, its own HTTP port."""
    from tests.support.system_programs import free_port

    rank = max(_rank(path) for path in spec.adapters.values())
    engine = {"kind": "vllm", "adapters_dir": f"{bucket}/adapters", "device": "cpu",
              "dtype": "float32", "enforce_eager": True, "max_lora_rank": rank,
              "max_loras_per_replica": len(spec.adapters), "max_model_len": 4096,
              "images_per_prompt": 0, "cpus_per_replica": spec.deployment.cpus_per_replica,
              "env_vars": env}
    data = spec.model_dump(mode="json")
    data["deployment"]["http_port"] = free_port()
    return AgentPolicySpec.model_validate({**data, "engine": engine})


def _rank(adapter: str) -> int:
    import json

    return int(json.loads((Path(adapter) / "adapter_config.json").read_text())["r"])


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """The driver uploads the adapters as a user's shell would, with these variables set."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


PATHS = {"in-process": in_process, "serve": through_serve, "vllm": through_vllm}


def measure(decide: Decide, obs, clients: int, seconds: float, warmup_s: float) -> dict:
    """Steady state: C clients decide back to back; what ends inside the window that opens
    after `warmup_s` counts (so the queue is full when it opens)."""
    began = time.perf_counter()
    opens, closes = began + warmup_s, began + warmup_s + seconds

    def client(index: int) -> list[float]:
        times, k = [], index
        while (start := time.perf_counter()) < closes:
            decide(index, obs[k % len(obs)])
            if opens <= (end := time.perf_counter()) <= closes:
                times.append(end - start)
            k += clients
        return times

    with ThreadPoolExecutor(clients) as pool:
        latencies = sorted(t for times in pool.map(client, range(clients)) for t in times)
    return {"per_s": len(latencies) / seconds, "decisions": len(latencies),
            "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
            if latencies else float("nan")}


def interleaved(base: Path, adapters: dict[str, str], obs, rounds: int, threads: int) -> dict:
    """Seconds per decision of one engine, variants taken in turn within each round (so a
    shared machine's drift hits all alike): batches of 16 with the base model, 1, 4 and 16
    adapters, and one decision at a time; medians over rounds."""
    import torch

    torch.set_num_threads(threads)
    persona = load_persona(ROOT / "examples" / "personas" / "concentrated.yaml")
    engine = TransformersEngine(str(base))
    for key, path in adapters.items():
        engine.load_adapter(key, path)
    keys = list(adapters)
    prompts = [decision_prompt(persona, o, [(o, Action(watch_s=3.0))], PromptSpec(**PROMPT))
               for o in obs[:16]]
    variants = {"batch 16, base model": [""] * 16, "batch 16, 1 adapter": [keys[0]] * 16,
                "batch 16, 4 adapters": [keys[i % 4] for i in range(16)],
                "batch 16, 16 adapters": keys[:16], "batch 1, 1 adapter": [keys[0]]}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds + 1):  # the first round warms up
        for name, chosen in variants.items():
            start = time.perf_counter()
            engine.generate(chosen, prompts[:len(chosen)], GENERATION)
            times[name].append((time.perf_counter() - start) / len(chosen))
    return {name: statistics.median(values[1:]) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10, help="measured window per row")
    parser.add_argument("--warmup", type=float, default=3, help="seconds before the window")
    parser.add_argument("--paths", default="in-process,serve")
    parser.add_argument("--threads", type=int, default=1, help="torch threads / replica CPUs")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank of each adapter")
    parser.add_argument("--batch-wait", type=float, default=0.1, help="deployment.batch_wait_s")
    parser.add_argument("--ab-rounds", type=int, default=5,
                        help="rounds of the interleaved engine comparison (0: none)")
    parser.add_argument("--only-ab", action="store_true", help="the engine comparison alone")
    parser.add_argument("--devices", default=",".join(map(str, DEVICES)),
                        help="concurrent device counts of the grid")
    parser.add_argument("--adapters", default=",".join(map(str, ADAPTERS)),
                        help="adapter counts of the grid")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    devices = tuple(int(n) for n in args.devices.split(","))
    adapter_counts = tuple(int(n) for n in args.adapters.split(","))
    if not args.only_ab:
        ray.init(include_dashboard=False, log_to_driver=False)
    persona = load_persona(ROOT / "examples" / "personas" / "concentrated.yaml")
    obs = observations(64)
    paths = args.paths.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        base, adapters = build_model(Path(scratch), max(max(adapter_counts), 16), args.rank)
        ab = interleaved(base, adapters, obs, args.ab_rounds, args.threads) \
            if args.ab_rounds else {}
        print(ab, flush=True)
        if args.only_ab:
            return

        def run(n_adapters: int, batch: int, devices, engine=TransformersEngine,
                only: tuple[str, ...] = ()) -> None:
            """The rows of (n_adapters, batch) for `devices`, the paths in turn for each
            device count, so that their ratio compares the same moment of a shared machine."""
            chosen = dict(list(adapters.items())[:n_adapters])
            personas = [persona.model_copy(update={"id": pid}) for pid in chosen]
            spec = spec_for(base, chosen, batch, args.threads, args.batch_wait,
                            f"bench-{n_adapters}-{batch}")
            label = "" if engine is TransformersEngine else ", echo engine"
            with contextlib.ExitStack() as stack:
                deciders = {path: stack.enter_context(PATHS[path](spec, personas, engine))
                            for path in paths if not only or path in only}
                for clients in devices:
                    for path, decide in deciders.items():
                        row = measure(decide, obs, clients, args.seconds, args.warmup)
                        rows.append((path + label, batch, clients, n_adapters, row))
                        print(rows[-1], flush=True)

        for n_adapters in adapter_counts:
            run(n_adapters, 16, devices)
        if set(paths) & {"in-process", "serve"}:
            run(1, 1, (16,), only=("in-process", "serve"))
        if "serve" in paths:
            run(1, 16, (16,), EchoEngine, only=("serve",))
    report(rows, ab, args)


def report(rows, ab: dict, args) -> None:
    lines = [
        "## Policy serving: decisions per second, devices x adapters, in-process vs Ray Serve "
        "(tiny Qwen2.5-VL)", "", f"Machine: {machine_line()}; load average "
        f"{load_average()} at the end (shared: other work ran meanwhile).  ",
        f"Date (UTC): {datetime.now(UTC):%Y-%m-%d %H:%M}. Command: `.venv/bin/python "
        f"bench/policy_serving.py --seconds {args.seconds:g} --warmup {args.warmup:g} "
        f"--threads {args.threads} --rank {args.rank} --batch-wait {args.batch_wait:g} "
        f"--paths {args.paths} --devices {args.devices} --adapters {args.adapters}`. Greedy, "
        f"up to {GENERATION.max_new_tokens} new tokens, prompt without frames, LoRA rank "
        f"{args.rank}, {args.threads} CPU(s) per replica on every path.", "",
        "| path | batch | concurrent devices | adapters | decisions/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|"]
    for label, batch, clients, adapters, row in rows:
        lines.append(f"| {label} | {batch} | {clients} | {adapters} | {row['per_s']:.1f} | "
                     f"{row['p50_ms']:.0f} | {row['p99_ms']:.0f} |")
    if ab:
        lines += ["", f"One engine, variants in turn, median of {args.ab_rounds} rounds:", "",
                  "| engine call | ms per decision | decisions/s | vs batch 16, 1 adapter |",
                  "|---|---|---|---|"]
        one = ab["batch 16, 1 adapter"]
        lines += [f"| {name} | {1000 * t:.0f} | {1 / t:.1f} | {one / t:.2f} |"
                  for name, t in ab.items()]
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
