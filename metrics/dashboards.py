"""The bubblescope Grafana dashboard, as code, built with Grafana's own Python SDK.

The panels are declared here, from the same metric names the exporter writes, and the JSON
committed under deploy/grafana/dashboards/ is generated from them (a test fails if the two
drift). Keeping it as code means a panel can't quietly query a metric that no longer exists:
the integration tests run every panel's PromQL against a real Prometheus fed by the exporter.
`grafana-foundation-sdk` builds the objects (panels, queries, variables, grid layout), so the
JSON has the shape Grafana itself defines.

Regenerate the committed file with:

    python -m bubblescope.metrics.dashboards deploy/grafana/dashboards/bubblescope.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import bargauge, gauge, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

__all__ = ["build_dashboard", "main", "panel_queries", "render"]

UID = "bubblescope"
_DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
_J = 'job="$job"'
_STEP_RATE = f"rate(bubblescope_steps_total{{{_J}}}[$__rate_interval])"
_JOBS = "label_values(bubblescope_job_steps_planned, job)"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False  # Prometheus's table format instead of time series


Style = Callable[[Any], Any]  # applies a panel kind's own options to its SDK builder


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    kind: Callable[[], Any] = timeseries.Panel
    unit: str = "short"
    width: int = 12
    height: int = 8
    description: str = ""
    style: Style | None = None
    limits: tuple[float, float] | None = None  # y-axis / gauge min and max


def _latency(quantile: str, name: str) -> Query:
    return Query(f"histogram_quantile({quantile}, sum by (stage, le) "
                 f"(rate(bubblescope_step_latency_seconds_bucket{{{_J}}}[$__rate_interval])))",
                 f"{{{{stage}}}} {name}")


def _stacked(panel: timeseries.Panel) -> timeseries.Panel:
    stacking = common_builders.StackingConfig().mode(common.StackingMode.NORMAL).group("A")
    return panel.stacking(stacking).fill_opacity(30)


def _state_names(panel: stat.Panel) -> stat.Panel:
    return panel.text_mode(common.BigValueTextMode.NAME) \
        .color_mode(common.BigValueColorMode.BACKGROUND)


def _gradient_bars(panel: bargauge.Panel) -> bargauge.Panel:
    return panel.display_mode(common.BarGaugeDisplayMode.GRADIENT) \
        .orientation(common.VizOrientation.HORIZONTAL)


def _horizontal_bars(panel: bargauge.Panel) -> bargauge.Panel:
    return panel.orientation(common.VizOrientation.HORIZONTAL)


def _with_header(panel: table.Panel) -> table.Panel:
    return panel.show_header(True)


SECTIONS: tuple[tuple[str, tuple[Panel, ...]], ...] = (
    ("Progress", (
        Panel("Job state",
              (Query(f"bubblescope_job_state{{{_J}}} == 1", "{{state}}", instant=True),),
              kind=stat.Panel, width=4, style=_state_names),
        Panel("Job progress",
              (Query(f"bubblescope_job_steps_done{{{_J}}} / bubblescope_job_steps_planned{{{_J}}}",
                     "progress"),),
              kind=gauge.Panel, unit="percentunit", width=5, limits=(0, 1),
              description="Steps committed over steps planned."),
        Panel("Steps/s by platform",
              (Query(f"sum by (platform) ({_STEP_RATE})", "{{platform}}"),),
              unit="ops", width=8),
        Panel("Runs by state",
              (Query(f"sum by (state) (bubblescope_runs{{{_J}}})", "{{state}}"),),
              style=_stacked, width=7),
        Panel("Run progress",
              (Query(f"bubblescope_run_progress_ratio{{{_J}}}",
                     "{{persona}} / {{platform}} / {{experiment}} #{{replicate}}", instant=True),),
              kind=bargauge.Panel, unit="percentunit", width=24, style=_gradient_bars),
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
              style=_stacked, width=8),
        Panel("Device state now",
              (Query(f"bubblescope_device_state{{{_J}}} == 1", "{{device}}: {{state}}",
                     instant=True, table=True),),
              kind=table.Panel, width=8, style=_with_header),
        Panel("Device restarts",
              (Query(f"bubblescope_device_restarts_total{{{_J}}}", "{{device}}", instant=True),),
              kind=bargauge.Panel, width=8, style=_horizontal_bars),
        Panel("Steps/s by device",
              (Query(f"rate(bubblescope_device_steps_total{{{_J}}}[$__rate_interval])",
                     "{{device}}"),),
              unit="ops"),
        Panel("Format failures",
              (Query(f"sum(rate(bubblescope_format_failures_total{{{_J}}}[$__rate_interval])) "
                     f"/ sum({_STEP_RATE})", "failed / steps"),
               Query(f"bubblescope_format_failures_total{{{_J}}}", "total")),
              description="Share of steps whose policy output did not parse, and the total."),
    )),
    ("Serving", (
        Panel("Decisions/s by policy replica",
              (Query(f"rate(bubblescope_replica_decisions_total{{{_J}}}[$__rate_interval])",
                     "replica {{replica}}"),),
              unit="ops", width=12),
        Panel("Adapter churn by policy replica",
              (Query(f"rate(bubblescope_replica_adapter_loads_total{{{_J}}}[$__rate_interval])",
                     "loads {{replica}}"),
               Query(f"rate(bubblescope_replica_adapter_evictions_total{{{_J}}}"
                     "[$__rate_interval])", "evictions {{replica}}")),
              unit="ops", width=12,
              description="Persona adapters loaded and evicted per second; above zero once "
              "the personas outnumber the adapters the replicas hold."),
    )),
)


def build_dashboard() -> dict:
    """The Grafana dashboard JSON model, as the SDK encodes it."""
    builder = (
        dashboard_builders.Dashboard("bubblescope")
        .uid(UID)
        .description("A bubblescope audit in flight: progress, bubbles, latency, devices, serving.")
        .tags(["bubblescope"])
        .editable()
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .refresh("10s")
        .time("now-1h", "now")
        .timezone("browser")
        .with_variable(dashboard_builders.DatasourceVariable("datasource")
                       .label("Data source").type("prometheus"))
        .with_variable(dashboard_builders.QueryVariable("job").label("Job")
                       .query(_JOBS).datasource(_DATASOURCE)
                       .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
                       .sort(models.VariableSort.ALPHABETICAL_ASC))
    )
    next_id = 1
    for title, panels in SECTIONS:
        builder = builder.with_row(dashboard_builders.Row(title).id(next_id))
        for offset, panel in enumerate(panels, start=1):
            builder = builder.with_panel(_panel(next_id + offset, panel))
        next_id += len(panels) + 1
    return json.loads(json.dumps(builder.build(), cls=JSONEncoder))


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
    with open(args[0], "w", encoding="utf-8") as out:
        out.write(render(build_dashboard()))
    return 0


def _panel(panel_id: int, panel: Panel) -> Any:
    builder = (panel.kind().id(panel_id).title(panel.title).description(panel.description)
               .datasource(_DATASOURCE).unit(panel.unit).span(panel.width).height(panel.height))
    if panel.limits is not None:
        builder = builder.min(panel.limits[0]).max(panel.limits[1])
    if panel.style is not None:
        builder = panel.style(builder)
    for index, query in enumerate(panel.queries):
        builder = builder.with_target(_target(query, chr(ord("A") + index)))
    return builder


def _target(query: Query, ref_id: str) -> prometheus.Dataquery:
    target = (prometheus.Dataquery().ref_id(ref_id).datasource(_DATASOURCE).expr(query.expr)
              .legend_format(query.legend))
    target = target.instant() if query.instant else target.range()
    if query.table:
        target = target.format(PromQueryFormat.TABLE)
    return target


if __name__ == "__main__":
    raise SystemExit(main())
