"""Shared fixtures (a local Ray for the whole session, small jobs, the example personas) and
each tier's default per-test timeout (tests/README.md)."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
EXAMPLES = ROOT / "examples"
# A test's default timeout, by the folder it is in; a test whose own waits add up to more says
# so with @pytest.mark.timeout(N). Outside the tiers, pyproject's `timeout` applies.
TIER_TIMEOUT_S = {"unit": 120, "integration": 300, "e2e": 600}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = _tier(item.path)
        if tier in TIER_TIMEOUT_S and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TIER_TIMEOUT_S[tier]))


def _tier(path: Path) -> str | None:
    try:
        return path.resolve().relative_to(TESTS).parts[0]
    except ValueError:  # not under tests/
        return None


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance for the tests that drive actors in-process (imported here, so
    the unit tier never loads Ray)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=4, namespace="bubblescope-tests", include_dashboard=False,
                 logging_level=logging.WARNING, log_to_driver=False)
    yield ray
    ray.shutdown()


def write_job(folder: Path, body: str, name: str = "job.yaml") -> Path:
    """A job file in `folder` whose persona paths point at the example personas."""
    text = textwrap.dedent(body).replace("PERSONAS", str(EXAMPLES / "personas"))
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


SMALL_JOB = """
    job_id: small
    seed: 3
    storage_path: out
    personas: [PERSONAS/concentrated.yaml, PERSONAS/dispersed.yaml]
    platforms: [douyin-like, "null"]
    experiments:
      depth: {cultivation_steps: 60, counterfactual_steps: 60}
      breadth: {steps: 120}
    window: 20
    replicates: 1
    devices: {count: 2, cpus_per_device: 0.5}
    metrics: {port: null, bootstrap: 100}
    checkpoint_every: 25
"""


@pytest.fixture
def small_job(tmp_path: Path) -> Path:
    return write_job(tmp_path, SMALL_JOB)


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory) -> Path:
    """A tiny Qwen2.5-VL with our own tokenizer, built once per test session (~10 s)."""
    from bubblescope.trainer.tiny_corpus import tiny_corpus
    from bubblescope.trainer.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-vlm"), tiny_corpus(catalogue_step=40))
