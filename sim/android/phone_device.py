"""A complete virtual phone as one unit: the simulated phone and app, its ADB device on a
loopback port, and the emulated scrcpy server. `python -m bubblescope.sim.android.phone_device`
runs one until SIGTERM; the farm starts one such process per device."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from bubblescope.sim.android.device_thread import DeviceThread
from bubblescope.sim.android.phone import VirtualPhone
from bubblescope.sim.android.scrcpy_server import ScrcpyServerProgram
from bubblescope.sim.android.virtual_device import VirtualDevice
from bubblescope.sim.catalogue import CatalogueConfig
from bubblescope.sim.in_process_device import SimWorld
from bubblescope.sim.profiles import named_profiles


@dataclass(frozen=True)
class PhoneSpec:
    serial: str  # ro.serialno
    platform: str = "douyin-like"  # the simulated platform the app logs into by default
    account: str = "account-1"  # the account it is logged into by default
    seed: int = 0  # world and account seed
    time_warp: float = 1.0  # device seconds per real second
    catalogue_videos: int = 20_000
    state_dir: Path | None = None  # the platform's saved account state (survives restarts)


def build_device(spec: PhoneSpec) -> tuple[VirtualDevice, VirtualPhone]:
    world = SimWorld(catalogue=CatalogueConfig(seed=spec.seed, videos=spec.catalogue_videos),
                     profiles=named_profiles())
    phone = VirtualPhone(spec.serial, world, spec.platform, spec.account, spec.seed,
                         state_dir=spec.state_dir, time_warp=spec.time_warp)
    device = VirtualDevice(spec.serial, phone.props, phone.programs(), fs=phone.fs,
                           clock=phone.clock)
    phone.programs().register("app_process", ScrcpyServerProgram(device, phone))
    return device, phone


def run_in_thread(spec: PhoneSpec, port: int = 0) -> tuple[DeviceThread, VirtualPhone]:
    """A virtual phone serving ADB from a background thread (tests, benchmarks)."""
    device, phone = build_device(spec)
    return DeviceThread(device, port=port).start(), phone


async def _serve(spec: PhoneSpec, port: int, port_file: Path | None) -> None:
    device, _ = build_device(spec)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bound = await device.start("127.0.0.1", port)
    if port_file is not None:
        temporary = port_file.with_suffix(".tmp")
        temporary.write_text(f"{bound}\n", encoding="utf-8")
        temporary.replace(port_file)
    await stop.wait()
    await device.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one virtual Android phone.")
    parser.add_argument("--serial", required=True)
    parser.add_argument("--port", type=int, default=0, help="loopback TCP port; 0 picks one")
    parser.add_argument("--port-file", type=Path, help="write the bound port here when ready")
    parser.add_argument("--platform", default="douyin-like")
    parser.add_argument("--account", default="account-1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-warp", type=float, default=1.0)
    parser.add_argument("--catalogue-videos", type=int, default=20_000)
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = PhoneSpec(args.serial, args.platform, args.account, args.seed, args.time_warp,
                     args.catalogue_videos, args.state_dir)
    asyncio.run(_serve(spec, args.port, args.port_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
