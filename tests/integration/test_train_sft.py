"""SFT of a persona adapter with TRL inside Ray Train, registered where Serve loads it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from bubblescope.agent.adapters import MANIFEST, check_adapter, read_manifest
from bubblescope.agent.errors import AdapterError, ModelLoadError
from bubblescope.personas.loader import load_persona
from bubblescope.trainer.config import TrainConfig, load_train_config
from bubblescope.trainer.errors import TrainConfigError
from bubblescope.trainer.runner import run_training
from tests.conftest import EXAMPLES

PERSONA = EXAMPLES / "personas" / "concentrated.yaml"


def _config(tmp_path, base_model, **changes) -> TrainConfig:
    data = {"base_model": str(base_model), "data": {"records": 200, "max_samples": 12},
            "prompt": {"frame_edge": 56, "history": 2},
            "sft": {"learning_rate": 5e-3, "epochs": 1, "lora": {"r": 8, "alpha": 16}},
            "storage_path": str(tmp_path / "runs"), "adapters_dir": str(tmp_path / "adapters"),
            **changes}
    return TrainConfig.model_validate(data)


@pytest.mark.slow
def test_sft_under_ray_train_registers_a_working_adapter(tmp_path, tiny_vlm, ray_local):
    from peft import PeftModel

    from bubblescope.agent.vlm import load_model

    result = run_training("sft", _config(tmp_path, tiny_vlm), load_persona(PERSONA))
    assert result.adapter == tmp_path / "adapters" / "concentrated" / "sft"
    check_adapter(result.adapter)
    manifest = read_manifest(result.adapter)
    assert manifest["base_model"] == str(tiny_vlm) and manifest["algorithm"] == "sft"
    assert manifest["metrics"]["train_samples"] == 12 and manifest["metrics"]["steps"] == 6
    assert result.checkpoint.startswith(str(tmp_path / "runs"))

    base = load_model(tiny_vlm)
    ids = torch.tensor([[5, 9, 13, 21, 34]])
    with torch.no_grad():
        before = base(input_ids=ids).logits
        tuned = PeftModel.from_pretrained(base, str(result.adapter))
        after = tuned(input_ids=ids).logits
    assert not torch.allclose(before, after)  # LoRA's B starts at zero: training moved it


def test_wrong_base_model_fails_before_any_worker(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model folder"):
        run_training("sft", _config(tmp_path, tmp_path / "nope"), load_persona(PERSONA))


def test_persona_without_a_trace_source_is_named(tmp_path, tiny_vlm):
    from bubblescope.trainer.sources import session_source

    persona = load_persona(PERSONA).model_copy(update={"source": {"kind": "dataset"}})
    config = _config(tmp_path, tiny_vlm)
    with pytest.raises(TrainConfigError, match="set data.human"):
        session_source(persona, config.data, config.prompt)


def test_config_file_errors_name_file_and_key(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("base_model: m\nsft: {learnin_rate: 1}\n")
    with pytest.raises(TrainConfigError) as error:
        load_train_config(path)
    assert str(path) in str(error.value) and "sft.learnin_rate" in str(error.value)
    path.write_text("base_model: m\ndata: {source: dataset}\n")
    with pytest.raises(TrainConfigError, match="needs data.path"):
        load_train_config(path)


def test_config_paths_resolve_against_the_file(tmp_path):
    path = tmp_path / "sub" / "train.yaml"
    path.parent.mkdir()
    path.write_text("base_model: ../model\nadapters_dir: a\n")
    config = load_train_config(path)
    assert config.base_model == str(tmp_path / "sub" / ".." / "model")
    assert config.adapters_dir == str(tmp_path / "sub" / "a")
    assert config.sft.lora.r == 64 and config.grpo.lora.r == 8  # the paper's defaults


def test_cli_reports_a_bad_config_in_one_line(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("base_model: m\nworkers: 0\n")
    done = subprocess.run([sys.executable, "-m", "bubblescope.cluster.cli", "train", "sft",
                           "--persona", str(PERSONA), "--config", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "workers" in done.stderr


def test_adapter_checks_name_what_is_wrong(tmp_path):
    with pytest.raises(AdapterError, match="no adapter at"):
        check_adapter(tmp_path / "absent", "p")
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{not json")
    with pytest.raises(AdapterError, match="missing adapter_model.safetensors"):
        check_adapter(folder, "p")
    (folder / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(AdapterError, match="corrupt"):
        check_adapter(folder, "p")
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8}))
    assert check_adapter(folder) == folder and not (folder / MANIFEST).exists()
