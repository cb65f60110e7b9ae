"""The exporter, the dashboard and the alert rules, against a real Prometheus.

A fake job whose numbers move at every scrape is served by `start_exporter`; Prometheus,
configured from deploy/prometheus/prometheus.yml (only the target and the intervals changed),
scrapes it every second. The tests then ask Prometheus' HTTP API what a dashboard or an alert
would ask, so a wrong label, a missing `honor_labels` or a broken PromQL expression fails here.
"""

from __future__ import annotations

import json
import math
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from bubblescope.metrics.dashboards import build_dashboard, panel_queries
from bubblescope.metrics.exporter import DEVICE_STATES, Exporter, start_exporter
from tests.support.prometheus_server import (
    PrometheusServer,
    Sample,
    require_binary,
    running_prometheus,
)

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
JOB = "itest"
J = f'job="{JOB}"'
BUCKETS = [1e-5, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
STAGE_LATENCY = {"observe": 1e-3, "decide": 0.25, "act": 0.05, "record": 1e-4, "overhead": 0.01}
RUNS = {  # run id -> (persona, platform, experiment, replicate, phase, share of the steps)
    "r-depth": ("concentrated", "douyin-like", "depth", 0, "counterfactual", 2),
    "r-breadth": ("diverse", "kuaishou-like", "breadth", 1, "breadth", 1),
    "r-pending": ("diverse", "douyin-like", "depth", 0, "", 0),
}


def _run(run_id: str, tick: int) -> dict:
    persona, platform, experiment, replicate, phase, share = RUNS[run_id]
    done = 20 * share * tick
    started = done > 0
    return {"persona": persona, "platform": platform, "experiment": experiment,
            "replicate": replicate, "steps_done": done, "steps_total": 800, "phase": phase,
            "state": "running" if started else "pending", "device": "sim-0" if started else "",
            "window_diversity": float(3 + tick % 5) if started else None,
            "window_entropy_bits": 1.5 + 0.1 * (tick % 5) if started else None,
            "running_bep": 0.2 if experiment == "depth" and started else None}


def _latency(tick: int) -> dict:
    histograms = {}
    for stage, seconds in STAGE_LATENCY.items():
        counts = [0] * (len(BUCKETS) + 1)
        counts[BUCKETS.index(seconds)] = 10 * tick
        histograms[stage] = {"buckets": BUCKETS, "counts": counts, "sum": seconds * 10 * tick,
                             "count": 10 * tick}
    return histograms


def make_stats(tick: int) -> dict:
    """The coordinator's stats() after `tick` scrapes: every counter grows with `tick`."""
    runs = {run_id: _run(run_id, tick) for run_id in RUNS}
    steps = [{"persona": r["persona"], "platform": r["platform"], "experiment": r["experiment"],
              "phase": r["phase"], "count": r["steps_done"]}
             for r in runs.values() if r["steps_done"]]
    done = sum(r["steps_done"] for r in runs.values())
    return {
        "job_id": JOB, "state": "running", "runs_total": len(runs), "runs_done": 0,
        "runs_failed": 0, "steps_total": 800 * len(runs), "steps_done": done,
        "runs": runs, "steps": steps, "latency": _latency(tick),
        "devices": {
            "sim-0": {"state": "running", "restarts": 0, "steps": done, "run_id": "r-depth",
                      "pid": 100},
            "sim-1": {"state": "restarting" if tick % 2 else "running", "restarts": tick // 2,
                      "steps": 0, "run_id": None, "pid": None},
        },
        "format_failures": tick,
        "replicas": {"4242": {"decisions": 5 * tick, "adapter_loads": tick,
                              "adapter_evictions": tick // 2}},
    }


class FakeJob:
    """A stats source: None at the first scrape, then a job that advances at every scrape,
    except inside `hold()`, which serves one snapshot until it exits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tick = -1
        self._frozen: dict | None = None

    def __call__(self) -> dict | None:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            self._tick += 1
            return make_stats(self._tick) if self._tick else None

    @contextmanager
    def hold(self) -> Iterator[dict]:
        with self._lock:
            self._frozen = make_stats(max(self._tick, 1))
        try:
            yield self._frozen
        finally:
            with self._lock:
                self._frozen = None


def scrape_config(target: str) -> dict:
    """deploy/prometheus/prometheus.yml, pointed at `target`, scraping every second."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / name) for name in config["rule_files"]]
    (scrape,) = config["scrape_configs"]
    scrape.update(scrape_interval="1s", scrape_timeout="1s", static_configs=[
        {"targets": [target]}])
    return config


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[FakeJob, Exporter, PrometheusServer]]:
    job = FakeJob()
    with start_exporter(job, port=0) as exporter:
        config = scrape_config(f"127.0.0.1:{exporter.port}")
        with running_prometheus(config, tmp_path_factory.mktemp("prometheus")) as prometheus:
            yield job, exporter, prometheus


def _values(result: list[Sample], label: str) -> dict[str, float]:
    return {sample["metric"].get(label, ""): float(sample["value"][1]) for sample in result}


def _positive(result: list[Sample]) -> bool:
    return bool(result) and all(float(s["value"][1]) > 0 for s in result)


def test_steps_flow_and_rate(stack: tuple[FakeJob, Exporter, PrometheusServer]) -> None:
    _, _, prometheus = stack
    result = prometheus.wait_for(
        f"sum by (platform) (rate(bubblescope_steps_total{{{J}}}[30s]))", _positive)
    assert set(_values(result, "platform")) == {"douyin-like", "kuaishou-like"}


def test_job_label_survives_scrape(stack: tuple[FakeJob, Exporter, PrometheusServer]) -> None:
    _, _, prometheus = stack
    prometheus.wait_for("bubblescope_job_steps_planned", bool)
    jobs = prometheus.vector("count by (job) (bubblescope_job_steps_planned)")
    assert [s["metric"]["job"] for s in jobs] == [JOB]  # honor_labels: not exported_job
    # the first scrape, before the job existed, served a lone job_present 0 (scrape job label)
    present = prometheus.vector("max_over_time(bubblescope_job_present[5m])")
    assert _values(present, "job") == {"bubblescope": 0.0, JOB: 1.0}


def test_latency_quantiles(stack: tuple[FakeJob, Exporter, PrometheusServer]) -> None:
    _, _, prometheus = stack
    expr = (f"histogram_quantile(0.5, sum by (stage, le) "
            f"(rate(bubblescope_step_latency_seconds_bucket{{{J}}}[30s])))")

    def all_stages(result: list[Sample]) -> bool:
        values = _values(result, "stage")
        return set(values) == set(STAGE_LATENCY) and not any(map(math.isnan, values.values()))

    p50 = _values(prometheus.wait_for(expr, all_stages), "stage")
    for stage, upper in STAGE_LATENCY.items():
        lower = BUCKETS[BUCKETS.index(upper) - 1]
        assert lower < p50[stage] <= upper, stage


def test_latest_values_while_held(stack: tuple[FakeJob, Exporter, PrometheusServer]) -> None:
    job, _, prometheus = stack
    prometheus.wait_for(f"bubblescope_job_steps_done{{{J}}}", bool)
    with job.hold() as final:
        _check_latest(prometheus, final)


def _check_latest(prometheus: PrometheusServer, final: dict) -> None:
    prometheus.wait_for(f"bubblescope_job_steps_done{{{J}}}",
                        lambda r: _values(r, "job") == {JOB: final["steps_done"]})
    sim1 = final["devices"]["sim-1"]["state"]
    states = prometheus.wait_for(f'bubblescope_device_state{{{J},device="sim-1"}}',
                                 lambda r: _values(r, "state").get(sim1) == 1.0)
    assert sorted(_values(states, "state").values()) == [0.0] * (len(DEVICE_STATES) - 1) + [1.0]
    restarts = prometheus.vector(f'bubblescope_device_restarts_total{{{J},device="sim-1"}}')
    assert _values(restarts, "device") == {"sim-1": final["devices"]["sim-1"]["restarts"]}
    runs = _values(prometheus.vector(f"bubblescope_runs{{{J}}}"), "state")
    assert runs == {"pending": 1, "running": 2, "done": 0, "failed": 0, "stopped": 0}


def test_none_values_are_not_series(stack: tuple[FakeJob, Exporter, PrometheusServer]) -> None:
    _, _, prometheus = stack
    prometheus.wait_for(f"bubblescope_window_diversity{{{J}}}", bool)
    assert set(_values(prometheus.vector(f"bubblescope_window_diversity{{{J}}}"), "run")) == {
        "r-depth", "r-breadth"}
    assert set(_values(prometheus.vector(f"bubblescope_running_bep{{{J}}}"), "run")) == {
        "r-depth"}


def test_every_panel_query_works(stack: tuple[FakeJob, Exporter, PrometheusServer]) -> None:
    _, _, prometheus = stack
    prometheus.wait_for(f"sum(rate(bubblescope_steps_total{{{J}}}[30s]))", _positive)
    prometheus.wait_for(f"rate(bubblescope_device_steps_total{{{J}}}[30s])", bool)
    for expr in panel_queries(build_dashboard(), job=JOB, rate_interval="30s"):
        body = prometheus.query(expr)
        assert body["status"] == "success", f"{expr}: {body}"
        assert body["data"]["result"], f"{expr} gives no series"


def test_dashboard_job_variable_lists_the_job(
        stack: tuple[FakeJob, Exporter, PrometheusServer]) -> None:
    _, _, prometheus = stack
    prometheus.wait_for("bubblescope_job_steps_planned", bool)
    body = prometheus.get("/api/v1/label/job/values?match[]=bubblescope_job_steps_planned")
    assert body["data"] == [JOB]


def test_alert_rules_load_and_evaluate(
        stack: tuple[FakeJob, Exporter, PrometheusServer]) -> None:
    _, _, prometheus = stack

    def rules() -> list[dict]:
        return [rule for group in prometheus.get("/api/v1/rules")["data"]["groups"]
                for rule in group["rules"]]

    assert len(rules()) == 5
    prometheus.wait_for("vector(1)", lambda _: all(r["health"] == "ok" for r in rules()))
    assert {r["name"] for r in rules()} >= {"BubblescopeDeviceFailed", "BubblescopeNoProgress"}


def test_missing_binary_fails_with_the_install_hint() -> None:
    with pytest.raises(pytest.fail.Exception, match="install Debian's prometheus"):
        require_binary("no-such-prometheus")


def test_promtool_check_config() -> None:
    result = _promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules() -> None:
    result = _promtool("check", "rules", str(PROMETHEUS_DIR / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_when_they_should(tmp_path: Path) -> None:
    tests = tmp_path / "alerts_test.yml"
    tests.write_text(json.dumps(_alert_unit_tests()), encoding="utf-8")
    result = _promtool("test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr


def _promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(require_binary("promtool")), *args], capture_output=True,
                          text=True, timeout=60, check=False)


def _description(alertname: str) -> str:
    groups = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"]
    (rule,) = [r for g in groups for r in g["rules"] if r["alert"] == alertname]
    return rule["annotations"]["description"]


def _fires(at: str, alertname: str, summary: str, **labels: str) -> dict:
    annotations = {"summary": summary, "description": _description(alertname)}
    return {"eval_time": at, "alertname": alertname,
            "exp_alerts": [{"exp_labels": {"job": "q", **labels},
                            "exp_annotations": annotations}]}


def _alert_unit_tests() -> dict:
    """promtool's rule unit tests: a job that stalls at 5 min with a failing device, slow
    decisions and 10% unparsable outputs; and a finished job, which must not alert."""
    q = 'job="q"'
    stalled = {"interval": "1m", "input_series": [
        {"series": f'bubblescope_device_state{{{q},device="sim-1",state="failed"}}',
         "values": "0 0 1x30"},
        {"series": f'bubblescope_device_restarts_total{{{q},device="sim-1"}}',
         "values": "0+1x30"},
        {"series": f"bubblescope_job_steps_done{{{q}}}", "values": "0+10x5 50x30"},
        {"series": f'bubblescope_job_state{{{q},state="running"}}', "values": "1x35"},
        {"series": f'bubblescope_steps_total{{{q},persona="a",platform="p",experiment="depth",'
                   'phase="cultivation"}', "values": "0+100x30"},
        {"series": f"bubblescope_format_failures_total{{{q}}}", "values": "0+10x30"},
        {"series": f'bubblescope_step_latency_seconds_bucket{{{q},stage="decide",le="5.0"}}',
         "values": "0x30"},
        {"series": f'bubblescope_step_latency_seconds_bucket{{{q},stage="decide",le="10.0"}}',
         "values": "0+100x30"},
        {"series": f'bubblescope_step_latency_seconds_bucket{{{q},stage="decide",le="+Inf"}}',
         "values": "0+100x30"},
    ], "alert_rule_test": [
        {"eval_time": "4m", "alertname": "BubblescopeNoProgress", "exp_alerts": []},
        _fires("15m", "BubblescopeNoProgress", "Job q has committed no step for 5 minutes",
               severity="critical"),
        _fires("15m", "BubblescopeDeviceFailed", "Device sim-1 of job q has failed",
               severity="critical", device="sim-1", state="failed"),
        _fires("15m", "BubblescopeDeviceRestartingOften",
               "Device sim-1 restarted 15 times in 15 min", severity="warning", device="sim-1"),
        _fires("15m", "BubblescopeFormatFailuresHigh", "10% of job q's steps fail to parse",
               severity="warning"),
        _fires("15m", "BubblescopeStepLatencyHigh", "p99 decide latency of job q is 9.95s",
               severity="warning", stage="decide"),
    ]}
    finished = {"interval": "1m", "input_series": [
        {"series": f"bubblescope_job_steps_done{{{q}}}", "values": "0+10x5 50x30"},
        {"series": f'bubblescope_job_state{{{q},state="running"}}', "values": "1x5 0x30"},
        {"series": f'bubblescope_job_state{{{q},state="done"}}', "values": "0x5 1x30"},
    ], "alert_rule_test": [
        {"eval_time": "15m", "alertname": "BubblescopeNoProgress", "exp_alerts": []},
    ]}
    return {"rule_files": [str(PROMETHEUS_DIR / "alerts.yml")], "evaluation_interval": "1m",
            "tests": [stalled, finished]}
