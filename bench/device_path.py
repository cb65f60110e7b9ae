"""Benchmarks of the device path (adb + scrcpy) on virtual phones.

1. Decoding: CPU seconds per second of 720p H.264 video, decoding every packet but turning
   only the frames the policy uses into images (1, 2, 5, 30 per second); from it, how many
   concurrent streams one core holds.
2. Frame latency: from a frame's device time (its PTS, the phone's monotonic clock) to the
   client having it decoded, through the real adb server and the emulated scrcpy server.
3. Steps: observe / decide / act latency per step of the production driver on a virtual phone
   at real-time speed (time warp 1), and device-time utilisation: the share of device time
   spent watching what the policy decided, not waiting on the system.

Run: .venv/bin/python bench/device_path.py [--steps 8] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from steps_report import machine_line, write_section  # noqa: E402

from bubblescope.contracts import Action  # noqa: E402
from bubblescope.devices.adb_phone import AdbPhone  # noqa: E402
from bubblescope.devices.scrcpy.client import ScrcpyClient  # noqa: E402
from bubblescope.devices.scrcpy.decoder import VideoDecoder  # noqa: E402
from bubblescope.devices.spec import AdbSpec, ScrcpySpec  # noqa: E402
from bubblescope.sim.android.media import VideoEncoder  # noqa: E402
from bubblescope.sim.android.phone_device import PhoneSpec, run_in_thread  # noqa: E402
from bubblescope.sim.android.server_jar import build_server_jar  # noqa: E402
from tests.support.adb_server import private_adb_server  # noqa: E402

TITLE = "## Device path: decoding, frame latency, step overhead (virtual phones)"


def encoded_720p(seconds: float, fps: float = 30.0) -> list:
    """Packets of a virtual phone's 720x1280 screen encoded as its scrcpy server would."""
    spec = PhoneSpec("bench-decode", time_warp=1.0)
    from bubblescope.sim.android.phone_device import build_device

    _, phone = build_device(spec)
    phone.start_app()
    encoder = VideoEncoder(720, 1280, bit_rate=4_000_000, max_fps=fps)
    packets = []
    for i in range(int(seconds * fps)):
        t = 3600.0 + i / fps
        packets += encoder.encode(phone.render_frame(t), int(t * 1e6))
    return packets


def decode_cost(packets: list, sample_fps: float, seconds: float) -> float:
    """CPU seconds per second of video."""
    decoder = VideoDecoder("h264", fps=sample_fps)
    began = time.process_time()
    for packet in packets:
        decoder.feed(packet.payload, packet.pts_us, packet.config)
    return (time.process_time() - began) / seconds


def frame_latency(folder: Path, jar: Path, seconds: float = 8.0) -> list[float]:
    thread, phone = run_in_thread(PhoneSpec("bench-latency", time_warp=1.0))
    try:
        with private_adb_server(folder) as adb:
            device = adb.client().device(adb.connect(thread.port))
            device.shell("am start -n org.bubblescope.shortvideo/.FeedActivity")
            client = ScrcpyClient(device, ScrcpySpec(server_jar=str(jar), max_size=1280,
                                                     max_fps=15, sample_fps=15, audio=False))
            client.start()
            latencies, seen = [], 0
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                frames = client.frames_since(0)
                for frame in frames[seen:]:
                    latencies.append(phone.monotonic() - frame.pts_us / 1e6)
                seen = len(frames)
                time.sleep(0.002)
            client.close()
    finally:
        thread.stop()
    return latencies[5:]  # the first frames wait for the decoder to start


def step_costs(folder: Path, jar: Path, steps: int) -> dict:
    thread, phone = run_in_thread(PhoneSpec("bench-steps", time_warp=1.0))
    try:
        with private_adb_server(folder) as adb:
            config = AdbSpec.model_validate({
                "scrcpy": {"server_jar": str(jar), "max_size": 640, "max_fps": 5, "audio": False},
                "port": adb.port, "glance_s": 1.0, "speech": {"enabled": False}})
            device = AdbPhone(adb.connect(thread.port), config)
            device.open_feed("douyin-like", "bench", 1)
            watch = [3.0 + (i % 3) for i in range(steps)]
            observe, act = [], []
            began = phone.clock()
            for seconds in watch:
                t0 = time.perf_counter()
                device.observe()
                t1 = time.perf_counter()
                device.act(Action(watch_s=seconds))
                observe.append(t1 - t0)
                act.append(time.perf_counter() - t1)
            elapsed = phone.clock() - began
            watched = [f.watch_s for f in phone.app_state().feedback[-steps:]]
            device.close()
    finally:
        thread.stop()
    return {"observe": observe, "act": act, "decided": sum(watch), "watched": sum(watched),
            "elapsed": elapsed, "steps": steps}


def table(costs: dict[tuple[float, float], float], latency: list[float], steps: dict) -> str:
    lines = ["| server frame rate | policy frame rate | CPU s per video s | streams per core |",
             "|---|---|---|---|"]
    for (server_fps, fps), cost in costs.items():
        lines.append(f"| {server_fps:g} fps | {fps:g} fps | {cost:.3f} | {1 / cost:.1f} |")
    lat = np.array(latency) * 1000
    overhead = (steps["elapsed"] - steps["decided"]) / steps["steps"]
    lines += ["", f"Frame latency, device frame to decoded frame in the client (720x1280 at 15 fps, "
              f"{len(lat)} frames): p50 {np.percentile(lat, 50):.0f} ms, p90 "
              f"{np.percentile(lat, 90):.0f} ms, p99 {np.percentile(lat, 99):.0f} ms.", "",
              "| stage | p50 s | p90 s |", "|---|---|---|"]
    for stage in ("observe", "act"):
        values = np.array(steps[stage])
        lines.append(f"| {stage} | {np.percentile(values, 50):.3f} | "
                     f"{np.percentile(values, 90):.3f} |")
    lines += ["", f"{steps['steps']} steps at real-time speed, watch times 3-5 s, glance 1 s, "
              f"speech off: device time {steps['elapsed']:.1f} s for {steps['decided']:.1f} s of "
              f"decided watching ({steps['watched']:.1f} s as the platform measured it); "
              f"utilisation {100 * steps['decided'] / steps['elapsed']:.1f}%, overhead "
              f"{overhead:.2f} s per step ({100 * overhead / (steps['decided'] / steps['steps']):.1f}"
              "% of the mean watch time)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        jar = folder / "scrcpy-server"
        jar.write_bytes(build_server_jar("3.3.4"))
        costs = {}
        for server_fps, policy_rates in ((30.0, (1.0, 2.0, 5.0, 30.0)), (5.0, (1.0, 5.0))):
            packets = encoded_720p(10.0, server_fps)
            for fps in policy_rates:
                costs[(server_fps, fps)] = decode_cost(packets, fps, 10.0)
        latency = frame_latency(folder, jar)
        steps = step_costs(folder, jar, args.steps)
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    text = (f"{TITLE}\n\nMachine: {machine_line()}.  \nDate (UTC): {date}. Command: "
            f"`.venv/bin/python bench/device_path.py --steps {args.steps}`.\n\n"
            f"{table(costs, latency, steps)}\n")
    print(text)
    write_section(args.out, TITLE, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
