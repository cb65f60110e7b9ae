"""One run's step loop, in process: records, determinism, and exact resumption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bubblescope.actors.device_actor import DeviceActor
from bubblescope.actors.loader import world_of
from bubblescope.actors.plan import plan_runs
from bubblescope.cluster.job import load_job
from bubblescope.contracts import StepRecord

VOLATILE = ("recorded_at", "latency_observe_s", "latency_decide_s", "latency_act_s",
            "latency_record_s")


def stable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    from tests.conftest import SMALL_JOB, write_job

    return load_job(write_job(tmp_path_factory.mktemp("job"), SMALL_JOB))


def run_of(job, run_id_part: str):
    return next(r for r in plan_runs(job) if run_id_part in r.run_id)


def fresh_actor(job, run, checkpoint=None) -> DeviceActor:
    actor = DeviceActor("sim-t", job.spec.devices, world_of(job))
    actor.start(run, job.personas[run.persona], job.spec.policy, checkpoint)
    return actor


def test_plan_expands_persona_platform_replicate_experiment(job) -> None:
    runs = plan_runs(job)
    assert len(runs) == 2 * 2 * 1 * 2
    depth = run_of(job, "concentrated--douyin-like--depth")
    assert [p.name for p in depth.phases] == ["cultivation", "counterfactual"]
    assert depth.total_steps == 120 and depth.phases[1].reversed
    assert len({r.seed for r in runs}) == len(runs)


def test_records_are_valid_and_phases_reverse(job) -> None:
    run = run_of(job, "concentrated--douyin-like--depth")
    chunk = fresh_actor(job, run).advance(1000)
    records = [StepRecord.from_row(r) for r in chunk.steps.to_pylist()]
    assert [r.step for r in records] == list(range(120))
    assert {r.phase for r in records[:60]} == {"cultivation"}
    assert {r.phase for r in records[60:]} == {"counterfactual"}
    assert all(r.category == r.category_truth for r in records)
    counterfactual = records[60:]
    assert all(r.reversed and not r.action.like for r in counterfactual)
    assert any(r.action.watch_s != r.decided_watch_s for r in counterfactual)
    assert records[1].device_time > records[0].device_time
    assert chunk.checkpoint["next_step"] == 120


def test_same_seed_same_run(job) -> None:
    run = run_of(job, "dispersed--null--breadth")
    assert stable(fresh_actor(job, run).advance(50).steps.to_pylist()) == \
        stable(fresh_actor(job, run).advance(50).steps.to_pylist())


def test_resuming_from_a_checkpoint_reproduces_the_rest_exactly(job) -> None:
    run = run_of(job, "concentrated--douyin-like--depth")
    whole = fresh_actor(job, run).advance(1000).steps.to_pylist()
    first = fresh_actor(job, run).advance(45)
    checkpoint = json.loads(json.dumps(first.checkpoint))  # as stored
    rest = fresh_actor(job, run, checkpoint).advance(1000).steps.to_pylist()
    assert stable(first.steps.to_pylist() + rest) == stable(whole)


def test_random_policy_is_persona_blind(job, tmp_path: Path) -> None:
    from bubblescope.actors.loader import make_policy
    from bubblescope.agent.spec import RandomPolicySpec

    a = make_policy(RandomPolicySpec(kind="random"), job.personas["concentrated"], seed=1)
    b = make_policy(RandomPolicySpec(kind="random"), job.personas["dispersed"], seed=1)
    actor = fresh_actor(job, run_of(job, "dispersed--null--breadth"))
    observation = actor.device.observe()
    assert a.decide(observation, ()) == b.decide(observation, ())
