"""Decisions per second of the persona policy: in-process vs through Ray Serve.

The tiny Qwen2.5-VL decides on simulated observations (the prompt the quickstart agents use).
In-process rows call the engine directly, one decision at a time and in batches; Serve rows
send decisions from C concurrent device clients spread over A persona adapters through the
deployed policy app (multiplexing and batching on), and once with batching off. The `echo`
rows use the model-free engine, to show Serve's own cost per request.

    .venv/bin/python bench/policy_serving.py [--seconds 20] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
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
from bubblescope.serve.engine import EchoEngine, TransformersEngine  # noqa: E402
from bubblescope.serve.policy_app import deploy_policy  # noqa: E402
from bubblescope.sim.catalogue import CatalogueConfig, build_catalogue  # noqa: E402
from bubblescope.sim.in_process_device import observe_video  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from steps_report import machine_line, publish  # noqa: E402

PROMPT = {"history": 3, "frames": 0, "instructions": False, "transcript_chars": 200}
GENERATION = GenerationSpec(max_new_tokens=32)


def observations(n: int):
    catalogue = build_catalogue(CatalogueConfig())
    clock = datetime(2026, 1, 1, tzinfo=UTC)
    return [observe_video(catalogue, video, clock) for video in range(0, 7 * n, 7)]


def build_model(folder: Path, adapters: int) -> tuple[Path, dict[str, str]]:
    from peft import LoraConfig, get_peft_model

    from bubblescope.agent.vlm import load_model
    from bubblescope.trainer.config import LANGUAGE_MODULES
    from bubblescope.trainer.tiny_corpus import tiny_corpus
    from bubblescope.trainer.tiny_model import build_tiny_model

    base = build_tiny_model(folder / "tiny", tiny_corpus(catalogue_step=40))
    paths = {}
    for i in range(adapters):
        model = get_peft_model(load_model(base), LoraConfig(
            r=8, lora_alpha=16, target_modules=LANGUAGE_MODULES, init_lora_weights=False))
        paths[f"p{i}"] = str(folder / f"adapter-{i}")
        model.save_pretrained(paths[f"p{i}"])
    return base, paths


def in_process(base: Path, obs, batch: int, seconds: float) -> dict:
    persona = load_persona(ROOT / "examples" / "personas" / "concentrated.yaml")
    engine = TransformersEngine(str(base))
    prompts = [decision_prompt(persona, o, [], PromptSpec(**PROMPT)) for o in obs]
    done, latencies, began = 0, [], time.perf_counter()
    while time.perf_counter() - began < seconds:
        chunk = [prompts[(done + i) % len(prompts)] for i in range(batch)]
        start = time.perf_counter()
        engine.generate("", chunk, GENERATION)
        latencies.append(time.perf_counter() - start)
        done += batch
    return _row(done, time.perf_counter() - began, latencies)


def _row(done: int, wall: float, latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    return {"decisions": done, "per_s": done / wall,
            "p50_ms": 1000 * statistics.median(ordered),
            "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]}


def through_serve(spec: AgentPolicySpec, personas, obs, clients: int, seconds: float) -> dict:
    def client(index: int) -> list[float]:
        policy = AgentPolicy(spec, personas[index % len(personas)])
        history = [HistoryItem(obs[0], Action(watch_s=3.0))]
        times, began, k = [], time.perf_counter(), index
        while time.perf_counter() - began < seconds:
            start = time.perf_counter()
            policy.decide(obs[k % len(obs)], history)
            times.append(time.perf_counter() - start)
            k += clients
        return times

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [t for times in pool.map(client, range(clients)) for t in times]
    return _row(len(latencies), time.perf_counter() - began, latencies)


def serve_spec(base: Path, adapters: dict[str, str], batch: int, name: str) -> AgentPolicySpec:
    return AgentPolicySpec.model_validate({
        "base_model": str(base), "adapters": adapters, "prompt": PROMPT,
        "generation": GENERATION.model_dump(), "decide_timeout_s": 300,
        "deployment": {"app_name": name, "max_batch_size": batch, "batch_wait_s": 0.02,
                       "max_adapters_per_replica": 16, "cpus_per_replica": 1,
                       "http_port": None, "max_ongoing_requests": 128}})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    ray.init(include_dashboard=False, log_to_driver=False)
    base_persona = load_persona(ROOT / "examples" / "personas" / "concentrated.yaml")
    obs = observations(64)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        base, adapters = build_model(Path(scratch), 16)
        for batch in (1, 16):
            rows.append((f"in-process, batch {batch}", 1, 0,
                         in_process(base, obs, batch, args.seconds)))
        for n_adapters in (1, 4, 16):
            chosen = dict(list(adapters.items())[:n_adapters])
            personas = [base_persona.model_copy(update={"id": pid}) for pid in chosen]
            spec = serve_spec(base, chosen, 16, f"bench-{n_adapters}")
            deploy_policy(spec, personas)
            for clients in (1, 4, 16, 64):
                rows.append(("serve, batch 16", clients, n_adapters,
                             through_serve(spec, personas, obs, clients, args.seconds)))
            serve.delete(spec.deployment.app_name)
        personas = [base_persona.model_copy(update={"id": "p0"})]
        for batch, engine in ((1, TransformersEngine), (16, EchoEngine), (1, EchoEngine)):
            spec = serve_spec(base, {"p0": adapters["p0"]}, batch, f"bench-b{batch}")
            deploy_policy(spec, personas, engine)
            label = f"serve, batch {batch}" + (", echo engine" if engine is EchoEngine else "")
            rows.append((label, 16, 1, through_serve(spec, personas, obs, 16, args.seconds)))
            serve.delete(spec.deployment.app_name)
    report(rows, args)


def report(rows, args) -> None:
    lines = [
        "## Policy serving: decisions per second, in-process vs Ray Serve (tiny Qwen2.5-VL)",
        "", f"Machine: {machine_line()}.  ",
        f"Date (UTC): {datetime.now(UTC):%Y-%m-%d %H:%M}. Command: `.venv/bin/python "
        f"bench/policy_serving.py --seconds {args.seconds:g}`. Greedy, up to "
        f"{GENERATION.max_new_tokens} new tokens, prompt without frames.", "",
        "| path | concurrent devices | adapters | decisions/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|"]
    for label, clients, adapters, row in rows:
        lines.append(f"| {label} | {clients} | {adapters or '-'} | {row['per_s']:.1f} | "
                     f"{row['p50_ms']:.0f} | {row['p99_ms']:.0f} |")
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
