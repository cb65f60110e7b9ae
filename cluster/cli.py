"""The `bubblescope` command line.

Exit codes say whose fault a failure is:
    0    done
    1    the run failed or ended partial (the message says why); a bug is a traceback here
    2    the user's input: a file, key, value or flag is wrong (ConfigError); nothing started
    3    something the command needs does not answer: a Ray cluster or address, the Ray
         dashboard, an adb server or a device (UnreachableError); the same command works once
         it is up
    130  interrupted (Ctrl-C or SIGTERM); what was committed stays, the same command resumes
"""

from __future__ import annotations

import argparse
import sys

from bubblescope.cluster.cli_accounts import add_accounts
from bubblescope.cluster.cli_agent import add_agents, add_eval, add_model, add_serve, add_train
from bubblescope.cluster.cli_data import add_dataset, add_persona_from_dataset
from bubblescope.cluster.cli_devices import add_farm, add_record
from bubblescope.cluster.k8s_render import add_k8s
from bubblescope.errors import BubblescopeError, ConfigError, UnreachableError

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_CODES = """exit codes:
  0    done
  1    the run failed or ended partial; the message says why
  2    your input: a file, key, value or flag is wrong; nothing started
  3    a Ray cluster or address, the Ray dashboard, an adb server or a device does not answer
  130  interrupted (Ctrl-C); the same command resumes"""


def _audit(args: argparse.Namespace) -> int:
    from bubblescope.cluster.job import load_job
    from bubblescope.cluster.local import AuditOptions, run_audit

    job = load_job(args.job, job_id=args.job_id, storage_path=args.out)
    options = AuditOptions(address=args.address, progress=not args.no_progress,
                           metrics_port=None if args.no_metrics else
                           (-1 if args.metrics_port is None else args.metrics_port))
    return run_audit(job, options)


def _report(args: argparse.Namespace) -> int:
    from bubblescope.cluster.outputs import load_job_dir, write_outputs

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


def _platforms(args: argparse.Namespace) -> int:
    from bubblescope.sim.profiles import named_profiles

    for profile in named_profiles().values():
        print(f"{profile.name:15s} responsiveness {profile.responsiveness:<5g} exploration "
              f"{profile.exploration:<5g} {profile.description}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    import json

    from pydantic import BaseModel

    from bubblescope.jobspec import JobSpec
    from bubblescope.personas.schema import Persona
    from bubblescope.sim.profiles import PlatformProfile

    models: dict[str, type[BaseModel]] = {"job": JobSpec, "persona": Persona,
                                         "platform": PlatformProfile}
    model = models[args.kind]
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
    from bubblescope.cluster.submit import add_submit_commands

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
    add_persona_from_dataset(persona_sub)
    platforms = sub.add_parser("platforms", help="list the named simulated platform profiles")
    platforms.set_defaults(func=_platforms)
    schema = sub.add_parser("schema", help="JSON Schema of a file format (every key described)")
    schema.add_argument("kind", choices=["job", "persona", "platform"])
    schema.set_defaults(func=_schema)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bubblescope",
                                     description="Audit the filter bubbles of short-video feeds.",
                                     epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_audit(sub)
    _add_submit(sub)
    _add_misc(sub)
    add_dataset(sub)
    add_farm(sub)
    add_accounts(sub)
    add_record(sub)
    add_model(sub)
    add_train(sub)
    add_eval(sub)
    add_agents(sub)
    add_serve(sub)
    add_k8s(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BubblescopeError as exc:
        error = own_error(exc)
        print(f"error: {error}", file=sys.stderr)
        return exit_code(error)


def own_error(error: BubblescopeError) -> BubblescopeError:
    """The error itself, also when Ray passes on one raised in an actor: its RayTaskError
    subclasses the cause's class and holds the cause (with its one-line message) in .cause."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BubblescopeError) else error


def exit_code(error: BubblescopeError) -> int:
    """Whose fault it is: the user's input (2), a peer that does not answer (3), else 1."""
    if isinstance(error, ConfigError):
        return EXIT_USAGE
    if isinstance(error, UnreachableError):
        return EXIT_UNREACHABLE
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
