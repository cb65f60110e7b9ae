"""Job files with the agent policy: every path checked at job start, one line per mistake."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bubblescope.cluster.errors import JobFileError
from bubblescope.cluster.job import load_job
from tests.conftest import SMALL_JOB, write_job

AGENT = """
    policy:
      kind: agent
      agent:
        base_model: BASE
        adapters: {concentrated: ADAPTER}
"""


def _job(tmp_path, base, adapter) -> str:
    body = SMALL_JOB + AGENT.replace("BASE", str(base)).replace("ADAPTER", str(adapter))
    return write_job(tmp_path, body)


@pytest.fixture
def adapter(tmp_path, tiny_vlm):
    from peft import LoraConfig, get_peft_model

    from bubblescope.agent.vlm import load_model
    from bubblescope.trainer.config import LANGUAGE_MODULES

    folder = tmp_path / "adapter"
    get_peft_model(load_model(tiny_vlm), LoraConfig(r=4, target_modules=LANGUAGE_MODULES)) \
        .save_pretrained(str(folder))
    return folder


def test_a_valid_agent_job_resolves_its_paths(tmp_path, tiny_vlm, adapter):
    job = load_job(_job(tmp_path, tiny_vlm, adapter))
    agent = job.spec.policy.agent
    assert agent.base_model == str(tiny_vlm) and agent.adapters == {"concentrated": str(adapter)}
    assert agent.adapter_key("concentrated") == "concentrated"
    assert agent.adapter_key("dispersed") == ""  # no adapter: the base model plays it


@pytest.mark.parametrize("broken", ["base", "adapter", "corrupt"])
def test_bad_model_or_adapter_is_named_at_job_start(tmp_path, tiny_vlm, adapter, broken):
    base, chosen = tiny_vlm, adapter
    if broken == "base":
        base = tmp_path / "no-model"
    elif broken == "adapter":
        chosen = tmp_path / "no-adapter"
    else:
        (adapter / "adapter_config.json").write_text("{")
    with pytest.raises(JobFileError) as error:
        load_job(_job(tmp_path, base, chosen))
    message = str(error.value)
    assert "policy.agent" in message and "\n" not in message
    assert {"base": "no such model folder", "adapter": "no adapter at",
            "corrupt": "corrupt"}[broken] in message


def test_agent_kind_needs_its_section(tmp_path):
    path = write_job(tmp_path, SMALL_JOB + "\n    policy: {kind: agent}\n")
    with pytest.raises(JobFileError, match="policy.*needs policy.agent"):
        load_job(path)


def test_serve_up_refuses_a_job_without_an_agent(tmp_path):
    path = write_job(tmp_path, SMALL_JOB)
    done = subprocess.run([sys.executable, "-m", "bubblescope.cluster.cli", "serve", "up",
                           "--job", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "serve up serves agent policies" in done.stderr
    assert done.stderr.count("\n") == 1
