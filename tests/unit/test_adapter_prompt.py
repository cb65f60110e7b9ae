"""An adapter records the prompt it was trained with; a job serving it with another prompt is
refused at job start, in one line naming the persona, the adapter and the differing fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bubblescope.agent.adapters import MANIFEST, PEFT_FILES, register_adapter, trained_prompt
from bubblescope.agent.spec import PromptSpec
from bubblescope.agent.vlm import PROCESSOR_FILES, REQUIRED_FILES
from bubblescope.cluster.errors import JobFileError
from bubblescope.cluster.job import load_job
from tests.conftest import SMALL_JOB, write_job

TRAINED = PromptSpec(history=3, frame_edge=112, instructions=False, transcript_chars=200)


def _files(folder: Path, names) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("{}", "utf-8")
    return folder


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    """A model folder that passes the file checks and a registered adapter trained with
    TRAINED (nothing here is loaded: job start checks files and manifests only)."""
    base = _files(tmp_path / "base", [*REQUIRED_FILES, PROCESSOR_FILES[0]])
    trained = _files(tmp_path / "trained", PEFT_FILES)
    adapter = register_adapter(trained, tmp_path / "adapters", "concentrated", "sft",
                               {"algorithm": "sft"}, TRAINED)
    return base, adapter


def _job(tmp_path: Path, base: Path, adapter: Path, prompt: str) -> Path:
    return write_job(tmp_path, SMALL_JOB + f"""
    policy:
      kind: agent
      agent:
        base_model: {base}
        adapters: {{concentrated: {adapter}}}
        prompt: {prompt}
""")


def test_registration_records_the_training_prompt(paths) -> None:
    _, adapter = paths
    assert trained_prompt(adapter) == TRAINED.model_dump(mode="json")


def test_the_training_prompt_is_served(tmp_path: Path, paths) -> None:
    prompt = "{history: 3, frame_edge: 112, instructions: false, transcript_chars: 200}"
    job = load_job(_job(tmp_path, *paths, prompt))
    assert job.agent is not None and job.agent.prompt == TRAINED


def test_another_prompt_is_refused_in_one_line(tmp_path: Path, paths) -> None:
    _, adapter = paths
    with pytest.raises(JobFileError) as error:
        load_job(_job(tmp_path, *paths, "{history: 3, frame_edge: 112, transcript_chars: 200}"))
    message = str(error.value)
    assert "\n" not in message and "policy.agent.prompt" in message
    assert "persona 'concentrated'" in message and str(adapter) in message
    assert "instructions False (served True)" in message and "history" not in message


def test_an_adapter_without_a_record_is_served(tmp_path: Path, paths) -> None:
    """Adapters made outside `bubblescope train` (or copied without a manifest) record no
    prompt: nothing says what they expect, so they are accepted as before."""
    _, adapter = paths
    (adapter / MANIFEST).unlink()
    assert load_job(_job(tmp_path, *paths, "{}")).agent is not None


def test_adapters_registered_before_the_record_say_it_in_their_config(paths) -> None:
    _, adapter = paths
    manifest = json.loads((adapter / MANIFEST).read_text("utf-8"))
    old = {k: v for k, v in manifest.items() if k != "prompt"}
    old["config"] = {"prompt": TRAINED.model_dump(mode="json")}
    (adapter / MANIFEST).write_text(json.dumps(old), "utf-8")
    assert trained_prompt(adapter) == TRAINED.model_dump(mode="json")
