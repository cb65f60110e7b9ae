"""The report's tables, built from summary.json's plain dicts (see metrics/summary.py)."""

from __future__ import annotations

from bubblescope.report.html import empty, esc, fmt, pct, signed_pct, table, with_ci

_MARKS = {
    "NEW": "<span class='mark-new'>NEW</span>",
    "up": "<span class='mark-up' title='moved up'>\u2191</span>",
    "down": "<span class='mark-down' title='moved down'>\u2193</span>",
    "same": "<span class='mark-same' title='same rank'>=</span>",
}


def _badge(passed: bool, yes: str = "pass", no: str = "fail") -> str:
    return f"<span class='badge {'pass' if passed else 'fail'}'>{yes if passed else no}</span>"


def ground_truth_table(checks: list[dict]) -> str:
    """Does the audit recover the simulated world's known truth? One row per check."""
    passed = sum(bool(c["passed"]) for c in checks)
    rows = [(_badge(bool(c["passed"]), "\u2714 pass", "\u2718 fail"), esc(c["check"]),
             esc(c["detail"])) for c in checks]
    return (f"<p>{passed} of {len(checks)} checks pass.</p>"
            + table(["result", "check", "detail"], rows, attrs=" id='ground-truth-table'"))


def platform_table(entries: list[dict]) -> str:
    """Per-platform aggregates over personas and replicates."""
    rows = [(esc(e["platform"]), esc(e["runs"]), esc(e.get("bep_runs", 0)),
             with_ci(e.get("bep"), e.get("bep_ci")), esc(e.get("diversity_runs", 0)),
             with_ci(e.get("diversity_change"), e.get("diversity_change_ci"), signed_pct))
            for e in entries]
    return table(["platform", "runs", "depth runs", "BEP [CI]", "breadth runs",
                  "diversity change [CI]"], rows, numeric=(1, 2, 3, 4, 5),
                 attrs=" id='platform-table'")


def diversity_change_table(cells: list[dict]) -> str:
    """Diversity at the start and end of fresh feeds, and the relative change with its CI."""
    cells = [c for c in cells if c.get("diversity_change") is not None]
    if not cells:
        return empty("No breadth run has a full window of classified videos yet, "
                     "so there is no diversity change to show.")
    rows = [(esc(c["platform"]), esc(c["persona"]), esc(c.get("diversity_runs")),
             fmt(c.get("diversity_start"), 2), fmt(c.get("diversity_end"), 2),
             with_ci(c["diversity_change"], c.get("diversity_change_ci"), signed_pct))
            for c in cells]
    return table(["platform", "persona", "runs", "distinct at start", "distinct at end",
                  "change [CI]"], rows, numeric=(2, 3, 4, 5), attrs=" id='diversity-table'")


def _mark(row: dict) -> str:
    mark = _MARKS.get(row.get("mark") or "", "")
    previous = row.get("previous_rank")
    if mark and previous is not None and row.get("mark") != "same":
        mark += f" <span class='prev'>was #{esc(previous)}</span>"
    return mark


def _phase_table(phase: str, rows: list[dict]) -> str:
    body = [(esc(r["rank"]), esc(r["category"]), pct(r["share"]), _mark(r)) for r in rows]
    return (f"<div><h3>{esc(phase)}</h3>"
            + table(["#", "category", "share", ""], body, numeric=(0, 2),
                    attrs=" class='top10'") + "</div>")


def top10_block(cell: dict) -> str:
    """One platform x persona: its phases' top-10 tables side by side (the paper's Table 5)."""
    phases = cell.get("top10") or {}
    title = f"<h3>{esc(cell['platform'])} \u00b7 persona {esc(cell['persona'])}</h3>"
    if not phases:
        return f"<div class='cell'>{title}{empty('no classified videos yet')}</div>"
    tables = "".join(_phase_table(phase, rows) for phase, rows in phases.items())
    return f"<div class='cell'>{title}<div class='side'>{tables}</div></div>"


def top10_section(cells: list[dict]) -> str:
    """All platform x persona blocks, with a legend for the marks."""
    if not cells:
        return empty("No runs have recorded steps yet.")
    legend = (f"<p class='muted'>Top 10 categories by share of each phase's videos, replicates "
              f"pooled. Marks compare with the previous phase: {_MARKS['NEW']} not in its top "
              f"10, {_MARKS['up']} moved up, {_MARKS['down']} moved down, {_MARKS['same']} "
              f"same rank.</p>")
    return legend + "".join(top10_block(c) for c in cells)


def serving_table(serving: dict, adapters_held: int | None) -> str:
    """The policy replicas: decisions and adapter churn; a warning when adapters were evicted,
    which happens when the personas outnumber what the replicas hold."""
    rows = [(esc(r["replica"]), esc(r["decisions"]), esc(r["personas"]), esc(r["adapter_loads"]),
             esc(r["adapter_evictions"]), fmt(r["loads_per_s"], 2), fmt(r["evictions_per_s"], 2))
            for r in serving["replicas"]]
    note = ""
    if serving["adapter_evictions"]:
        room = f" the replicas hold at most {adapters_held}" if adapters_held else ""
        note = (f"<p class='warning'>Adapter churn: {esc(serving['personas'])} personas were "
                f"served and{esc(room)}, so {esc(serving['adapter_evictions'])} adapters were "
                "evicted and loaded again. Raise max_adapters_per_replica or the replicas, "
                "or run fewer personas at once.</p>")
    return note + table(["replica", "decisions", "personas", "adapter loads", "evictions",
                         "loads/s", "evictions/s"], rows, numeric=(1, 2, 3, 4, 5, 6),
                        attrs=" id='serving-table'")


def _run_row(run: dict) -> tuple[str, ...]:
    status = _badge(bool(run["complete"]), "complete", "incomplete")
    return (esc(run["run_id"]), status, f"{run['steps']}/{run['steps_planned']}",
            with_ci(run.get("bep"), run.get("bep_ci")),
            with_ci(run.get("diversity_change"), run.get("diversity_change_ci"), signed_pct),
            pct(run.get("like_rate")), fmt(run.get("mean_watch_s"), 1),
            esc(run.get("format_failures")))


def runs_table(runs: list[dict], missing: list[str]) -> str:
    """Every run: progress and its own metrics; planned runs without any step are listed too."""
    if not runs and not missing:
        return empty("The job plans no runs.")
    rows = [_run_row(r) for r in runs]
    rows += [(esc(run_id), "<span class='badge fail'>not started</span>", "0", "\u2013",
              "\u2013", "\u2013", "\u2013", "\u2013") for run_id in missing]
    note = ("<p class='muted'>Diversity change of a breadth run is over its fresh feed; of a "
            "depth run, over its cultivation phase.</p>")
    return note + table(["run", "status", "steps", "BEP [CI]", "diversity change [CI]",
                         "like rate", "mean watch (s)", "format failures"], rows,
                        numeric=(2, 3, 4, 5, 6, 7), attrs=" id='runs-table'")
