"""The Grafana dashboard model, its committed JSON and the provisioning files.

Whether each panel's PromQL runs is proven against a real Prometheus in
tests/integration/test_prometheus_integration.py; here the shape Grafana needs is checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from bubblescope.metrics.dashboards import build_dashboard, main, panel_queries, render

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
COMMITTED = GRAFANA / "dashboards" / "bubblescope.json"


def _panels() -> list[dict]:
    return [p for p in build_dashboard()["panels"] if p["type"] != "row"]


def test_committed_json_is_generated_from_code() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render(build_dashboard()), (
        "regenerate it: python -m bubblescope.metrics.dashboards " + str(COMMITTED))


def test_main_writes_the_dashboard(tmp_path: Path) -> None:
    out = tmp_path / "dash.json"
    assert main([str(out)]) == 0
    assert json.loads(out.read_text()) == build_dashboard()
    assert main([]) == 2


def test_variables() -> None:
    dashboard = build_dashboard()
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    job = variables["job"]
    assert job["query"] == "label_values(bubblescope_job_steps_planned, job)"
    assert job["datasource"]["uid"] == "${datasource}"


def test_every_panel_uses_the_datasource_variable_and_the_job() -> None:
    for panel in _panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert 'job="$job"' in target["expr"], panel["title"]
            assert target["datasource"] == panel["datasource"]
    ref_ids = [[t["refId"] for t in p["targets"]] for p in _panels()]
    assert all(len(set(ids)) == len(ids) for ids in ref_ids)


def test_expected_panels_are_there() -> None:
    exprs = " ".join(panel_queries(build_dashboard(), job="j"))
    for metric in ("bubblescope_steps_total", "bubblescope_job_steps_done",
                   "bubblescope_job_steps_planned", "bubblescope_runs",
                   "bubblescope_window_diversity", "bubblescope_window_entropy_bits",
                   "bubblescope_running_bep", "bubblescope_step_latency_seconds_bucket",
                   "bubblescope_device_state", "bubblescope_device_restarts_total",
                   "bubblescope_format_failures_total", "bubblescope_job_state"):
        assert metric in exprs, metric
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.99," in exprs


def test_panel_queries_fill_in_variables() -> None:
    queries = panel_queries(build_dashboard(), job="quickstart", rate_interval="2m")
    assert queries and all("$" not in q for q in queries)
    assert any('job="quickstart"' in q and "[2m]" in q for q in queries)


def test_ids_unique_and_grid_does_not_overlap() -> None:
    panels = build_dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & area, panel["title"]
        cells |= area


def test_provisioning_points_at_the_dashboards() -> None:
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    (datasource,) = datasources["datasources"]
    assert datasource["type"] == "prometheus" and datasource["url"].startswith("http")
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "bubblescope.yaml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    readme = (ROOT / "deploy" / "README.md").read_text()
    assert f"deploy/grafana/dashboards:{provider['options']['path']}" in readme
