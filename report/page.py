"""report.html: one self-contained page (style and plots inlined) of a job's results.

The page is rebuilt from summary.json's dict and the stored steps, so it works for partial
jobs (runs missing or cut short) and for jobs with only one of the two experiments; every
section says so when it has nothing to show rather than failing.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pyarrow as pa

from bubblescope.actors.plan import plan_runs
from bubblescope.job import ResolvedJob
from bubblescope.report.html import empty, esc, guarded, page, section, table
from bubblescope.report.plots import bep_figure, breadth_series, colours, diversity_figure
from bubblescope.report.tables import (
    diversity_change_table,
    ground_truth_table,
    platform_table,
    runs_table,
    serving_table,
    top10_section,
)

SECTIONS = (("overview", "Overview"), ("platforms", "Platforms"), ("personas", "Personas"),
            ("ground-truth", "Ground-truth checks"), ("diversity", "Diversity over steps"),
            ("bep", "Bubble Escape Potential"), ("diversity-change", "Diversity change"),
            ("top10", "Top-10 categories"), ("serving", "Policy serving"), ("runs", "Runs"))


def _ordered(preferred: list[str], present: set[str]) -> list[str]:
    """Names in the job's order first, then any others the data holds, sorted."""
    return [n for n in preferred if n in present] + sorted(present - set(preferred))


def _platform_names(summary: dict, job: ResolvedJob) -> list[str]:
    present = {r["platform"] for r in summary["runs"]} | set(job.profiles)
    return _ordered(list(job.profiles), present)


def _persona_names(summary: dict, job: ResolvedJob) -> list[str]:
    present = {r["persona"] for r in summary["runs"]} | set(job.personas)
    return _ordered(list(job.personas), present)


def _sorted_cells(entries: list[dict], summary: dict, job: ResolvedJob) -> list[dict]:
    """Aggregate entries in the job's platform order, then its persona order."""
    platforms = _platform_names(summary, job)
    personas = _persona_names(summary, job)

    def key(entry: dict) -> tuple[int, int]:
        platform, persona = entry.get("platform"), entry.get("persona")
        return (platforms.index(platform) if platform in platforms else len(platforms),
                personas.index(persona) if persona in personas else len(personas))

    return sorted(entries, key=key)


# -- 1. header -----------------------------------------------------------------------------

def _status(summary: dict) -> str:
    done = sum(bool(r["complete"]) for r in summary["runs"])
    planned = summary.get("runs_planned", len(summary["runs"]))
    state = "complete" if summary["complete"] else "partial"
    badge = "ok" if summary["complete"] else "partial"
    return (f"<span class='badge {badge}' id='job-status'>{state}</span> "
            f"<span class='muted'>{done} of {planned} runs complete</span>")


def _experiments(job: ResolvedJob) -> str:
    experiments = job.spec.experiments
    parts = []
    if experiments.depth is not None:
        parts.append(f"depth: {experiments.depth.cultivation_steps} cultivation + "
                     f"{experiments.depth.counterfactual_steps} counterfactual videos")
    if experiments.breadth is not None:
        parts.append(f"breadth: {experiments.breadth.steps} videos on a fresh account")
    return "; ".join(parts)


def _policy(job: ResolvedJob) -> str:
    agent = job.agent
    if agent is None:
        return job.spec.policy.kind
    adapters = ", ".join(f"{pid}: {Path(path).name}" for pid, path in agent.adapters.items())
    return (f"agent on {Path(agent.base_model).name} (adapters {adapters or 'none'}; "
            f"categories by {'the VLM' if agent.classify else 'the device classifier'})")


def _overview(summary: dict, job: ResolvedJob) -> str:
    config = summary["config"]
    items = [("status", _status(summary)), ("generated", esc(summary.get("generated_at"))),
             ("experiments", esc(_experiments(job))),
             ("replicates", esc(job.spec.replicates)), ("seed", esc(job.spec.seed)),
             ("policy", esc(_policy(job))),
             ("category level", esc(config["category_level"])),
             ("window", f"{esc(config['window'])} videos"),
             ("bootstrap", f"{esc(config['bootstrap'])} resamples, blocks of "
                           f"{esc(config.get('block'))} steps"),
             ("CI level", f"{100 * config['confidence']:g}%")]
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in items)
    description = job.spec.description or "(no description)"
    return f"<p>{esc(description)}</p><dl class='kv'>{rows}</dl>"


def _param(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else esc(value)


def _platforms(summary: dict, job: ResolvedJob) -> str:
    profiles = summary.get("platforms")
    if not profiles:
        shown = ", ".join(esc(n) for n in _platform_names(summary, job))
        return f"<p>{shown}</p>" + empty("No simulated profile parameters for these platforms.")
    names = list(profiles)
    keys = [k for k in profiles[names[0]] if k not in ("name", "description")]
    rows = [["description", *[esc(profiles[n].get("description", "")) for n in names]]]
    rows += [[esc(k.replace("_", " ")), *[_param(profiles[n].get(k)) for n in names]]
             for k in keys]
    profile_table = table(["parameter", *names], rows, attrs=" id='platform-profiles'")
    note = "<p class='muted'>Simulated recommender profiles (named ones in sim/data/profiles.yaml).</p>"
    return f"{note}<div class='scroll'>{profile_table}</div>"


def _persona(persona_id: str, job: ResolvedJob) -> str:
    persona = job.personas.get(persona_id)
    if persona is None:
        return f"<div class='cell'><h3>{esc(persona_id)}</h3>{empty('no persona file')}</div>"
    stats = persona.stats
    facts = (f"{stats.n_records} recorded videos; watch time mean {stats.duration.mean:.1f} s, "
             f"median {stats.duration.median:.1f} s; like rate {100 * stats.like_rate:.1f}%")
    traits = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in persona.traits.items())
    return (f"<div class='cell'><h3>{esc(persona_id)}</h3>"
            f"<p class='narrative'>{esc(persona.narrative.strip())}</p>"
            f"<p class='muted'>{esc(facts)}</p>"
            + (f"<dl class='kv'>{traits}</dl>" if traits else "") + "</div>")


def _personas(summary: dict, job: ResolvedJob) -> str:
    return "".join(_persona(p, job) for p in _persona_names(summary, job))


# -- 2.-7. results -------------------------------------------------------------------------

def _ground_truth(summary: dict) -> str:
    checks = summary.get("ground_truth_checks")
    if not checks:
        return empty("No ground truth: checks run only on simulated platforms.")
    return ground_truth_table(checks)


def _diversity(summary: dict, steps: pa.Table, job: ResolvedJob) -> str:
    window, level = summary["config"]["window"], summary["config"]["category_level"]
    series = breadth_series(steps, level, window)
    if not series:
        why = "has no breadth experiment" if job.spec.experiments.breadth is None \
            else f"has no breadth run with {window} classified videos yet"
        return empty(f"This job {why}, so there is no diversity series to draw.")
    palette = colours(_platform_names(summary, job))
    note = (f"<p class='muted'>Breadth runs (fresh accounts). Distinct {esc(level)} categories "
            f"in each sliding window of {esc(window)} videos; line: mean over replicates, "
            f"band: min to max.</p>")
    order = _platform_names(summary, job)
    plots = [guarded(f"the diversity plot of {persona}",
                     partial(_diversity_plot, persona, series, order, window, palette))
             for persona in _ordered(list(job.personas), set(series))]
    return note + "".join(plots)


def _diversity_plot(persona: str, series: dict, order: list[str], window: int,
                    palette: dict) -> str:
    return diversity_figure(persona, _in_order(series[persona], order), window, palette)


def _in_order(by_platform: dict, order: list[str]) -> dict:
    """The platforms of one persona's series in the job's order (the legend follows it)."""
    return {name: by_platform[name] for name in _ordered(order, set(by_platform))}


def _bep(summary: dict, job: ResolvedJob) -> str:
    cells = [c for c in summary["aggregates"]["by_platform_persona"] if c.get("bep") is not None]
    if cells:
        platforms = _ordered(_platform_names(summary, job), {c["platform"] for c in cells})
        personas = _ordered(_persona_names(summary, job), {c["persona"] for c in cells})
        level = summary["config"]["confidence"]
        figure = guarded("the BEP chart", lambda: bep_figure(cells, platforms, personas, level))
    elif job.spec.experiments.depth is None:
        figure = empty("This job has no depth experiment, so there is no BEP.")
    else:
        figure = empty("No depth run has videos of both phases yet, so there is no BEP.")
    entries = _sorted_cells(summary["aggregates"]["by_platform"], summary, job)
    return figure + ("<h3>Per platform</h3>" + platform_table(entries) if entries else "")


def _serving(summary: dict, job: ResolvedJob) -> str:
    serving = summary.get("serving")
    if not serving:
        return empty("No step was decided by a served policy (this job's policy runs in the "
                     "device actors), so there is no replica to show.")
    agent = job.agent
    held = agent.deployment.most_replicas * agent.deployment.max_adapters_per_replica \
        if agent else None
    return serving_table(serving, held)


def _missing_runs(summary: dict, job: ResolvedJob) -> list[str]:
    """Planned runs that have not written a step, so a partial job shows what it lacks."""
    seen = {r["run_id"] for r in summary["runs"]}
    return [run.run_id for run in plan_runs(job) if run.run_id not in seen]


def render_report(summary: dict, steps: pa.Table, job: ResolvedJob) -> str:
    """The whole page; sections follow SECTIONS and each fails (and says so) on its own."""
    cells = _sorted_cells(summary["aggregates"]["by_platform_persona"], summary, job)
    builders = {
        "overview": lambda: _overview(summary, job),
        "platforms": lambda: _platforms(summary, job),
        "personas": lambda: _personas(summary, job),
        "ground-truth": lambda: _ground_truth(summary),
        "diversity": lambda: _diversity(summary, steps, job),
        "bep": lambda: _bep(summary, job),
        "diversity-change": lambda: diversity_change_table(cells),
        "top10": lambda: top10_section(cells),
        "serving": lambda: _serving(summary, job),
        "runs": lambda: runs_table(summary["runs"], _missing_runs(summary, job)),
    }
    title = f"bubblescope audit {summary['job_id']}"
    body = f"<h1>{esc(title)}</h1>" + "".join(
        section(sid, heading, builders[sid]) for sid, heading in SECTIONS)
    return page(title, SECTIONS, body)
