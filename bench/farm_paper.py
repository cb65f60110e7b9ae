"""On paper: a 1,000-phone farm, from the measured figures and the code's own constants.

Nothing here runs a farm. What the code decides is counted from the code: the Prometheus
series the exporter emits (its `StatsCollector` fed synthetic coordinator snapshots of 1 and 2
devices, 1 and 2 runs, and the differences taken), the bytes of a device agent's report and of
the registry's phone list (pickled as Ray ships them), the heartbeat and watch intervals. What
the machine decides comes in as arguments, defaulting to this project's last measurements
(phone_capacity.py, multi_node_steps.py); the arithmetic is printed with its inputs.

    python bench/farm_paper.py [--phones 1000] [--phones-per-host 24] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import math
import pickle
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from steps_report import write_section  # noqa: E402

from bubblescope.actors.coordinator import FARM_WATCH_S  # noqa: E402
from bubblescope.actors.device_agent import HEARTBEAT_S, PhoneReport  # noqa: E402
from bubblescope.actors.device_registry import PhoneEntry  # noqa: E402
from bubblescope.metrics.exporter import StatsCollector  # noqa: E402
from bubblescope.metrics.live import LiveMetrics  # noqa: E402

TITLE = "## On paper: a 1,000-phone farm (nodes, coordinators, registry, Prometheus)"
NODE_ID = "f" * 56  # a Ray node id is 28 bytes in hex
RAY_CALL_BYTES = 1000  # assumed: a Ray actor call's task spec and gRPC framing, args aside


# -- Prometheus series, counted from the exporter ---------------------------------------------
def snapshot(devices: int, runs: int) -> dict:
    """A coordinator's stats() mid-job: every run a depth run with every gauge known, every
    device running, two phases of steps counted for one persona on one platform."""
    live = LiveMetrics("job", "top", 50).snapshot()
    run = {"persona": "p", "platform": "douyin-like", "experiment": "depth", "replicate": 0,
           "steps_done": 1, "steps_total": 2, "phase": "cultivation", "state": "running",
           "window_diversity": 3.0, "window_entropy_bits": 1.5, "running_bep": 0.2}
    live["runs"] = {f"r{i}": dict(run, replicate=i) for i in range(runs)}
    live["steps"] = [{"persona": "p", "platform": "douyin-like", "experiment": "depth",
                      "phase": phase, "count": 1} for phase in ("cultivation", "counterfactual")]
    live.update(state="running", steps_done=runs, steps_total=2 * runs,
                devices={f"d{i}": {"state": "running", "restarts": 0, "steps": 1}
                         for i in range(devices)})
    return live


def series(stats: dict) -> int:
    return sum(len(family.samples) for family in StatsCollector(lambda: stats).collect())


def series_counts() -> dict[str, int]:
    base = series(snapshot(1, 1))
    per_device = series(snapshot(2, 1)) - base
    per_run = series(snapshot(1, 2)) - base
    return {"per_device": per_device, "per_run": per_run,
            "per_job": base - per_device - per_run}


# -- registry traffic, sized from the code ----------------------------------------------------
def report_bytes(phones: int) -> int:
    """A device agent's `registry.report` arguments for a node with `phones` phones."""
    reports = [asdict(PhoneReport(f"R5CT{i:08d}", "device", "SM-A546E", "14", "1080x2340",
                                  ["bilibili", "douyin", "kuaishou"])) for i in range(phones)]
    return len(pickle.dumps((NODE_ID, "10.0.12.34", "10.0.12.34:5037", reports, 1.7e9),
                            protocol=5))


def phone_list_bytes(phones: int) -> int:
    """`registry.phones()`'s answer for a farm of `phones` (what each coordinator pulls)."""
    entries = [asdict(PhoneEntry(f"R5CT{i:08d}", NODE_ID, "10.0.12.34", "10.0.12.34:5037",
                                 "online", "SM-A546E", "14", "1080x2340",
                                 ["bilibili", "douyin", "kuaishou"], "job-2026-12-07",
                                 f"job-2026-12-07-run-{i:05d}", f"acct-{i:05d}"))
               for i in range(phones)]
    return len(pickle.dumps(entries, protocol=5))


# -- the estimate -----------------------------------------------------------------------------
def estimate(args: argparse.Namespace) -> list[str]:
    hosts = math.ceil(args.phones / args.phones_per_host)
    steps_per_s = args.phones / args.seconds_per_step
    cpu_core = steps_per_s * args.coordinator_ms_per_step / 1000
    per_coord = int(1000 * args.coordinator_share / args.coordinator_ms_per_step
                    * args.seconds_per_step)
    coordinators = math.ceil(args.phones / per_coord)
    report = report_bytes(args.phones_per_host)
    beats = hosts / HEARTBEAT_S
    pull = phone_list_bytes(args.phones)
    counts = series_counts()
    live = counts["per_job"] * coordinators + counts["per_device"] * args.phones \
        + counts["per_run"] * args.phones
    lifetime_run = counts["per_run"] + 2  # a depth run's window gauges, once per phase
    return [
        f"- **Nodes.** {args.phones} phones at {args.phones_per_host} per host: {hosts} phone "
        "nodes. CPU is not what limits a host at real time: the phone-capacity section's "
        "2-core node held 8 virtual phones at time warp 1 at >= 96% (the most tried) with "
        "the phones' own emulation (rendering, H.264 encoding) on the same cores, and about "
        "4-6 at warp 10. A real phone renders and encodes itself, leaving the host scrcpy "
        "decoding at 4-5 fps (~0.013 CPU s per phone-second, the device-path section) and "
        "the text classifier once per step. Memory is: each device actor held ~0.75 GB "
        "resident (torch and the text classifier), so 24 phones want ~20 GB. USB is the "
        "hard limit: powered hubs and a host controller's bandwidth and endpoint limits put a "
        f"host at a few tens of phones, so {args.phones_per_host} per host (4-8 cores, 32 GB) "
        "is the planning figure.",
        f"- **Coordinators.** At one step per {args.seconds_per_step:g} s of device time per "
        f"phone (real time), the farm takes {steps_per_s:.0f} steps/s. At "
        f"{args.coordinator_ms_per_step:g} ms of coordinator CPU per step (adb chunks are one "
        "step each; the phone-capacity section's fit, about 80x the simulated per-step cost whose "
        f"chunks hold up to 1000 steps) that is {cpu_core:.2f} cores of coordinator in all. "
        f"Keeping one coordinator at {100 * args.coordinator_share:.0f}% of a core, each "
        f"takes {per_coord} phones, so {coordinators} coordinator(s) (one job each, or the "
        "farm split by `devices.adb.node_labels`); at 10-20 s per step the range is "
        f"{args.phones / 20 * args.coordinator_ms_per_step / 1000:.2f}-"
        f"{args.phones / 10 * args.coordinator_ms_per_step / 1000:.2f} cores. The store "
        f"limits sooner than the CPU: one Parquet part per chunk is {steps_per_s:.0f} files/s, "
        f"{steps_per_s * 86400 / 1e6:.1f} million a day, so real-time farms want chunks of "
        "several steps (a larger `checkpoint_seconds`) or parts compacted as runs finish.",
        f"- **Registry traffic in.** Each of {hosts} device agents sends its node's full list "
        f"every {HEARTBEAT_S:g} s (`HEARTBEAT_S`) and on each change: {beats:.0f} messages/s at "
        f"rest, {report} bytes of arguments each ({args.phones_per_host} phones) plus about "
        f"{RAY_CALL_BYTES} bytes of Ray call, so about "
        f"{beats * (report + RAY_CALL_BYTES) / 1000:.1f} kB/s; a change (a phone plugged in or "
        "out) adds one message from its node only. Negligible for one actor.",
        f"- **Registry traffic out: the larger term.** Every coordinator asks `registry.phones()` "
        f"every {FARM_WATCH_S:g} s (`FARM_WATCH_S`) and pulls the whole farm's list: "
        f"{pull / 1000:.0f} kB for {args.phones} phones, so {coordinators} coordinator(s) pull "
        f"{coordinators * pull / 1e6 / FARM_WATCH_S:.2f} MB/s, and the registry builds "
        f"{coordinators * args.phones / FARM_WATCH_S:.0f} entries/s in one Python actor. "
        "Each coordinator also reads `ray.nodes()` every second. Filtering by the job's nodes "
        "in the registry (or a changed-since version number) would cut this to what changed.",
        f"- **Prometheus series** (counted from `metrics/exporter.py`): {counts['per_device']} "
        f"per device (7 `device_state` series, restarts, steps), {counts['per_run']} per run "
        "while it runs (progress, window diversity, window entropy, running BEP; "
        f"{lifetime_run} over a depth run's life, the window gauges carrying the phase label) "
        f"and {counts['per_job']} per job (state set, runs by state, the 5 stages' latency "
        "histograms of 20 buckets + sum + count, step counters). A farm of "
        f"{args.phones} phones each on a run, under {coordinators} job(s): about {live:,} live "
        f"series per scrape; finished runs stay in a job's snapshot, so a job of R runs "
        f"carries about {counts['per_run']}R. Over a day with a new run per phone every hour, "
        f"about {24 * lifetime_run * args.phones:,} run series are created: one Prometheus "
        "holds that easily (millions is the usual ceiling), but keep `run` out of "
        "dashboard queries that do not need it.",
    ]


def section(args: argparse.Namespace) -> str:
    return "\n".join([
        TITLE, "",
        f"Date (UTC): {datetime.now(UTC):%Y-%m-%d %H:%M}. Command: `python bench/farm_paper.py "
        f"--phones {args.phones} --phones-per-host {args.phones_per_host} --seconds-per-step "
        f"{args.seconds_per_step:g} --coordinator-ms-per-step {args.coordinator_ms_per_step:g}`."
        " Arithmetic, not a measurement: series counts and message sizes come from the code; "
        "the per-step costs from the sections above.",
        "",
        *estimate(args), "",
    ])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=1000)
    parser.add_argument("--phones-per-host", type=int, default=24,
                        help="USB hubs' reality: a few tens per host (default 24)")
    parser.add_argument("--seconds-per-step", type=float, default=15.0,
                        help="device seconds per step at real time (default 15: 10-20 s)")
    parser.add_argument("--coordinator-ms-per-step", type=float, default=3.6,
                        help="coordinator CPU per adb step (phone_capacity.py's fit)")
    parser.add_argument("--coordinator-share", type=float, default=0.5,
                        help="share of a core one coordinator may use (default 0.5)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    text = section(args)
    print(text)
    write_section(args.out, TITLE, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
