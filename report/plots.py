"""The report's figures, drawn with matplotlib's Agg backend and inlined as base64 PNG.

Figures are built as `matplotlib.figure.Figure` objects, never through pyplot, so rendering
a report touches no global state (it may run inside a Ray worker or beside other plots).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from itertools import groupby

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bubblescope.metrics.diversity import distinct_in_windows
from bubblescope.report.html import esc

PALETTE = ("#2a5db0", "#d9822b", "#2f9e44", "#c92a2a", "#7048e8", "#8d6e63", "#e64980",
           "#495057", "#a9a000", "#1098ad")


def colours(names: Sequence[str]) -> dict[str, str]:
    """A fixed colour per name, so a platform looks the same in every figure."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def png_img(fig: Figure, alt: str) -> str:
    """The figure as an <img> with its PNG inlined: the report stays one self-contained file."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img class='plot' alt='{esc(alt)}' src='data:image/png;base64,{data}'>"


# -- diversity over steps ------------------------------------------------------------------

def _levelled(category: str, level: str) -> str:
    return category if level == "sub" else category.split("/", 1)[0]


def breadth_series(steps: pa.Table, level: str,
                   window: int) -> dict[str, dict[str, list[np.ndarray]]]:
    """persona -> platform -> distinct categories per sliding window, one array per breadth run.

    Unclassified steps are left out, as the summary leaves them out of its diversity.
    """
    breadth = steps.filter(pc.equal(steps["experiment"], "breadth"))
    rows = breadth.select(["run_id", "persona", "platform", "step", "category"]).sort_by(
        [("run_id", "ascending"), ("step", "ascending")]).to_pylist()
    series: dict[str, dict[str, list[np.ndarray]]] = {}
    for _, group in groupby(rows, key=lambda r: r["run_id"]):
        run = list(group)
        categories = [_levelled(r["category"], level) for r in run if r["category"] is not None]
        values = distinct_in_windows(categories, window)
        if values.size:
            by_platform = series.setdefault(run[0]["persona"], {})
            by_platform.setdefault(run[0]["platform"], []).append(values)
    return series


def band(runs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max over replicates at each window; shorter (partial) runs drop out."""
    padded = np.full((len(runs), max(len(r) for r in runs)), np.nan)
    for i, run in enumerate(runs):
        padded[i, :len(run)] = run
    return np.nanmean(padded, axis=0), np.nanmin(padded, axis=0), np.nanmax(padded, axis=0)


def diversity_figure(persona: str, by_platform: dict[str, list[np.ndarray]], window: int,
                     palette: dict[str, str]) -> str:
    """One persona's feeds: a line per platform (replicate mean) with a light min-max band."""
    fig = Figure(figsize=(10, 3.8))
    ax = fig.subplots()
    for platform, runs in by_platform.items():
        mean, low, high = band(runs)
        x = np.arange(mean.size) + window
        colour = palette.get(platform, "#495057")
        ax.fill_between(x, low, high, color=colour, alpha=0.15, linewidth=0)
        ax.plot(x, mean, color=colour, linewidth=1.6, label=f"{platform} (n={len(runs)})")
    ax.set_title(f"persona {persona}: distinct categories per {window}-video window")
    ax.set_xlabel("videos watched (end of window)")
    ax.set_ylabel("distinct categories")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    return png_img(fig, f"diversity over steps, persona {persona}")


# -- BEP -----------------------------------------------------------------------------------

def _errors(entries: list[dict]) -> np.ndarray:
    """Asymmetric error bars from CIs; a missing CI draws no bar, never a negative one."""
    low, high = [], []
    for entry in entries:
        ci = entry.get("bep_ci") or [None, None]
        low.append(max(0.0, entry["bep"] - ci[0]) if ci[0] is not None else 0.0)
        high.append(max(0.0, ci[1] - entry["bep"]) if ci[1] is not None else 0.0)
    return np.array([low, high])


def bep_figure(cells: list[dict], platforms: list[str], personas: list[str], level: float) -> str:
    """Grouped bars: per platform, one bar per persona, with CI whiskers."""
    fig = Figure(figsize=(max(6.0, 1.5 * len(platforms) + 2), 4.0))
    ax = fig.subplots()
    width = 0.8 / max(1, len(personas))
    palette = colours(personas)
    for j, persona in enumerate(personas):
        entries = [c for c in cells if c["persona"] == persona]
        x = [platforms.index(c["platform"]) + (j - (len(personas) - 1) / 2) * width
             for c in entries]
        ax.bar(x, [c["bep"] for c in entries], width * 0.92, yerr=_errors(entries),
               capsize=3, color=palette[persona], label=persona, error_kw={"linewidth": 1})
    ax.set_xticks(range(len(platforms)), platforms, rotation=15)
    ax.set_ylabel("BEP (JS divergence, bits)")
    ax.set_title(f"Bubble Escape Potential by platform and persona ({level:.0%} CI)")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="persona", frameon=False, fontsize=9)
    return png_img(fig, "BEP by platform and persona")
