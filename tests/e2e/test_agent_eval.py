"""Fidelity evaluation: the scores, the tables, and `bubblescope eval` end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from bubblescope.contracts import Action
from bubblescope.trainer.config import TrainConfig, load_train_config
from bubblescope.trainer.evaluate import scores
from bubblescope.trainer.pretrain import CrowdSpec
from bubblescope.trainer.quickstart import adapters_key, base_key, fill_agent_job
from tests.conftest import EXAMPLES


def test_scores_on_known_values():
    targets = [Action(watch_s=2.0, like=True), Action(watch_s=10.0), Action(watch_s=4.0)]
    predicted = [Action(watch_s=2.0, like=True), Action(watch_s=5.0, like=True),
                 Action(watch_s=4.0, format_ok=False)]
    result = scores(targets, predicted)
    assert result["smape"] == pytest.approx((0 + 5 / 7.5 + 0) / 3)
    assert result["mae"] == pytest.approx(5 / 3)
    assert result["like_f1"] == pytest.approx(2 * 1 / (1 + 2))
    assert result["format_failure_rate"] == pytest.approx(1 / 3)
    assert result["quick_skip_rate"] == pytest.approx(1 / 3)
    assert result["quick_skip_rate_real"] == pytest.approx(1 / 3)
    assert result["like_rate_real"] == pytest.approx(1 / 3)


def test_agent_job_is_filled_with_absolute_paths(tmp_path):
    prompt = load_train_config(EXAMPLES / "training" / "tiny.yaml").prompt
    out = fill_agent_job(EXAMPLES / "quickstart-agent.yaml", tmp_path / "job.yaml",
                         {"base_model": "/m", "adapters": {"concentrated": "/a/c"}}, prompt)
    job = yaml.safe_load(out.read_text())
    assert job["policy"]["agent"]["prompt"] == prompt.model_dump(mode="json")
    assert job["policy"]["agent"]["base_model"] == "/m"
    assert job["policy"]["agent"]["adapters"] == {"concentrated": "/a/c"}
    assert all(p.startswith("/") for p in job["personas"])
    assert job["storage_path"].startswith("/")


@pytest.mark.slow
@pytest.mark.timeout(600 + 300)  # the eval command's own timeout, after an SFT run in-process
def test_eval_command_writes_both_tables(tmp_path, tiny_vlm, ray_local):
    from bubblescope.personas.loader import load_persona
    from bubblescope.trainer.config import TrainConfig
    from bubblescope.trainer.runner import run_training

    persona_file = EXAMPLES / "personas" / "concentrated.yaml"
    data = {"base_model": str(tiny_vlm), "data": {"records": 200, "max_samples": 8},
            "prompt": {"frame_edge": 56, "history": 2, "instructions": False},
            "sft": {"learning_rate": 5e-3, "epochs": 1, "lora": {"r": 8, "alpha": 16}},
            "storage_path": str(tmp_path / "runs"), "adapters_dir": str(tmp_path / "adapters")}
    run_training("sft", TrainConfig.model_validate(data), load_persona(persona_file))
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(data))
    done = subprocess.run(
        [sys.executable, "-m", "bubblescope.cluster.cli", "eval", "--persona", str(persona_file),
         "--config", str(config), "--out", str(tmp_path / "eval"), "--max-samples", "6",
         "--max-new-tokens", "16"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "eval" / "eval.json").read_text())
    rows = result["personas"][0]["variants"]
    assert rows["GRPO"] is None and rows["SFT"]["n"] == 6  # GRPO was not trained
    for name in ("LLM-Sim", "SFT", "-Both", "random", "persona-stats"):
        assert 0 <= rows[name]["smape"] <= 2 and 0 <= rows[name]["format_failure_rate"] <= 1
    table = (tmp_path / "eval" / "eval.md").read_text()
    assert "Table 2" in table and "Table 3" in table and str(tiny_vlm) in table
    assert "| GRPO | not trained" in table and "trained here from scratch" in table


def test_consensus_takes_the_median_watch_and_majority_likes():
    from bubblescope.trainer.evaluate import consensus

    answers = [Action(watch_s=1.0, like=True), Action(watch_s=9.0, like=True),
               Action(watch_s=4.0), Action(watch_s=50.0, format_ok=False)]
    decided = consensus(answers)
    assert decided.watch_s == 4.0 and decided.like  # 2 of the 3 that parsed liked
    assert decided.format_ok  # most parsed; the evaluation counts the failed answer apart


def test_the_pretrained_base_is_keyed_on_what_pretraining_reads():
    """Changing what only the adapters read (SFT's epochs, rate and LoRA, the persona's trace,
    GRPO) keeps the cached base; changing the prompt or the crowd does not."""
    config, crowd = TrainConfig(base_model="m"), CrowdSpec()
    adapters_only = [config.model_copy(update={"sft": config.sft.model_copy(update=change)})
                     for change in ({"epochs": 9}, {"learning_rate": 0.5},
                                    {"lora": config.sft.lora.model_copy(update={"r": 2})})]
    adapters_only += [config.model_copy(update={"data": config.data.model_copy(
        update={"records": 99})}), config.model_copy(update={"grpo": config.grpo.model_copy(
            update={"generations": 2})})]
    assert {base_key(c, crowd) for c in adapters_only} == {base_key(config, crowd)}
    assert len({adapters_key(c, crowd, []) for c in adapters_only[:4]}
               | {adapters_key(config, crowd, [])}) == 5
    other_prompt = config.model_copy(update={"prompt": config.prompt.model_copy(
        update={"history": 1})})
    assert base_key(other_prompt, crowd) != base_key(config, crowd)
    assert base_key(config, CrowdSpec(humans=3)) != base_key(config, crowd)
    assert adapters_key(config, CrowdSpec(humans=3), []) != adapters_key(config, crowd, [])


def test_the_sampling_seed_is_not_the_crowd_seed():
    """`agents fidelity --seed 3` samples differently from the same cached agents; only
    `model pretrain --seed` draws another crowd (and so another base)."""
    from bubblescope.cluster.cli import build_parser
    from bubblescope.cluster.cli_agent import _crowd

    parser = build_parser()
    assert _crowd(parser.parse_args(["agents", "fidelity", "--seed", "3"])) == CrowdSpec()
    pretrain = parser.parse_args(["model", "pretrain", "--config", "c", "--out", "o",
                                  "--seed", "3"])
    assert _crowd(pretrain).seed == 3


@pytest.mark.slow
@pytest.mark.timeout(900 + 900 + 60)  # the two commands' timeouts, one after the other
def test_one_command_trains_every_variant_then_writes_the_tables(tmp_path):
    """`bubblescope agents fidelity`: from nothing to both tables, ablations included, with
    no variant left untrained; a second run reuses every cached step."""
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({
        "base_model": "set-by-the-command", "data": {"records": 200, "max_samples": 6},
        "prompt": {"frame_edge": 56, "history": 1, "instructions": False},
        "sft": {"learning_rate": 5e-3, "epochs": 1, "lora": {"r": 4, "alpha": 8}},
        "grpo": {"learning_rate": 1e-3, "generations": 2, "max_completion_length": 16,
                 "max_prompts": 2, "lora": {"r": 4, "alpha": 8}},
        "storage_path": str(tmp_path / "runs")}))
    command = [sys.executable, "-m", "bubblescope.cluster.cli", "agents", "fidelity",
               "--persona", str(EXAMPLES / "personas" / "concentrated.yaml"),
               "--config", str(config), "--cache", str(tmp_path / "cache"), "--humans", "1",
               "--records", "20", "--labelled", "16", "--max-samples", "4", "--votes", "2",
               "--max-new-tokens", "16", "--out", str(tmp_path / "fidelity")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    for step in ("tiny model", "base model", "SFT adapter", "SFT+GRPO adapter",
                 "GRPO adapter", "-Persona adapter"):
        assert f"training: {step}" in done.stdout
    assert "concentrated: 4 test decisions x 2 answers" in done.stdout
    assert "concentrated: -Persona SMAPE" in done.stdout  # progress while it evaluates
    rows = json.loads((tmp_path / "fidelity" / "eval.json").read_text())["personas"][0]
    assert rows["test_samples"] == 4
    assert all(rows["variants"][name] is not None for name in
               ("LLM-Sim", "SFT", "GRPO", "SFT+GRPO", "-Persona", "-Both", "random",
                "persona-stats"))
    for name in ("SFT", "-Persona", "random", "persona-stats"):
        gap = rows["variants"][name]["smape_gap"]
        assert gap["low"] <= gap["estimate"] <= gap["high"] and gap["reference"] == "SFT+GRPO"
        assert abs(gap["estimate"] - (rows["variants"][name]["smape"]
                                      - rows["variants"]["SFT+GRPO"]["smape"])) < 1e-9
    assert "smape_gap" not in rows["variants"]["SFT+GRPO"]
    table = (tmp_path / "fidelity" / "eval.md").read_text()
    assert "not trained" not in table and "consensus of 2" in table
    assert "sampling seed 0" in table
    assert "SMAPE - SFT+GRPO [95% CI]" in table
    again = subprocess.run(command[:-2] + ["--out", str(tmp_path / "again")],
                           capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "training:" not in again.stdout and again.stdout.count("cached:") == 6
