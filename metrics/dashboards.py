"""The bubblescope Grafana dashboard, as code.

The dashboard is built here, from the same metric names the exporter writes, and the JSON
committed under deploy/grafana/dashboards/ is generated from it (a test fails if the two
drift). Keeping it as code means a panel can't quietly query a metric that no longer exists:
the integration tests run every panel's PromQL against a real Prometheus fed by the exporter.

Regenerate the committed file with:

    python -m bubblescope.metrics.dashboards deploy/grafana/dashboards/bubblescope.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["build_dashboard", "main", "panel_queries", "render"]

UID = "bubblescope"
SCHEMA_VERSION = 39
_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_GRID_WIDTH = 24
_J = 'job="$job"'
_STEP_RATE = f"rate(bubblescope_steps_total{{{_J}}}[$__rate_interval])"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False
    format: str = "time_series"  # or "table"


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    kind: str = "timeseries"
    unit: str = "short"
    width: int = 12
    height: int = 8
    description: str = ""
    options: dict = field(default_factory=dict)
    custom: dict = field(default_factory=dict)
    limits: tuple[float, float] | None = None  # y-axis / gauge min and max


def _latency(quantile: str, name: str) -> Query:
    return Query(f"histogram_quantile({quantile}, sum by (stage, le) "
                 f"(rate(bubblescope_step_latency_seconds_bucket{{{_J}}}[$__rate_interval])))",
                 f"{{{{stage}}}} {name}")


_STACKED = {"stacking": {"mode": "normal", "group": "A"}, "fillOpacity": 30}

SECTIONS: tuple[tuple[str, tuple[Panel, ...]], ...] = (
    ("Progress", (
        Panel("Job state",
              (Query(f"bubblescope_job_state{{{_J}}} == 1", "{{state}}", instant=True),),
              kind="stat", width=4, options={"textMode": "name", "colorMode": "background"}),
        Panel("Job progress",
              (Query(f"bubblescope_job_steps_done{{{_J}}} / bubblescope_job_steps_planned{{{_J}}}",
                     "progress"),),
              kind="gauge", unit="percentunit", width=5, limits=(0, 1),
              description="Steps committed over steps planned."),
        Panel("Steps/s by platform",
              (Query(f"sum by (platform) ({_STEP_RATE})", "{{platform}}"),),
              unit="ops", width=8),
        Panel("Runs by state",
              (Query(f"sum by (state) (bubblescope_runs{{{_J}}})", "{{state}}"),),
              custom=_STACKED, width=7),
        Panel("Run progress",
              (Query(f"bubblescope_run_progress_ratio{{{_J}}}",
                     "{{persona}} / {{platform}} / {{experiment}} #{{replicate}}", instant=True),),
              kind="bargauge", unit="percentunit", width=24,
              options={"displayMode": "gradient", "orientation": "horizontal"}),
    )),
    ("Bubbles", (
        Panel("Window diversity per run",
              (Query(f"bubblescope_window_diversity{{{_J}}}",
                     "{{persona}} / {{platform}} #{{replicate}} ({{phase}})"),),
              description="Distinct categories in each run's sliding window (bubble breadth)."),
        Panel("Window entropy per run",
              (Query(f"bubblescope_window_entropy_bits{{{_J}}}",
                     "{{persona}} / {{platform}} #{{replicate}} ({{phase}})"),),
              unit="bits", description="Category entropy of each run's sliding window."),
        Panel("Running BEP by platform and persona",
              (Query(f"avg by (platform, persona) (bubblescope_running_bep{{{_J}}})",
                     "{{persona}} / {{platform}}"),),
              width=24, limits=(0, 1),
              description="Bubble Escape Potential so far, mean over replicates (depth)."),
    )),
    ("Latency", (
        Panel("Step latency p50 by stage", (_latency("0.5", "p50"),), unit="s"),
        Panel("Step latency p99 by stage", (_latency("0.99", "p99"),), unit="s"),
    )),
    ("Devices", (
        Panel("Devices by state",
              (Query(f"count by (state) (bubblescope_device_state{{{_J}}} == 1)", "{{state}}"),),
              custom=_STACKED, width=8),
        Panel("Device state now",
              (Query(f"bubblescope_device_state{{{_J}}} == 1", "{{device}}: {{state}}",
                     instant=True, format="table"),),
              kind="table", width=8,
              options={"showHeader": True}),
        Panel("Device restarts",
              (Query(f"bubblescope_device_restarts_total{{{_J}}}", "{{device}}", instant=True),),
              kind="bargauge", width=8, options={"orientation": "horizontal"}),
        Panel("Steps/s by device",
              (Query(f"rate(bubblescope_device_steps_total{{{_J}}}[$__rate_interval])",
                     "{{device}}"),),
              unit="ops"),
        Panel("Format failures",
              (Query(f"sum(rate(bubblescope_format_failures_total{{{_J}}}[$__rate_interval])) "
                     f"/ sum({_STEP_RATE})", "failed / steps"),
               Query(f"bubblescope_format_failures_total{{{_J}}}", "total")),
              unit="short",
              description="Share of steps whose policy output did not parse, and the total."),
    )),
)


def build_dashboard() -> dict:
    """The Grafana dashboard JSON model (schemaVersion 39)."""
    return {
        "uid": UID,
        "title": "bubblescope",
        "description": "A bubblescope audit in flight: progress, bubbles, latency, devices.",
        "tags": ["bubblescope"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": [_datasource_variable(), _job_variable()]},
        "panels": list(_layout(SECTIONS)),
    }


def panel_queries(dashboard: dict, job: str, rate_interval: str = "1m") -> list[str]:
    """Every PromQL expr in `dashboard`, with `$job` and `$__rate_interval` filled in."""
    exprs = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("${job}", job).replace("$job", job)
            exprs.append(expr.replace("$__rate_interval", rate_interval))
    return exprs


def render(dashboard: dict) -> str:
    """The dashboard as the committed file holds it."""
    return json.dumps(dashboard, indent=2) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the dashboard JSON to the path given as the one argument."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m bubblescope.metrics.dashboards OUTPUT.json", file=sys.stderr)
        return 2
    Path(args[0]).write_text(render(build_dashboard()), encoding="utf-8")
    return 0


def _datasource_variable() -> dict:
    return {"name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": "",
            "options": [], "includeAll": False, "multi": False}


def _job_variable() -> dict:
    query = "label_values(bubblescope_job_steps_planned, job)"
    return {"name": "job", "label": "Job", "type": "query", "datasource": dict(_DATASOURCE),
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "definition": query, "current": {}, "hide": 0, "refresh": 2, "regex": "",
            "sort": 1, "options": [], "includeAll": False, "multi": False}


def _layout(sections: Sequence[tuple[str, Sequence[Panel]]]) -> Iterator[dict]:
    """Rows of panels, left to right, wrapping at Grafana's 24-column grid; ids from 1."""
    next_id, y = 1, 0
    for title, panels in sections:
        yield _row(next_id, title, y)
        next_id, y, x, row_height = next_id + 1, y + 1, 0, 0
        for panel in panels:
            if x + panel.width > _GRID_WIDTH:
                x, y, row_height = 0, y + row_height, 0
            yield _panel(next_id, panel, {"h": panel.height, "w": panel.width, "x": x, "y": y})
            next_id, x, row_height = next_id + 1, x + panel.width, max(row_height, panel.height)
        y += row_height


def _row(panel_id: int, title: str, y: int) -> dict:
    return {"id": panel_id, "type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"h": 1, "w": _GRID_WIDTH, "x": 0, "y": y}}


def _panel(panel_id: int, panel: Panel, grid: dict) -> dict:
    defaults: dict = {"unit": panel.unit, "custom": dict(panel.custom)}
    if panel.limits is not None:
        defaults["min"], defaults["max"] = panel.limits
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": dict(_DATASOURCE),
        "gridPos": grid,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": dict(panel.options),
        "targets": [_target(query, chr(ord("A") + i)) for i, query in enumerate(panel.queries)],
    }


def _target(query: Query, ref_id: str) -> dict:
    return {"refId": ref_id, "datasource": dict(_DATASOURCE), "expr": query.expr,
            "legendFormat": query.legend, "format": query.format, "instant": query.instant,
            "range": not query.instant}


if __name__ == "__main__":
    raise SystemExit(main())
