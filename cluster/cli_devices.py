"""`bubblescope` commands for phones: the virtual farm, attached devices, recording."""

from __future__ import annotations

import argparse
import sys

from bubblescope.cluster.cli_groups import command_group
from bubblescope.errors import ConfigError


def _farm_up(args: argparse.Namespace) -> int:
    from bubblescope.sim.android.farm import farm_up

    record = farm_up(args.dir, args.devices, args.platform, args.seed, args.time_warp,
                     args.adb_port)
    for phone in record.phones:
        print(f"{phone.serial}  {phone.name}  {phone.platform}  {phone.account}")
    print(f"{len(record.phones)} virtual phones up; scrcpy server file: {record.jar}")
    return 0


def _farm_list(args: argparse.Namespace) -> int:
    from bubblescope.sim.android.farm import farm_status

    phones = farm_status(args.dir)
    if not phones:
        print(f"no farm in {args.dir}")
    for phone in phones:
        print(f"{phone['serial']}  {phone['name']}  adb:{phone['adb']}  "
              f"process:{phone['process']}  {phone['platform']}  {phone['account']}")
    return 0


def _farm_down(args: argparse.Namespace) -> int:
    from bubblescope.sim.android.farm import farm_down

    print(f"stopped {farm_down(args.dir)} virtual phones")
    return 0


def _cluster_devices(args: argparse.Namespace) -> int:
    """Every phone of the cluster, as its nodes' device agents report them to the registry."""
    import asyncio

    from bubblescope.actors.device_registry import NAMESPACE
    from bubblescope.actors.phone_farm import PhoneFarm
    from bubblescope.cluster.ray_connect import init_ray
    from bubblescope.devices.spec import AdbDevicesSpec

    init_ray(args.address, namespace=NAMESPACE, include_dashboard=False, log_to_driver=False)
    spec = AdbDevicesSpec.model_validate({"backend": "adb", "adb": {"port": args.adb_port}})

    async def survey() -> list[dict]:
        return await PhoneFarm(spec).survey()

    phones = asyncio.run(survey())
    print("serial\tnode\tstate\tmodel\tandroid\tscreen\tapps\taccount\trun")
    for phone in phones:
        run = f"{phone['job_id']}/{phone['run_id']}" if phone["run_id"] else "-"
        print("\t".join((phone["serial"], phone["node_id"][:12], phone["state"],
                         phone["model"] or "-", phone["android"] or "-", phone["screen"] or "-",
                         ",".join(phone["apps"]) or "-", phone["account"] or "-", run)))
    print(f"{len(phones)} phones, {sum(p['state'] == 'online' for p in phones)} online")
    return 0


def _devices(args: argparse.Namespace) -> int:
    if args.address:
        return _cluster_devices(args)
    import adbutils

    from bubblescope.devices.errors import AdbServerUnreachable
    from bubblescope.sim.android.farm import adb_client

    client = adb_client(args.adb_port)
    try:
        devices = client.list()
    except (adbutils.AdbError, OSError) as exc:
        raise AdbServerUnreachable(f"no adb server answers on port {args.adb_port} ({exc}); "
                                   "start one (adb start-server) or fix --adb-port") from exc
    for device in devices:
        model = ""
        if device.state == "device":
            model = client.device(device.serial).prop.model or ""
        print(f"{device.serial}\t{device.state}\t{model}")
    return 0


def add_farm(sub) -> None:
    from pathlib import Path

    from bubblescope.sim.android.farm import DEFAULT_DIR

    commands = command_group(sub, "farm", "virtual Android phones on this machine", (
        ("up", _farm_up, "start virtual phones and adb-connect them"),
        ("list", _farm_list, "the farm's phones and their state"),
        ("down", _farm_down, "disconnect and stop the phones")))
    for command in commands.values():
        command.add_argument("--dir", type=Path, default=DEFAULT_DIR,
                             help=f"the farm's folder (default {DEFAULT_DIR})")
    up = commands["up"]
    up.add_argument("--devices", type=int, required=True)
    up.add_argument("--platform", default="douyin-like",
                    help="simulated platform profile the apps log into")
    up.add_argument("--seed", type=int, default=0)
    up.add_argument("--time-warp", type=float, default=1.0, help="device seconds per real second")
    up.add_argument("--adb-port", type=int, default=5037)
    devices = sub.add_parser("devices", help="phones on this node's adb, or (--address) on "
                             "every phone node of a Ray cluster")
    devices.add_argument("--adb-port", type=int, default=5037,
                         help="this node's adb server (with --address: the coordinator "
                         "node's, where no node is labelled a phone node)")
    devices.add_argument("--address", help="Ray cluster: list every phone of every node, with "
                         "its node, state, account and current run")
    devices.set_defaults(func=_devices)


def _record(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bubblescope.cluster.job import SCRCPY_SERVER_LOCATIONS
    from bubblescope.recorder.recorder import RecorderConfig, record

    jar = args.server_jar or next((Path(p).expanduser() for p in SCRCPY_SERVER_LOCATIONS
                                   if Path(p).expanduser().is_file()), None)
    if jar is None or not Path(jar).is_file():
        raise ConfigError(f"no scrcpy server file at {jar or ', '.join(SCRCPY_SERVER_LOCATIONS)}"
                          " (`bubblescope farm up` writes the virtual one)", key="--server-jar")
    config = RecorderConfig(out=Path(args.out), participant=args.participant,
                            server_jar=Path(jar), app=args.app, platform=args.platform,
                            duration_s=args.duration, views=args.views)
    try:
        result = record(args.device, config, adb_port=args.adb_port)
    except KeyboardInterrupt:
        print("interrupted before the recording began; nothing written", file=sys.stderr)
        return 130
    print(f"recorded {result.views} views ({result.stop_reason}) to {result.session_file}; "
          f"clock offset {result.clock.offset_s:.6f} s")
    return 0 if result.ok else 1


def add_record(sub) -> None:
    from pathlib import Path

    record = sub.add_parser("record", help="record a person browsing a short-video app on a "
                            "phone into a session dataset (Ctrl-C stops and writes)")
    record.add_argument("--device", required=True, help="adb serial (host:port connects it)")
    record.add_argument("--participant", required=True, help="participant (collector) id")
    record.add_argument("--out", required=True, help="session dataset folder")
    record.add_argument("--adb-port", type=int, default=5037, help="adb server port")
    record.add_argument("--app", default="bubblescope-sim",
                        help="app driver (devices/data/apps.yaml)")
    record.add_argument("--server-jar", type=Path,
                        help="scrcpy server file (default: the job spec's default locations)")
    record.add_argument("--duration", type=float, help="stop after this many seconds")
    record.add_argument("--views", type=int, help="stop after this many completed views")
    record.add_argument("--platform", help="platform name for the session (default: the "
                        "virtual phone's platform, else the app driver's name)")
    record.set_defaults(func=_record)
