"""`bubblescope submit` and friends, against a real Ray head started with `ray start`.

The head gets its own --temp-dir: `ray start` records its address in <temp-dir>/ray_current_cluster
and a bare `ray.init()` elsewhere in this pytest process (conftest's ray_local) attaches to the
cluster named in the default /tmp/ray/ray_current_cluster, so a separate temp dir keeps the two
apart. It is stopped by signalling its own process group, never with `ray stop`, which would
kill every Ray on the machine, other test sessions' included.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bubblescope.cluster.cli import main
from bubblescope.cluster.job import load_job
from bubblescope.cluster.jobs_api import auth_headers, connect, resolve_address
from bubblescope.cluster.submit import build_working_dir, entrypoint, runtime_env
from tests.conftest import SMALL_JOB, write_job
from tests.support.processes import stop_process
from tests.support.wait import WaitTimeout, wait_for

BIN = Path(sys.executable).parent
START_DEADLINE_S = 90.0
STOP_DEADLINE_S = 60.0
LONG_JOB = SMALL_JOB.replace("job_id: small", "job_id: long").replace(
    "breadth: {steps: 120}", "breadth: {steps: 100000}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _head_command(temp_dir: str, dashboard_port: int) -> list[str]:
    return [str(BIN / "ray"), "start", "--head", "--block", f"--port={_free_port()}",
            f"--dashboard-port={dashboard_port}", "--dashboard-host=127.0.0.1",
            f"--ray-client-server-port={_free_port()}",
            f"--dashboard-agent-listen-port={_free_port()}", "--num-cpus=2",
            "--include-dashboard=true", "--disable-usage-stats", f"--temp-dir={temp_dir}"]


def _head_env() -> dict[str, str]:
    """No RAY_ADDRESS (the head must not join anything); this venv first on PATH, as on a
    cluster image with bubblescope installed, so the entrypoint finds `bubblescope`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _wait_for_jobs_api(address: str, head: subprocess.Popen, log: Path) -> None:
    def answers() -> bool:
        if head.poll() is not None:
            pytest.fail(f"ray start exited {head.returncode}:\n{log.read_text()[-3000:]}")
        try:
            connect(address).list_jobs()
        except Exception:  # not up yet: any error the client raises means the same
            return False
        return True

    wait_for(answers, START_DEADLINE_S, every_s=0.5, what=f"the Jobs API at {address}",
             detail=lambda: log.read_text()[-3000:])


def _stop_head(head: subprocess.Popen) -> None:
    """SIGTERM lets `ray start --block` drain and stop its processes; then the group is swept
    (its own session: only what it started)."""
    stop_process(head, STOP_DEADLINE_S, group=True)


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A Ray head with the dashboard's Jobs API, started the way a user would."""
    temp_dir = tempfile.mkdtemp(prefix="bs-ray-", dir="/tmp")  # short: unix socket paths
    dashboard_port = _free_port()
    log = Path(temp_dir) / "ray-start.log"
    with log.open("w") as out:
        head = subprocess.Popen(_head_command(temp_dir, dashboard_port), env=_head_env(),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard_port}"
    try:
        _wait_for_jobs_api(address, head, log)
        yield address
    finally:
        _stop_head(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_address_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)


def _submission_ids(address: str) -> set[str]:
    return {d.submission_id for d in connect(address).list_jobs() if d.submission_id}


def _submitted_id(stdout: str) -> str:
    line = next(line for line in stdout.splitlines() if line.startswith("submitted "))
    return line.split()[1]


def _await_status(address: str, submission_id: str, wanted: str) -> str:
    client = connect(address)

    def status() -> str:
        return str(client.get_job_status(submission_id).value)

    with contextlib.suppress(WaitTimeout):  # the caller's assert shows the status it got
        wait_for(lambda: status() == wanted, STOP_DEADLINE_S, every_s=0.5,
                 what=f"{submission_id} to be {wanted}")
    return status()


# --- against the real head -----------------------------------------------------------------

@pytest.mark.slow
def test_submit_wait_writes_results_where_asked(ray_head, tmp_path, monkeypatch, capsys):
    job = write_job(tmp_path, SMALL_JOB)
    monkeypatch.chdir(tmp_path)  # a relative --out is made absolute here, on the client
    code = main(["submit", str(job), "--address", ray_head, "--out", "results", "--wait",
                 "--timeout", "240"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    results = tmp_path / "results" / "small"
    summary = json.loads((results / "summary.json").read_text())
    assert summary["complete"] and len(summary["runs"]) == summary["runs_planned"] == 8
    assert all(run["complete"] for run in summary["runs"])
    assert (results / "report.html").is_file()
    submission_id = _submitted_id(out)
    assert "starting job small" in out + err  # the streamed driver log
    assert "SUCCEEDED" in err

    assert main(["status", submission_id, "--address", ray_head]) == 0
    assert f"{submission_id}: SUCCEEDED" in capsys.readouterr().out
    assert main(["logs", submission_id, "--address", ray_head]) == 0
    assert "starting job small" in capsys.readouterr().out
    assert main(["logs", submission_id, "--address", ray_head, "--follow", "--timeout", "30"]) == 0


@pytest.mark.slow
def test_status_jobs_and_stop_of_a_long_job(ray_head, tmp_path, capsys):
    job = write_job(tmp_path, LONG_JOB)
    assert main(["submit", str(job), "--address", ray_head, "--submission-id", "long-1"]) == 0
    assert _submitted_id(capsys.readouterr().out) == "long-1"
    assert main(["submit", str(job), "--address", ray_head, "--submission-id", "long-1"]) == 2
    assert "long-1 is taken" in capsys.readouterr().err

    assert main(["status", "long-1", "--address", ray_head]) == 0
    assert capsys.readouterr().out.startswith("long-1: ")
    assert main(["jobs", "--address", ray_head]) == 0
    listing = capsys.readouterr().out
    assert "long-1" in listing and str(tmp_path / "out" / "long") in listing

    assert _await_status(ray_head, "long-1", "RUNNING") == "RUNNING"
    assert main(["logs", "long-1", "--address", ray_head, "--follow", "--timeout", "2"]) == 1
    assert "stopped following after 2 s" in capsys.readouterr().err
    assert main(["stop", "long-1", "--address", ray_head]) == 0
    assert "stop requested for long-1" in capsys.readouterr().out
    assert _await_status(ray_head, "long-1", "STOPPED") == "STOPPED"
    assert main(["stop", "long-1", "--address", ray_head]) == 0
    assert "already ended: STOPPED" in capsys.readouterr().out


@pytest.mark.slow
def test_bad_job_file_fails_like_audit_and_submits_nothing(ray_head, tmp_path, capsys):
    bad = write_job(tmp_path, SMALL_JOB.replace("window: 20", "windw: 20"))
    before = _submission_ids(ray_head)
    assert main(["submit", str(bad), "--address", ray_head, "--wait"]) == 2
    submit_err = capsys.readouterr().err
    assert main(["audit", str(bad)]) == 2
    assert submit_err == capsys.readouterr().err
    assert submit_err.count("\n") == 1 and "windw" in submit_err
    assert _submission_ids(ray_head) == before


@pytest.mark.slow
def test_unknown_submission_is_a_usage_error(ray_head, capsys):
    assert main(["status", "no-such-submission", "--address", ray_head]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-submission" in err and "bubblescope jobs" in err


# --- without a cluster ---------------------------------------------------------------------

@pytest.mark.parametrize("command", [["submit", "JOB"], ["status", "x"], ["logs", "x"],
                                     ["stop", "x"], ["jobs"]])
def test_unreachable_address_names_it(command, small_job, capsys):
    address = f"http://127.0.0.1:{_free_port()}"
    argv = [str(small_job) if part == "JOB" else part for part in command]
    assert main([*argv, "--address", address]) == 3  # not the user's file: the cluster
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and address in err and "--address" in err


def test_address_must_be_a_dashboard_url(capsys):
    assert main(["jobs", "--address", "ray://head:10001"]) == 2
    assert "dashboard URL" in capsys.readouterr().err
    assert main(["jobs"]) == 2
    assert "--address" in capsys.readouterr().err


def test_environment_overrides_address_as_in_ray(capsys):
    assert resolve_address("head:8265", {}) == "http://head:8265"
    assert resolve_address("http://a:1", {"RAY_ADDRESS": "http://b:2"}) == "http://b:2"
    assert "overrides --address" in capsys.readouterr().err


def test_working_dir_holds_the_same_job(small_job, tmp_path):
    job = load_job(small_job)
    folder = tmp_path / "wd"
    folder.mkdir()
    name = build_working_dir(job, folder)
    copy = yaml.safe_load((folder / name).read_text())
    assert copy["personas"] == ["personas/0-concentrated.yaml", "personas/1-dispersed.yaml"]
    assert load_job(folder / name).fingerprint() == job.fingerprint()
    command = entrypoint(name, job)
    assert "--address auto --no-progress --job-id small --out" in command
    assert command.endswith(job.storage_path) and Path(job.storage_path).is_absolute()


def test_pip_installs_this_version():
    assert "pip" not in runtime_env("/wd", pip=False)
    assert runtime_env("/wd", pip=True)["pip"][0].startswith("bubblescope")


def test_token_sources_follow_ray(tmp_path):
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("filetoken\n")
    local, remote = "http://127.0.0.1:8265", "http://head.example:8265"
    assert auth_headers(local, {}, tmp_path) == {"Authorization": "Bearer filetoken"}
    assert auth_headers(remote, {}, tmp_path) == {}  # the local token stays local
    assert auth_headers(remote, {"RAY_AUTH_MODE": "token"}, tmp_path)
    assert auth_headers(remote, {"RAY_AUTH_TOKEN": "t"}, tmp_path) == {
        "Authorization": "Bearer t"}
    assert auth_headers(local, {"RAY_AUTH_MODE": "disabled"}, tmp_path) == {}
    path = tmp_path / "tok"
    path.write_text("p")
    assert auth_headers(remote, {"RAY_AUTH_TOKEN_PATH": str(path)}, tmp_path) == {
        "Authorization": "Bearer p"}
