"""The policy RayService's Serve config is rendered only from an agent job whose model files
are where the policy pods have them (the models volume) and whose HTTP port is KubeRay's."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bubblescope.cluster.errors import JobFileError
from bubblescope.cluster.k8s_render import POLICY_JOB, serve_config


def _job(tmp_path: Path, **agent) -> Path:
    data = yaml.safe_load(POLICY_JOB.read_text())
    data["personas"] = [str((POLICY_JOB.parent / p).resolve()) for p in data["personas"]]
    data["policy"]["agent"].update(agent)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_model_off_the_models_volume_is_refused(tmp_path: Path) -> None:
    with pytest.raises(JobFileError, match="not on the models volume"):
        serve_config(_job(tmp_path, base_model="models/qwen"))  # relative: this machine's


def test_an_adapter_off_the_models_volume_is_refused(tmp_path: Path) -> None:
    job = _job(tmp_path, adapters={"concentrated": "/home/me/adapters/concentrated/sft"})
    with pytest.raises(JobFileError, match="adapters.concentrated.sft is not on the models volume"):
        serve_config(job)


def test_another_http_port_is_refused(tmp_path: Path) -> None:
    job = _job(tmp_path, deployment={"http_port": 9000, "gpus_per_replica": 1})
    with pytest.raises(JobFileError, match="set 8000"):
        serve_config(job)


def test_a_job_without_an_agent_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(POLICY_JOB.read_text())
    data["personas"] = [str((POLICY_JOB.parent / p).resolve()) for p in data["personas"]]
    data["policy"] = {"kind": "persona-stats"}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(JobFileError, match="serves agent policies"):
        serve_config(path)
