"""The `bubblescope` command line."""

from __future__ import annotations

import argparse
import sys

from bubblescope.errors import BubblescopeError, ConfigError

EXIT_USAGE = 2


def _audit(args: argparse.Namespace) -> int:
    from .job import load_job
    from .local import AuditOptions, run_audit

    job = load_job(args.job, job_id=args.job_id, storage_path=args.out)
    options = AuditOptions(address=args.address, progress=not args.no_progress,
                           metrics_port=None if args.no_metrics else
                           (-1 if args.metrics_port is None else args.metrics_port))
    return run_audit(job, options)


def _report(args: argparse.Namespace) -> int:
    from .outputs import load_job_dir, write_outputs

    job, store = load_job_dir(args.dir)
    summary = write_outputs(job, store)
    state = "complete" if summary["complete"] else "partial"
    print(f"{state} job {job.job_id}: {store.path('summary.json')}, {store.path('report.html')}")
    return 0


def _persona_from_sim(args: argparse.Namespace) -> int:
    from bubblescope.personas.loader import save_persona
    from bubblescope.sim.recruit import persona_from_human

    persona = persona_from_human(args.name, seed=args.seed, records=args.records)
    save_persona(persona, args.out)
    print(f"wrote persona {persona.id} ({persona.stats.n_records} records) to {args.out}")
    return 0


def _dataset_import_personaact(args: argparse.Namespace) -> int:
    from bubblescope.personas.import_personaact import import_personaact

    result = import_personaact(args.src, args.out, collectors=args.collector)
    empty = f"; {len(result.empty_sessions)} without records" if result.empty_sessions else ""
    print(f"imported {result.sessions} sessions ({result.records} records{empty}) of "
          f"{', '.join(result.participants)} into {args.out}")
    return 0


def _dataset_stats(args: argparse.Namespace) -> int:
    import json

    from bubblescope.personas.dataset import dataset_summary, summary_table

    summary = dataset_summary(args.dir)
    print(json.dumps(summary, indent=1) if args.json else summary_table(summary))
    return 0


def _persona_from_dataset(args: argparse.Namespace) -> int:
    from bubblescope.personas.dataset import persona_from_dataset
    from bubblescope.personas.loader import save_persona

    persona = persona_from_dataset(args.dir, args.participant, narrative=args.narrative)
    save_persona(persona, args.out)
    print(f"wrote persona {persona.id} ({persona.stats.n_records} records) to {args.out}")
    return 0


def _platforms(args: argparse.Namespace) -> int:
    from bubblescope.sim.profiles import named_profiles

    for profile in named_profiles().values():
        print(f"{profile.name:15s} responsiveness {profile.responsiveness:<5g} exploration "
              f"{profile.exploration:<5g} {profile.description}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    import json

    from bubblescope.personas.schema import Persona
    from bubblescope.sim.profiles import PlatformProfile

    from .jobspec import JobSpec

    model = {"job": JobSpec, "persona": Persona, "platform": PlatformProfile}[args.kind]
    print(json.dumps(model.model_json_schema(), indent=1))
    return 0


def _add_audit(sub) -> None:
    audit = sub.add_parser("audit", help="run an audit job on Ray (local unless --address)")
    audit.add_argument("job", help="job file (YAML)")
    audit.add_argument("--out", help="storage path for results (default: the job's storage_path)")
    audit.add_argument("--job-id", help="results go to <out>/<job-id>; the same id resumes")
    audit.add_argument("--address", help="Ray cluster to join (e.g. auto or ray://HEAD:10001)")
    audit.add_argument("--metrics-port", type=int, help="Prometheus exporter port")
    audit.add_argument("--no-metrics", action="store_true", help="no Prometheus exporter")
    audit.add_argument("--no-progress", action="store_true", help="no progress output")
    audit.set_defaults(func=_audit)


def _add_submit(sub) -> None:
    from .submit import add_submit_commands

    add_submit_commands(sub)


def _add_misc(sub) -> None:
    report = sub.add_parser("report", help="(re)write summary.json and report.html of a job")
    report.add_argument("dir", help="the job's folder, <storage_path>/<job_id>")
    report.set_defaults(func=_report)
    persona = sub.add_parser("persona", help="persona files")
    persona_sub = persona.add_subparsers(dest="persona_command", required=True)
    from_sim = persona_sub.add_parser("from-sim", help="record a synthetic human and analyse it")
    from_sim.add_argument("name", help="synthetic human (see sim/data/humans.yaml)")
    from_sim.add_argument("--out", required=True, help="persona file to write")
    from_sim.add_argument("--seed", type=int, default=0)
    from_sim.add_argument("--records", type=int, help="videos to record (default: as calibrated)")
    from_sim.set_defaults(func=_persona_from_sim)
    _add_persona_from_dataset(persona_sub)
    platforms = sub.add_parser("platforms", help="list the named simulated platform profiles")
    platforms.set_defaults(func=_platforms)
    schema = sub.add_parser("schema", help="JSON Schema of a file format (every key described)")
    schema.add_argument("kind", choices=["job", "persona", "platform"])
    schema.set_defaults(func=_schema)


def _add_persona_from_dataset(persona_sub) -> None:
    from_dataset = persona_sub.add_parser("from-dataset",
                                          help="analyse one participant of a session dataset")
    from_dataset.add_argument("dir", help="session dataset folder")
    from_dataset.add_argument("--participant", required=True, help="participant id")
    from_dataset.add_argument("--out", required=True, help="persona file to write")
    from_dataset.add_argument("--narrative", help="self-narrative (default: a generated line)")
    from_dataset.set_defaults(func=_persona_from_dataset)


def _add_dataset(sub) -> None:
    dataset = sub.add_parser("dataset", help="session datasets (what persona agents train on)")
    dataset_sub = dataset.add_subparsers(dest="dataset_command", required=True)
    personaact = dataset_sub.add_parser("import-personaact",
                                        help="convert PersonaAct session JSON into a dataset")
    personaact.add_argument("src", nargs="+", help="session files, a collector folder, or a "
                            "root of collector folders")
    personaact.add_argument("--out", required=True, help="dataset folder (created or added to)")
    personaact.add_argument("--collector", nargs="+", help="import only these collectors")
    personaact.set_defaults(func=_dataset_import_personaact)
    stats = dataset_sub.add_parser("stats", help="sessions, records and watch time per participant")
    stats.add_argument("dir", help="dataset folder")
    stats.add_argument("--json", action="store_true", help="print the summary as JSON")
    stats.set_defaults(func=_dataset_stats)


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


def _devices(args: argparse.Namespace) -> int:
    from bubblescope.sim.android.farm import adb_client

    client = adb_client(args.adb_port)
    for device in client.list():
        model = ""
        if device.state == "device":
            model = client.device(device.serial).prop.model or ""
        print(f"{device.serial}\t{device.state}\t{model}")
    return 0


def _add_farm(sub) -> None:
    from pathlib import Path

    from bubblescope.sim.android.farm import DEFAULT_DIR

    farm = sub.add_parser("farm", help="virtual Android phones on this machine")
    farm_sub = farm.add_subparsers(dest="farm_command", required=True)
    for name, func, helptext in (("up", _farm_up, "start virtual phones and adb-connect them"),
                                 ("list", _farm_list, "the farm's phones and their state"),
                                 ("down", _farm_down, "disconnect and stop the phones")):
        command = farm_sub.add_parser(name, help=helptext)
        command.add_argument("--dir", type=Path, default=DEFAULT_DIR,
                             help=f"the farm's folder (default {DEFAULT_DIR})")
        command.set_defaults(func=func)
        if name == "up":
            command.add_argument("--devices", type=int, required=True)
            command.add_argument("--platform", default="douyin-like",
                                 help="simulated platform profile the apps log into")
            command.add_argument("--seed", type=int, default=0)
            command.add_argument("--time-warp", type=float, default=1.0,
                                 help="device seconds per real second")
            command.add_argument("--adb-port", type=int, default=5037)
    devices = sub.add_parser("devices", help="devices attached to adb, real or virtual")
    devices.add_argument("--adb-port", type=int, default=5037)
    devices.set_defaults(func=_devices)


def _record(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bubblescope.actors.recorder import RecorderConfig, record

    from .job import SCRCPY_SERVER_LOCATIONS

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


def _add_record(sub) -> None:
    from pathlib import Path

    record = sub.add_parser("record", help="record a person browsing a short-video app on a "
                            "phone into a session dataset (Ctrl-C stops and writes)")
    record.add_argument("--device", required=True, help="adb serial (host:port connects it)")
    record.add_argument("--participant", required=True, help="participant (collector) id")
    record.add_argument("--out", required=True, help="session dataset folder")
    record.add_argument("--adb-port", type=int, default=5037, help="adb server port")
    record.add_argument("--app", default="bubblescope-sim",
                        help="app driver (actors/data/apps.yaml)")
    record.add_argument("--server-jar", type=Path,
                        help="scrcpy server file (default: the job spec's default locations)")
    record.add_argument("--duration", type=float, help="stop after this many seconds")
    record.add_argument("--views", type=int, help="stop after this many completed views")
    record.add_argument("--platform", help="platform name for the session (default: the "
                        "virtual phone's platform, else the app driver's name)")
    record.set_defaults(func=_record)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bubblescope",
                                     description="Audit the filter bubbles of short-video feeds.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_audit(sub)
    _add_submit(sub)
    _add_misc(sub)
    _add_dataset(sub)
    _add_farm(sub)
    _add_record(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BubblescopeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
