"""Bad job and persona files: one line naming file, key and reason; exit 2; nothing started."""

from __future__ import annotations

from pathlib import Path

import pytest

from bubblescope.cluster.cli import main
from bubblescope.cluster.job import load_job
from tests.conftest import SMALL_JOB, write_job


def _audit(job: Path, capsys) -> tuple[int, str]:
    code = main(["audit", str(job), "--no-progress", "--no-metrics"])
    return code, capsys.readouterr().err.strip()


def _assert_one_line(err: str, *needles: str) -> None:
    assert err.count("\n") == 0, err
    for needle in needles:
        assert needle in err, err


def test_the_quickstart_is_valid() -> None:
    job = load_job(Path(__file__).parents[2] / "examples" / "quickstart.yaml")
    assert job.job_id == "quickstart"
    assert set(job.personas) == {"concentrated", "dispersed"}
    assert list(job.profiles) == ["bilibili-like", "kuaishou-like", "douyin-like", "null", "frozen"]
    assert job.spec.replicates == 3


def test_unknown_key_names_file_key_and_allowed_keys(tmp_path: Path, capsys) -> None:
    job = write_job(tmp_path, SMALL_JOB + "    replicatess: 3\n")
    code, err = _audit(job, capsys)
    assert code == 2
    _assert_one_line(err, str(job), "replicatess", "unknown key", "replicates")
    assert not (tmp_path / "out").exists()  # nothing started


def test_unknown_nested_key(tmp_path: Path, capsys) -> None:
    job = write_job(tmp_path, SMALL_JOB.replace("{count: 2,", "{count: 2, speed: 3,"))
    code, err = _audit(job, capsys)
    assert code == 2
    _assert_one_line(err, "devices.speed", "unknown key", "cpus_per_device")


def test_bad_value(tmp_path: Path, capsys) -> None:
    job = write_job(tmp_path, SMALL_JOB.replace("window: 20", "window: -1"))
    code, err = _audit(job, capsys)
    assert code == 2
    _assert_one_line(err, "window", "greater than or equal to 2")


def test_unknown_platform(tmp_path: Path, capsys) -> None:
    job = write_job(tmp_path, SMALL_JOB.replace("douyin-like,", "tiktok-like,"))
    code, err = _audit(job, capsys)
    assert code == 2
    _assert_one_line(err, "platforms.0", "tiktok-like", "douyin-like")


def test_inline_platform_with_a_bad_field(tmp_path: Path, capsys) -> None:
    body = SMALL_JOB.replace('[douyin-like, "null"]',
                             "[{name: mine, base: douyin-like, exploration: 2}]")
    code, err = _audit(write_job(tmp_path, body), capsys)
    assert code == 2
    _assert_one_line(err, "platforms.mine.exploration", "less than or equal to 1")


def test_inline_platform_is_resolved_from_its_base(tmp_path: Path) -> None:
    body = SMALL_JOB.replace('[douyin-like, "null"]',
                             "[{name: mine, base: douyin-like, exploration: 0.2}]")
    job = load_job(write_job(tmp_path, body))
    profile = job.profiles["mine"]
    assert profile.exploration == 0.2
    assert profile.responsiveness == load_job(write_job(tmp_path, SMALL_JOB, "b.yaml")) \
        .profiles["douyin-like"].responsiveness


def test_missing_persona_file(tmp_path: Path, capsys) -> None:
    job = write_job(tmp_path, SMALL_JOB.replace("dispersed.yaml", "nobody.yaml"))
    code, err = _audit(job, capsys)
    assert code == 2
    _assert_one_line(err, "personas.1", "nobody.yaml", "does not exist")


def test_persona_file_that_fails_validation(tmp_path: Path, capsys) -> None:
    persona = tmp_path / "broken.yaml"
    source = Path(__file__).parents[2] / "examples" / "personas" / "concentrated.yaml"
    text = source.read_text().replace("id: concentrated", "id: broken", 1)
    persona.write_text(text.replace("n_records: 939", "n_records: -1", 1))
    job = write_job(tmp_path, SMALL_JOB.replace("PERSONAS/dispersed.yaml", str(persona)))
    code, err = _audit(job, capsys)
    assert code == 2
    _assert_one_line(err, str(persona), "stats.n_records", "greater than or equal to 1")


def test_not_yaml(tmp_path: Path, capsys) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("personas: [a\n")
    code, err = _audit(job, capsys)
    assert code == 2
    _assert_one_line(err, str(job), "not valid YAML")


def test_missing_job_file(tmp_path: Path, capsys) -> None:
    code, err = _audit(tmp_path / "nope.yaml", capsys)
    assert code == 2
    _assert_one_line(err, "nope.yaml", "cannot read")


def test_experiments_must_name_one(tmp_path: Path, capsys) -> None:
    body = SMALL_JOB.replace("experiments:", "experiments: {}\n    old_experiments:")
    body = body.replace("\n    old_experiments:\n      depth: {cultivation_steps: 60, "
                        "counterfactual_steps: 60}\n      breadth: {steps: 120}", "")
    code, err = _audit(write_job(tmp_path, body), capsys)
    assert code == 2
    _assert_one_line(err, "experiments", "at least one experiment")


@pytest.mark.parametrize("job_id", ["has space", "../escape", ""])
def test_job_id_must_be_file_safe(tmp_path: Path, capsys, job_id: str) -> None:
    code = main(["audit", str(write_job(tmp_path, SMALL_JOB)), "--job-id", job_id,
                 "--no-progress", "--no-metrics"])
    assert code == 2
    assert "job_id" in capsys.readouterr().err
