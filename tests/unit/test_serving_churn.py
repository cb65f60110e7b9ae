"""Which replica decided each step and the adapter churn it reported: from the step record
through the store's schema, the live metrics and the exporter to summary.json and the report;
and the autoscaling spec."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from bubblescope.agent.spec import AgentPolicySpec, DeploymentSpec
from bubblescope.contracts import Action, Served, StageLatency, StepRecord
from bubblescope.metrics.exporter import StatsCollector
from bubblescope.metrics.live import LiveMetrics
from bubblescope.metrics.summary import serving_summary
from bubblescope.report.tables import serving_table
from bubblescope.serve.policy_app import deployment_options
from bubblescope.store import STEP_SCHEMA

START = datetime(2026, 1, 1, tzinfo=UTC)
# (replica, loads, evictions) per step, as replies report them: each since the previous reply
SERVED = [("101", 2, 0), ("101", 0, 0), ("202", 1, 0), ("101", 1, 1), ("202", 1, 1),
          None, ("101", 0, 0)]


def _steps() -> pa.Table:
    rows = []
    for step, served in enumerate(SERVED):
        rows.append(StepRecord(
            job_id="j", run_id="r", persona=f"p{step % 3}", platform="x", experiment="depth",
            replicate=0, device="d", account="a", phase="cultivation", step=step,
            phase_step=step, device_time=START, decided_watch_s=1.0, reversed=False,
            action=Action(watch_s=1.0), latency=StageLatency(),
            served=Served(replica=served[0], adapter_loads=served[1],
                          adapter_evictions=served[2]) if served else None,
            recorded_at=START + timedelta(seconds=step)).to_row())
    return pa.Table.from_pylist(rows, schema=STEP_SCHEMA)


def test_a_served_step_round_trips_through_its_row() -> None:
    row = _steps().to_pylist()[3]
    assert (row["served_replica"], row["served_adapter_loads"]) == ("101", 1)
    assert StepRecord.from_row(row).served == Served(replica="101", adapter_loads=1,
                                                     adapter_evictions=1)
    assert StepRecord.from_row(_steps().to_pylist()[5]).served is None


def test_live_metrics_and_exporter_count_churn_per_replica() -> None:
    live = LiveMetrics("j", "main", 10)
    live.add_run("r", type("Run", (), {"persona": "p0", "platform": "x", "experiment": "depth",
                                       "replicate": 0, "total_steps": 7})())
    live.record("r", _steps())
    replicas = live.snapshot()["replicas"]
    assert replicas == {"101": {"decisions": 4, "adapter_loads": 3, "adapter_evictions": 1},
                        "202": {"decisions": 2, "adapter_loads": 2, "adapter_evictions": 1}}
    registry = CollectorRegistry()
    registry.register(StatsCollector(lambda: {"job_id": "j", **live.snapshot()}))
    samples = {(s.name, s.labels.get("replica")): s.value
               for family in text_string_to_metric_families(generate_latest(registry).decode())
               for s in family.samples}
    assert samples[("bubblescope_replica_adapter_loads_total", "101")] == 3
    assert samples[("bubblescope_replica_adapter_evictions_total", "202")] == 1
    assert samples[("bubblescope_replica_decisions_total", "202")] == 2


def test_summary_gives_churn_and_its_rate_over_each_replicas_time() -> None:
    serving = serving_summary(_steps())
    assert serving is not None
    assert (serving["adapter_loads"], serving["adapter_evictions"], serving["personas"]) == (5, 2, 3)
    first = serving["replicas"][0]
    assert first["replica"] == "101" and first["seconds"] == 6  # steps 0..6, one a second
    assert first["loads_per_s"] == pytest.approx(3 / 6, abs=1e-6)
    steps = _steps()
    index = steps.schema.get_field_index("served_replica")
    only_in_process = steps.set_column(index, "served_replica",
                                       pa.nulls(steps.num_rows, pa.string()))
    assert serving_summary(only_in_process) is None


def test_the_report_warns_when_adapters_were_evicted() -> None:
    serving = serving_summary(_steps())
    assert serving is not None
    html = serving_table(serving, adapters_held=2)
    assert "id='serving-table'" in html and "2 adapters were evicted" in html
    assert "at most 2" in html
    calm = {**serving, "adapter_evictions": 0}
    assert "warning" not in serving_table(calm, adapters_held=8)


def _agent(**deployment) -> AgentPolicySpec:
    return AgentPolicySpec.model_validate({"base_model": "m", "deployment": deployment})


def test_autoscaling_replaces_a_fixed_number_of_replicas() -> None:
    spec = _agent(replicas=3, autoscaling={"min_replicas": 1, "max_replicas": 2,
                                           "target_ongoing_requests": 8})
    options = deployment_options(spec)
    assert "num_replicas" not in options
    assert options["autoscaling_config"]["initial_replicas"] == 2  # 3, kept within 1..2
    assert spec.deployment.most_replicas == 2
    fixed = _agent(replicas=3)
    assert deployment_options(fixed)["num_replicas"] == 3 and fixed.deployment.most_replicas == 3
    assert AgentPolicySpec.model_validate(spec.model_dump(mode="json")) == spec


@pytest.mark.parametrize(("autoscaling", "words"), [
    ({"min_replicas": 3, "max_replicas": 2}, "below min_replicas"),
    ({"target_ongoing_requests": 100}, "above max_ongoing_requests"),
    ({"min_replicas": 0}, "greater than or equal to 1"),
])
def test_bad_autoscaling_is_refused_in_words(autoscaling: dict, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        DeploymentSpec.model_validate({"autoscaling": autoscaling})
