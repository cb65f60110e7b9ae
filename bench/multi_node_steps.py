"""Steps per second of one simulated audit over 1, 2 and 3 Ray nodes on this machine, and the
Coordinator's CPU per step.

Every node is a `ray start --block` on the same 2 cores, so more nodes cannot be faster: the
ratio to one node is the cost of distribution (object transfer between raylets, remote actor
calls, more Ray processes on the same cores), not a speed-up. The job is the same each time:
`--devices` in-process sim device actors with one breadth run each. Each node declares 2 CPUs
and `cpus_per_device` is sized so that k nodes hold every actor but k - 1 cannot, which forces
Ray to spread them over all k nodes (checked from the stored steps' `node` column). The
Coordinator runs on the head (the driver's node), as `bubblescope audit --address` puts it.
Nodes are added one at a time (1, 2, 3), then removed, and 1 node is measured again to show how
far the machine's own speed moved meanwhile.

The Coordinator's CPU time is psutil's user + system time of its process (found by its pid)
over `run()`: chunk receipt, the job store's commit, the live metrics. Per step, it gives
the steps/s one core of coordinator could sustain.

    python bench/multi_node_steps.py [--devices 6] [--steps-per-device 3000] [--out ...]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from local_cluster import RayCluster, RayNode, ray_cluster  # noqa: E402
from steps_per_second import steady_rate  # noqa: E402
from steps_report import load_average, machine_line, write_section  # noqa: E402

from bubblescope.actors.coordinator import Coordinator  # noqa: E402
from bubblescope.actors.plan import plan_runs  # noqa: E402
from bubblescope.cluster.job import ResolvedJob, load_job  # noqa: E402
from bubblescope.store import JobStore  # noqa: E402

TITLE = "## Steps per second over 1, 2 and 3 Ray nodes (one machine, simulated devices)"
CPU_TITLE = "## Coordinator CPU per step and the ceiling it implies"
PERSONAS = ROOT / "examples" / "personas"
NODE_CPUS = 2
RUN_TIMEOUT_S = 600.0

JOB = """\
job_id: nodes-{label}
seed: 11
storage_path: store
personas: [{personas}/concentrated.yaml]
platforms: [douyin-like]
experiments: {{breadth: {{steps: {steps}}}}}
window: 50
replicates: {devices}
devices: {{backend: sim, count: {devices}, cpus_per_device: {cpus}}}
metrics: {{port: null, bootstrap: 50}}
"""


class ProbedCoordinator(Coordinator):
    """The real Coordinator, which also says its process id (for its CPU time)."""

    def pid(self) -> int:
        return os.getpid()


@dataclass
class Row:
    label: str
    nodes: int  # alive nodes in the cluster
    nodes_used: int  # distinct nodes in the stored steps
    steps: int
    wall_s: float
    steady: float
    coordinator_cpu_s: float
    load: str

    @property
    def cpu_ms_per_step(self) -> float:
        return 1000 * self.coordinator_cpu_s / self.steps


def cpus_per_device(nodes: int, devices: int) -> float:
    """Just small enough that `nodes` nodes hold every actor and `nodes - 1` cannot."""
    return round(NODE_CPUS * nodes / devices - 0.005, 3)


def make_job(folder: Path, label: str, devices: int, steps: int, cpus: float) -> ResolvedJob:
    path = folder / "job.yaml"
    path.write_text(JOB.format(label=label, devices=devices, steps=steps, cpus=cpus,
                               personas=PERSONAS), encoding="utf-8")
    return load_job(path)


def measure(nodes: int, devices: int, steps: int, label: str) -> Row:
    """The job on a fresh coordinator; steady rate and nodes used read from the store."""
    folder = Path(tempfile.mkdtemp(prefix="bs-nodes-"))
    try:
        job = make_job(folder, f"{nodes}-{time.time_ns() % 10**6}", devices, steps,
                       cpus_per_device(nodes, devices))
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        coordinator = ray.remote(ProbedCoordinator).options(
            num_cpus=0, max_concurrency=64, scheduling_strategy=here).remote(job)
        try:
            process = psutil.Process(ray.get(coordinator.pid.remote(), timeout=120))
            cpu, began = sum(process.cpu_times()[:2]), time.perf_counter()
            stats = ray.get(coordinator.run.remote(), timeout=RUN_TIMEOUT_S)
            wall, cpu = time.perf_counter() - began, sum(process.cpu_times()[:2]) - cpu
        finally:
            ray.kill(coordinator)
        expected = sum(r.total_steps for r in plan_runs(job))
        if stats["state"] != "done" or stats["steps_done"] != expected:
            raise RuntimeError(f"{label}: {stats['state']}, {stats['steps_done']} of {expected}")
        table = JobStore(job.storage_path, job.job_id).read_steps()
        used = len(set(table.column("node").to_pylist()))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    row = Row(label, nodes, used, expected, wall, steady_rate(table), cpu, load_average())
    print(f"{label}: {row.steady:.0f} steady steps/s over {used} nodes", flush=True)
    return row


def connect(cluster: RayCluster) -> None:
    """Join the cluster with its token. Ray caches its config and the token it loaded (or
    the one in ~/.ray) per process, so both caches are refreshed after the variables are set."""
    from ray._raylet import AuthenticationTokenLoader, Config

    os.environ.update({k: cluster.env[k] for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")})
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()
    ray.init(address=cluster.address, namespace="bubblescope-bench",
             logging_level=logging.WARNING, log_to_driver=False)


def measure_all(devices: int, steps: int) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bs-mn-", dir="/tmp") as tmp, \
            ray_cluster(Path(tmp), NODE_CPUS) as cluster:
        connect(cluster)
        try:
            rows.append(measure(1, devices, steps, "1 node"))
            for index in (1, 2):
                cluster.start(RayNode(f"w{index}", NODE_CPUS))
                rows.append(measure(index + 1, devices, steps, f"{index + 1} nodes"))
            for node in list(cluster.nodes[1:]):
                cluster.stop(node)
            rows.append(measure(1, devices, steps, "1 node (again, after)"))
        finally:
            ray.shutdown()
    return rows


# -- the report -------------------------------------------------------------------------------
def nodes_table(rows: Sequence[Row]) -> str:
    one = rows[0]
    lines = ["| nodes | nodes holding actors | steps | wall s | steps/s | steady steps/s "
             "| ratio to 1 node (steady) | coordinator CPU ms/step | load avg after |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.label} | {r.nodes_used} | {r.steps} | {r.wall_s:.1f} "
                     f"| {r.steps / r.wall_s:.0f} | {r.steady:.0f} | {r.steady / one.steady:.2f} "
                     f"| {r.cpu_ms_per_step:.3f} | {r.load} |")
    return "\n".join(lines)


def section(rows: Sequence[Row], args: argparse.Namespace, began: datetime, load: str) -> str:
    first, again = rows[0], rows[-1]
    drift = 100 * abs(again.steady / first.steady - 1)
    worst = min(rows[1:-1], key=lambda r: r.steady)
    return "\n".join([
        TITLE, "",
        f"Machine: {machine_line()}.  ",
        f"Date (UTC): {began:%Y-%m-%d %H:%M}. Command: `python bench/multi_node_steps.py "
        f"--devices {args.devices} --steps-per-device {args.steps_per_device}`.  ",
        f"Load average (1/5/15 min): {load} before, {load_average()} after (other work shared "
        "the cores: compare rows as ratios).",
        "",
        f"The same breadth job each time: {args.devices} sim device actors (`backend: sim`), one "
        f"run of {args.steps_per_device} steps each, on a token-authenticated cluster of "
        f"`ray start` nodes on this machine ({NODE_CPUS} CPUs declared each; "
        "`cpus_per_device` sized so every node holds actors), the Coordinator on the head. "
        "*Steady* counts the interval in which every run was stepping.",
        "",
        nodes_table(rows), "",
        f"- The same 2 cores over {worst.label} run at {worst.steady / first.steady:.2f}x one "
        "node's steady rate (the lowest of the multi-node rows): that ratio is the cost of "
        "distribution (chunks cross raylets, more Ray processes share the cores), not a "
        "speed-up" + (f"; it is inside the {drift:.0f}% the machine drifted, so at chunks of up "
                      "to 1000 steps distribution costs nothing measurable here." if
                      abs(1 - worst.steady / first.steady) * 100 <= drift else "."),
        f"- One node ran {first.steady:.0f} steady steps/s first and {again.steady:.0f} last: "
        f"the machine's own speed moved {drift:.0f}% during the benchmark; ratios closer to 1 "
        "than that are noise.",
        "",
    ])


def cpu_section(rows: Sequence[Row], began: datetime) -> str:
    per_step = sorted(r.cpu_ms_per_step for r in rows)
    median = per_step[len(per_step) // 2]
    ceiling = 1000 / median
    return "\n".join([
        CPU_TITLE, "",
        f"Machine: {machine_line()}.  ",
        f"Date (UTC): {began:%Y-%m-%d %H:%M}. From the runs of `bench/multi_node_steps.py` "
        "above (same rows, same load).",
        "",
        "psutil's user + system CPU time of the Coordinator actor's process (its pid asked of "
        "the actor) over `run()`, divided by the steps the audit committed.",
        "",
        "| nodes | steps | coordinator CPU s | CPU ms/step | steps/s one core sustains |",
        "|---|---|---|---|---|",
        *(f"| {r.label} | {r.steps} | {r.coordinator_cpu_s:.2f} | {r.cpu_ms_per_step:.3f} "
          f"| {1000 / r.cpu_ms_per_step:.0f} |" for r in rows),
        "",
        f"- Median {median:.3f} ms of coordinator CPU per step (range {per_step[0]:.3f}-"
        f"{per_step[-1]:.3f}): one core of coordinator sustains about {ceiling:.0f} steps/s of "
        "simulated steps, which arrive in chunks of up to 1000 steps.",
        f"- At real-time pace a phone takes one step per 10-20 s of device time, so that "
        f"ceiling alone would be {ceiling * 10:.0f}-{ceiling * 20:.0f} phones per coordinator; "
        "real phones' chunks are one step each (`checkpoint_seconds`), so the per-chunk cost, "
        "not the per-step one, sets the limit there: see the phone-capacity section's "
        "coordinator CPU per step on adb and the 1,000-phone estimate.",
        "",
    ])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=6, help="sim device actors (default 6)")
    parser.add_argument("--steps-per-device", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began, load = datetime.now(UTC), load_average()
    rows = measure_all(args.devices, args.steps_per_device)
    text, cpu_text = section(rows, args, began, load), cpu_section(rows, began)
    print(f"{text}\n{cpu_text}")
    write_section(args.out, TITLE, text)
    write_section(args.out, CPU_TITLE, cpu_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
