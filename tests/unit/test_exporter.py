"""The stats-to-Prometheus conversion and the /metrics endpoint, without Prometheus itself."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from bubblescope.metrics.exporter import DEVICE_STATES, JOB_STATES, StatsCollector, start_exporter

BUCKETS = [0.001, 0.01, 0.1, 1.0]


def sample_stats() -> dict:
    runs = {
        "r1": {"persona": "concentrated", "platform": "douyin-like", "experiment": "depth",
               "replicate": 0, "steps_done": 600, "steps_total": 800, "phase": "counterfactual",
               "state": "running", "device": "sim-0", "window_diversity": 12.0,
               "window_entropy_bits": 3.1, "running_bep": 0.21},
        "r2": {"persona": "diverse", "platform": "kuaishou-like", "experiment": "breadth",
               "replicate": 1, "steps_done": 0, "steps_total": 800, "phase": "",
               "state": "pending", "device": "", "window_diversity": None,
               "window_entropy_bits": None, "running_bep": None},
    }
    steps = [
        {"persona": "concentrated", "platform": "douyin-like", "experiment": "depth",
         "phase": "cultivation", "count": 400},
        {"persona": "concentrated", "platform": "douyin-like", "experiment": "depth",
         "phase": "counterfactual", "count": 200},
    ]
    latency = {"decide": {"buckets": BUCKETS, "counts": [1, 2, 3, 4, 5], "sum": 9.5,
                          "count": 15}}
    devices = {"sim-0": {"state": "running", "restarts": 2, "steps": 600, "run_id": "r1",
                         "pid": 42},
               "sim-1": {"state": "failed", "restarts": 5, "steps": 0, "run_id": None,
                         "pid": None}}
    return {"job_id": "quickstart", "state": "running", "runs_total": 2, "runs_done": 0,
            "runs_failed": 0, "steps_total": 1600, "steps_done": 600, "runs": runs,
            "steps": steps, "latency": latency, "devices": devices, "format_failures": 3}


def scrape(source: Callable[[], dict | None]) -> list[Sample]:
    registry = CollectorRegistry()
    registry.register(StatsCollector(source))
    text = generate_latest(registry).decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def find(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [s for s in samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    (match,) = find(samples, name, **labels)
    return match.value


@pytest.fixture
def samples() -> list[Sample]:
    return scrape(sample_stats)


def test_every_sample_is_named_and_labelled_for_the_job(samples: list[Sample]) -> None:
    assert samples
    assert all(s.name.startswith("bubblescope_") for s in samples)
    assert all(s.labels["job"] == "quickstart" for s in samples)


def test_job_gauges_and_counters(samples: list[Sample]) -> None:
    assert value(samples, "bubblescope_job_present") == 1
    assert value(samples, "bubblescope_job_steps_done") == 600
    assert value(samples, "bubblescope_job_steps_planned") == 1600
    assert value(samples, "bubblescope_format_failures_total") == 3
    steps = find(samples, "bubblescope_steps_total")
    assert {(s.labels["phase"], s.value) for s in steps} == {("cultivation", 400),
                                                              ("counterfactual", 200)}
    assert set(steps[0].labels) == {"job", "persona", "platform", "experiment", "phase"}


def test_state_sets(samples: list[Sample]) -> None:
    job = {s.labels["state"]: s.value for s in find(samples, "bubblescope_job_state")}
    assert job == {state: float(state == "running") for state in JOB_STATES}
    sim1 = {s.labels["state"]: s.value
            for s in find(samples, "bubblescope_device_state", device="sim-1")}
    assert sim1 == {state: float(state == "failed") for state in DEVICE_STATES}
    runs = {s.labels["state"]: s.value for s in find(samples, "bubblescope_runs")}
    assert runs == {"pending": 1, "running": 1, "done": 0, "failed": 0, "stopped": 0}


def test_run_gauges(samples: list[Sample]) -> None:
    (progress,) = find(samples, "bubblescope_run_progress_ratio", run="r1")
    assert progress.value == 0.75
    assert progress.labels == {"job": "quickstart", "run": "r1", "persona": "concentrated",
                               "platform": "douyin-like", "experiment": "depth",
                               "replicate": "0"}
    assert value(samples, "bubblescope_run_progress_ratio", run="r2") == 0
    assert value(samples, "bubblescope_window_diversity", run="r1",
                 phase="counterfactual") == 12.0
    assert value(samples, "bubblescope_window_entropy_bits", run="r1") == 3.1
    (bep,) = find(samples, "bubblescope_running_bep")
    assert (bep.labels["run"], bep.value) == ("r1", 0.21)
    assert set(bep.labels) == {"job", "run", "persona", "platform", "replicate"}


def test_none_values_are_omitted(samples: list[Sample]) -> None:
    for name in ("bubblescope_window_diversity", "bubblescope_window_entropy_bits",
                 "bubblescope_running_bep"):
        assert find(samples, name, run="r2") == []


def test_latency_buckets_are_cumulative(samples: list[Sample]) -> None:
    buckets = find(samples, "bubblescope_step_latency_seconds_bucket", stage="decide")
    assert [(s.labels["le"], s.value) for s in buckets] == [
        ("0.001", 1), ("0.01", 3), ("0.1", 6), ("1.0", 10), ("+Inf", 15)]
    assert value(samples, "bubblescope_step_latency_seconds_count", stage="decide") == 15
    assert value(samples, "bubblescope_step_latency_seconds_sum", stage="decide") == 9.5


def test_device_counters(samples: list[Sample]) -> None:
    assert value(samples, "bubblescope_device_restarts_total", device="sim-1") == 5
    assert value(samples, "bubblescope_device_steps_total", device="sim-0") == 600


def test_histogram_of_the_wrong_length_is_an_error() -> None:
    stats = sample_stats()
    stats["latency"]["decide"]["counts"] = [1, 2]
    with pytest.raises(ValueError, match="2 counts for 5 buckets"):
        scrape(lambda: stats)


def test_no_job_yet_exports_only_presence() -> None:
    samples = scrape(lambda: None)
    assert [(s.name, s.labels, s.value) for s in samples] == [
        ("bubblescope_job_present", {}, 0.0)]


def test_partial_stats_fall_back_to_the_runs() -> None:
    stats = sample_stats()
    for key in ("state", "steps_total", "steps_done", "devices", "latency"):
        del stats[key]
    samples = scrape(lambda: stats)
    assert value(samples, "bubblescope_job_steps_done") == 600
    assert value(samples, "bubblescope_job_steps_planned") == 1600
    assert find(samples, "bubblescope_job_state") == []


def test_exporter_serves_its_own_registry_on_port_zero() -> None:
    calls = []

    def source() -> dict:
        calls.append(1)
        return sample_stats()

    with start_exporter(source, port=0) as exporter:
        assert exporter.port > 0
        assert calls == []  # nothing is read before the first scrape
        text = requests.get(exporter.url, timeout=5).text
    assert 'bubblescope_job_steps_done{job="quickstart"} 600.0' in text
    assert "python_gc" not in text and "process_" not in text  # not the default registry
    assert calls == [1]


def test_close_frees_the_port() -> None:
    exporter = start_exporter(lambda: None, port=0)
    exporter.close()
    exporter.close()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(exporter.url, timeout=2)


def test_port_in_use_says_how_to_pick_another() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as info:
            start_exporter(lambda: None, port=port)
    message = str(info.value)
    assert str(port) in message and "\n" not in message
    assert "metrics.port" in message and "--metrics-port" in message
