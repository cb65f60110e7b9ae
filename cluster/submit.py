"""`bubblescope submit` and its management commands (status, logs, stop, jobs).

`bubblescope submit JOB.yaml --address http://HEAD:8265` validates the job file here, ships it
and its persona files to the cluster in a runtime_env `working_dir`, and runs
`bubblescope audit` there as the job's entrypoint. Nothing is submitted unless the file is valid.

Results: the storage path is made absolute here (the job's `storage_path`, or `--out`) and the
cluster writes to exactly that path. On one machine that is simply the folder the user expects;
on a multi-node cluster it must be a filesystem every node mounts at the same path, or an
`s3://` / `gs://` URI.

Software: the cluster must have bubblescope installed (its `bubblescope` on PATH); `--pip`
instead asks Ray to install this client's version in a per-job virtualenv.

Addresses and tokens: see jobs_api.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from bubblescope.cluster.job import ResolvedJob, load_job
from bubblescope.cluster.jobs_api import (
    SubmissionNotFoundError,
    cluster_errors,
    connect,
    is_local,
    resolve_address,
    say,
)
from bubblescope.errors import ConfigError

POLL_S = 1.0
DEFAULT_WAIT_S = 3600.0
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})


# --- what runs on the cluster --------------------------------------------------------------

def build_working_dir(job: ResolvedJob, folder: Path) -> str:
    """Copy the job file and its personas into `folder`, persona paths rewritten relative to
    the copy, so the cluster sees the same job; returns the copied job file's name."""
    source = Path(job.source)
    data = yaml.safe_load(source.read_text("utf-8"))
    (folder / "personas").mkdir()
    copied = []
    for index, entry in enumerate(data["personas"]):
        original = (source.parent / entry).resolve()  # as load_job resolves it
        target = Path("personas") / f"{index}-{original.name}"
        shutil.copyfile(original, folder / target)
        copied.append(target.as_posix())
    data["personas"] = copied
    (folder / source.name).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return source.name


def entrypoint(job_file: str, job: ResolvedJob) -> str:
    """`bubblescope audit` on the cluster; the driver finds its cluster through RAY_ADDRESS."""
    return shlex.join(["bubblescope", "audit", job_file, "--address", "auto", "--no-progress",
                       "--job-id", job.job_id, "--out", job.storage_path])


def runtime_env(working_dir: str, pip: bool) -> dict[str, Any]:
    """`--pip` installs this client's bubblescope version, so both sides agree on the spec."""
    env: dict[str, Any] = {"working_dir": working_dir}
    if pip:
        try:
            env["pip"] = [f"bubblescope=={metadata.version('bubblescope')}"]
        except metadata.PackageNotFoundError:
            env["pip"] = ["bubblescope"]
    return env


# --- following a submission ----------------------------------------------------------------

async def _tail(client, submission_id: str, deadline: float) -> bool:
    """Stream logs to stdout until the job ends (True) or the deadline passes (False)."""
    chunks = client.tail_job_logs(submission_id)
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                chunk = await asyncio.wait_for(chunks.__anext__(), left)
            except StopAsyncIteration:
                return True
            except TimeoutError:
                return False
            sys.stdout.write(chunk)
            sys.stdout.flush()
        return False
    finally:
        await chunks.aclose()


def follow(client, address: str, submission_id: str, deadline: float) -> bool:
    """Tail the logs; a dropped stream is not fatal, the caller still polls the status."""
    with cluster_errors(address):
        try:
            return asyncio.run(_tail(client, submission_id, deadline))
        except RuntimeError as exc:
            if "status code" in str(exc):
                raise
            say(f"warning: the log stream broke ({str(exc).splitlines()[0]}); polling status")
            return False


def await_terminal(client, address: str, submission_id: str, deadline: float) -> str | None:
    """The final status, or None if the job is still going at the deadline."""
    while True:
        with cluster_errors(address):
            status = str(client.get_job_status(submission_id).value)
        if status in TERMINAL:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))


def _hints(address: str, submission_id: str) -> str:
    return (f"follow: bubblescope logs {submission_id} --address {address} --follow\n"
            f"status: bubblescope status {submission_id} --address {address}\n"
            f"stop:   bubblescope stop {submission_id} --address {address}")


def _wait(client, address: str, submission_id: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    try:
        follow(client, address, submission_id, deadline)
        status = await_terminal(client, address, submission_id, deadline)
    except KeyboardInterrupt:
        say(f"detached; {submission_id} keeps running on the cluster\n"
            f"{_hints(address, submission_id)}")
        return 130
    if status is None:
        say(f"{submission_id} is still running after {timeout:g} s; it keeps running\n"
            f"{_hints(address, submission_id)}")
        return 1
    with cluster_errors(address):
        message = client.get_job_info(submission_id).message or ""
    say(f"{submission_id}: {status} {message}".rstrip())
    return 0 if status == "SUCCEEDED" else 1


# --- the commands --------------------------------------------------------------------------

def _taken(client, address: str, submission_id: str) -> bool:
    """Ray answers a duplicate id with a server traceback; we ask first."""
    try:
        with cluster_errors(address):
            client.get_job_info(submission_id)
    except SubmissionNotFoundError:
        return False
    return True


def _submit(args: argparse.Namespace) -> int:
    job = load_job(args.job, job_id=args.job_id, storage_path=args.out)
    address = resolve_address(args.address, os.environ)
    client = connect(address)
    submission_id = args.submission_id or f"bubblescope-{job.job_id}-{secrets.token_hex(4)}"
    if args.submission_id and _taken(client, address, submission_id):
        raise ConfigError(f"submission id {submission_id} is taken on {address}; pick another "
                          "--submission-id (results resume by --job-id, not by submission)")
    results = f"{job.storage_path.rstrip('/')}/{job.job_id}"
    with tempfile.TemporaryDirectory(prefix="bubblescope-submit-") as folder:
        job_file = build_working_dir(job, Path(folder))
        with cluster_errors(address):
            client.submit_job(entrypoint=entrypoint(job_file, job), submission_id=submission_id,
                              runtime_env=runtime_env(folder, args.pip),
                              metadata={"bubblescope_job_id": job.job_id,
                                        "bubblescope_results": results})
    print(f"submitted {submission_id}\nresults: {results}\n{_hints(address, submission_id)}",
          flush=True)
    if "://" not in job.storage_path and not is_local(address):
        say("note: results are written on the cluster at this path; on several nodes it must "
            "be a shared filesystem (or use an s3:// / gs:// --out)")
    return _wait(client, address, submission_id, args.timeout) if args.wait else 0


def _status(args: argparse.Namespace) -> int:
    address = resolve_address(args.address, os.environ)
    client = connect(address)
    with cluster_errors(address):
        info = client.get_job_info(args.submission_id)
    print(f"{args.submission_id}: {info.status.value}")
    if info.message:
        print(info.message)
    results = (info.metadata or {}).get("bubblescope_results")
    if results:
        print(f"results: {results}")
    return 0


def _logs(args: argparse.Namespace) -> int:
    address = resolve_address(args.address, os.environ)
    client = connect(address)
    if not args.follow:
        with cluster_errors(address):
            sys.stdout.write(client.get_job_logs(args.submission_id))
        return 0
    with cluster_errors(address):
        client.get_job_status(args.submission_id)  # a clear error for an unknown id
    if follow(client, address, args.submission_id, time.monotonic() + args.timeout):
        return 0
    say(f"stopped following after {args.timeout:g} s; the job may still be running")
    return 1


def _stop(args: argparse.Namespace) -> int:
    address = resolve_address(args.address, os.environ)
    client = connect(address)
    with cluster_errors(address):
        stopped = client.stop_job(args.submission_id)
        status = client.get_job_status(args.submission_id).value
    if stopped:
        print(f"stop requested for {args.submission_id} (now {status}); its results so far stay "
              "in the store and a new submission of the same job id resumes them")
    else:
        print(f"{args.submission_id} had already ended: {status}")
    return 0


def _started(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"


def _jobs(args: argparse.Namespace) -> int:
    address = resolve_address(args.address, os.environ)
    client = connect(address)
    with cluster_errors(address):
        details = [d for d in client.list_jobs() if d.submission_id]
    if not details:
        print(f"no submissions on {address}")
        return 0
    print(f"{'SUBMISSION':36s} {'STATUS':10s} {'STARTED':19s} {'JOB':16s} RESULTS")
    for info in sorted(details, key=lambda d: d.start_time or 0):
        meta = info.metadata or {}
        print(f"{info.submission_id:36s} {info.status.value:10s} {_started(info.start_time)} "
              f"{meta.get('bubblescope_job_id', '-'):16s} {meta.get('bubblescope_results', '-')}")
    return 0


# --- argparse ------------------------------------------------------------------------------

def _seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _address_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", help="the cluster's dashboard URL, e.g. http://HEAD:8265 "
                        "(default: $RAY_API_SERVER_ADDRESS or $RAY_ADDRESS)")


def _add_submit(sub) -> None:
    submit = sub.add_parser("submit", help="run an audit job on a Ray cluster (Ray Jobs API)")
    submit.add_argument("job", help="job file (YAML); it and its personas are shipped")
    _address_arg(submit)
    submit.add_argument("--out", help="storage path for results, made absolute here (on several "
                        "nodes: a shared filesystem or s3:// / gs://; default: the job's)")
    submit.add_argument("--job-id", help="results go to <out>/<job-id>; the same id resumes")
    submit.add_argument("--submission-id", help="Ray submission id (default: generated)")
    submit.add_argument("--wait", action="store_true",
                        help="stream the logs until the job ends; exit 0 only if it succeeded")
    submit.add_argument("--timeout", type=_seconds, default=DEFAULT_WAIT_S,
                        help=f"give up waiting after this many seconds (default {DEFAULT_WAIT_S:g})")
    submit.add_argument("--pip", action="store_true",
                        help="have Ray pip-install bubblescope for the job (clusters without it)")
    submit.set_defaults(func=_submit)


def _add_manage(sub) -> None:
    for name, func, text in (("status", _status, "status of a submitted job"),
                             ("logs", _logs, "logs of a submitted job"),
                             ("stop", _stop, "stop a submitted job")):
        parser = sub.add_parser(name, help=text)
        parser.add_argument("submission_id", help="as printed by `bubblescope submit`")
        _address_arg(parser)
        parser.set_defaults(func=func)
        if name == "logs":
            parser.add_argument("--follow", action="store_true", help="stream until the job ends")
            parser.add_argument("--timeout", type=_seconds, default=DEFAULT_WAIT_S,
                                help=f"stop following after this many seconds "
                                f"(default {DEFAULT_WAIT_S:g})")
    jobs = sub.add_parser("jobs", help="list the jobs submitted to a Ray cluster")
    _address_arg(jobs)
    jobs.set_defaults(func=_jobs)


def add_submit_commands(sub) -> None:
    """`submit`, `status`, `logs`, `stop` and `jobs` (called by cli.build_parser)."""
    _add_submit(sub)
    _add_manage(sub)
