"""The farm at scale, on this machine.

1. Phones per node: N virtual phones on one node's adb server, audited through adb + scrcpy
   (a breadth run per phone), at time warp 1 (real time) and 10. Device-time utilisation is,
   per run, the device time spent watching what the policy decided over the device time that
   passed (real time x warp), averaged over runs; the rest is glances, gestures and waiting on
   the driver (bench/device_path.py measures the same share for one phone).
2. Steps per second over 1, 2 and 3 Ray nodes on this machine (head plus workers started with
   `ray start`, the same logical CPUs in total), in-process simulated devices: the ratio to one
   node is the cost of distribution, not a speed-up (the cores are the same).

Run: .venv/bin/python bench/farm_scale.py [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.dataset as ds

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from steps_report import load_average, machine_line, write_section  # noqa: E402

from bubblescope.actors.phone_nodes import ADB_PORT_LABEL, PHONES_LABEL  # noqa: E402
from bubblescope.sim.android.farm import farm_down, farm_up  # noqa: E402
from tests.support.adb_server import private_adb_server  # noqa: E402
from tests.support.ray_cluster import ray_cluster  # noqa: E402

SECTION = "## The farm at scale: phones per node, steps/s over Ray nodes"
PERSONAS = ROOT / "examples" / "personas"
AUDIT_TIMEOUT_S = 600


def audit(folder: Path, body: str, env: dict | None = None, address: str | None = None) -> float:
    """Runs `bubblescope audit` on a job file; returns its wall seconds."""
    job = folder / "job.yaml"
    job.write_text(textwrap.dedent(body).replace("PERSONAS", str(PERSONAS)))
    command = [sys.executable, "-m", "bubblescope.cluster.cli", "audit", str(job),
               "--no-progress", "--no-metrics"] + (["--address", address] if address else [])
    began = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                            timeout=AUDIT_TIMEOUT_S)
    if result.returncode != 0:
        raise SystemExit(f"audit failed ({result.returncode}): {result.stderr[-2000:]}")
    return time.perf_counter() - began


def rows(folder: Path, job_id: str) -> list[dict]:
    return ds.dataset(folder / "out" / job_id / "steps").to_table().to_pylist()


# -- 1. phones per node ------------------------------------------------------------------------
PHONE_JOB = """
    job_id: phones
    seed: 3
    storage_path: out
    personas: [PERSONAS/concentrated.yaml]
    platforms: [douyin-like]
    experiments: {{breadth: {{steps: {steps}}}}}
    window: 5
    replicates: {phones}
    devices:
      backend: adb
      cpus_per_device: 0
      adb:
        port: {port}
        glance_s: 1.0
        scrcpy: {{server_jar: {jar}, max_fps: 4}}
        speech: {{enabled: false}}
    metrics: {{port: null, bootstrap: 50}}
"""


def utilisation(steps: list[dict], warp: float) -> float:
    """Mean over runs of the device time spent watching what the policy decided, over the
    device time that passed (real time x warp) between its first and last step."""
    shares = []
    for run in {r["run_id"] for r in steps}:
        mine = sorted((r for r in steps if r["run_id"] == run), key=lambda r: r["step"])
        watched = sum(r["action_watch_s"] for r in mine[1:])
        real = (mine[-1]["recorded_at"] - mine[0]["recorded_at"]).total_seconds()
        if real > 0:
            shares.append(watched / (real * warp))
    return sum(shares) / len(shares)


def phones_point(phones: int, warp: float, steps: int) -> tuple[float, float, str]:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        with private_adb_server(folder / "adb") as adb:
            record = farm_up(folder / "farm", devices=phones, time_warp=warp, adb_port=adb.port)
            try:
                load = load_average()
                wall = audit(folder, PHONE_JOB.format(phones=phones, steps=steps, port=adb.port,
                                                      jar=record.jar))
                return utilisation(rows(folder, "phones"), warp), wall, load
            finally:
                farm_down(folder / "farm")


# -- 2. steps/s over Ray nodes -----------------------------------------------------------------
SIM_JOB = """
    job_id: nodes
    seed: 3
    storage_path: out
    personas: [PERSONAS/concentrated.yaml, PERSONAS/dispersed.yaml]
    platforms: [douyin-like, "null"]
    experiments: {{breadth: {{steps: {steps}}}}}
    window: 50
    replicates: 1
    devices: {{backend: sim, count: 4, cpus_per_device: 1}}
    metrics: {{port: null, bootstrap: 50}}
"""
LAYOUTS = {1: (4, []), 2: (2, [2]), 3: (2, [1, 1])}  # head CPUs, worker CPUs: 4 in all


def nodes_point(nodes: int, steps: int) -> tuple[float, float, str]:
    head_cpus, workers = LAYOUTS[nodes]
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="bs-") as scratch:
        folder = Path(scratch)
        labels = [{PHONES_LABEL: "false", ADB_PORT_LABEL: "0"} for _ in workers]
        with ray_cluster(folder / "ray", labels, worker_cpus=1, head_cpus=head_cpus) as cluster:
            for node, cpus in zip(cluster.workers, workers, strict=True):
                if cpus != node.num_cpus:  # a worker of another size: restart it so
                    cluster.stop(node)
                    node.num_cpus = cpus
                    cluster.start(node)
            load = load_average()
            wall = audit(folder, SIM_JOB.format(steps=steps), env=cluster.env,
                         address=cluster.address)
            return 4 * steps / wall, wall, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", default="1,2,4,6", help="phone counts per point")
    parser.add_argument("--warps", default="1,10")
    parser.add_argument("--phone-steps", type=int, default=8)
    parser.add_argument("--node-steps", type=int, default=6000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()
    started = datetime.now(UTC)
    phone_rows = []
    for warp in (float(w) for w in args.warps.split(",")):
        for phones in (int(n) for n in args.phones.split(",")):
            share, wall, load = phones_point(phones, warp, args.phone_steps)
            phone_rows.append((warp, phones, share, wall, load))
            print(f"warp {warp:g}: {phones} phones -> {share:.0%} in {wall:.0f} s", flush=True)
            if share < 0.9:
                break  # the capacity at this warp is the point before
    node_rows = []
    for nodes in (1, 2, 3):
        rate, wall, load = nodes_point(nodes, args.node_steps)
        node_rows.append((nodes, rate, wall, load))
        print(f"{nodes} nodes: {rate:.0f} steps/s", flush=True)
    write_section(args.out, SECTION, report(args, started, phone_rows, node_rows))


def report(args, started, phone_rows, node_rows) -> str:
    lines = [SECTION, "", f"Machine: {machine_line()}  ",
             f"Date (UTC): {started:%Y-%m-%d %H:%M}. Command: `.venv/bin/python bench/"
             f"farm_scale.py --phones {args.phones} --warps {args.warps} --phone-steps "
             f"{args.phone_steps} --node-steps {args.node_steps}`.", "",
             "Phones per node (one node's adb server, virtual phones, a breadth run of "
             f"{args.phone_steps} steps per phone, adb + scrcpy at 4 fps, no speech):", "",
             "| time warp | phones | device-time utilisation | audit wall s | load before |",
             "|---|---|---|---|---|"]
    lines += [f"| {w:g} | {n} | {s:.0%} | {t:.0f} | {load} |" for w, n, s, t, load in phone_rows]
    lines += ["", "Steps per second over Ray nodes on this machine (4 logical CPUs in all, 4 "
              f"in-process simulated devices, {args.node_steps} breadth steps each, audit "
              "start-up included):", "",
              "| Ray nodes | steps/s | vs 1 node | audit wall s | load before |", "|---|---|---|---|---|"]
    one = node_rows[0][1]
    lines += [f"| {n} | {r:.0f} | {r / one:.2f}x | {t:.0f} | {load} |" for n, r, t, load in node_rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
