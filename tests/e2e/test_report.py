"""report.html end to end: a real (small) audit, the page it writes, and a real browser on it."""

from __future__ import annotations

import base64
import copy
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
from matplotlib.image import imread

from bubblescope.cluster.cli import main
from bubblescope.cluster.outputs import load_job_dir
from bubblescope.metrics.summary import SummaryConfig, summarize
from bubblescope.report.page import SECTIONS, render_report
from tests.conftest import SMALL_JOB, write_job

pytestmark = pytest.mark.slow

SECTION_IDS = [section_id for section_id, _ in SECTIONS]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXTERNAL = re.compile(r"""(?i)(src|href)\s*=\s*['"]?\s*(https?:|//|file:)|<link\b|@import|url\(""")


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished small audit (two personas, two platforms, depth and breadth) for every test."""
    folder = tmp_path_factory.mktemp("report-job")
    job = write_job(folder, SMALL_JOB)
    assert main(["audit", str(job), "--no-metrics", "--no-progress"]) == 0
    return folder / "out" / "small"


@pytest.fixture(scope="module")
def page(job_dir: Path) -> str:
    return (job_dir / "report.html").read_text("utf-8")


@pytest.fixture(scope="module")
def summary(job_dir: Path) -> dict:
    return json.loads((job_dir / "summary.json").read_text("utf-8"))


def _chromium() -> str:
    """The browser the tests drive; its absence is a failure, never a silent skip."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium not found: install Debian's chromium (make test does it)")
    return found


def _browse(html_file: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
               *args, html_file.resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(data)
            for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)]


def _section(page: str, section_id: str) -> str:
    start = page.index(f"<section id='{section_id}'>")
    return page[start:page.index("</section>", start)]


# -- the page as written by the audit ------------------------------------------------------

def test_report_is_one_self_contained_file(page: str) -> None:
    assert page.startswith("<!doctype html>")
    assert EXTERNAL.search(page) is None
    assert "<script" not in page


def test_report_has_every_section_in_order(page: str) -> None:
    positions = [page.index(f"<section id='{section_id}'>") for section_id in SECTION_IDS]
    assert positions == sorted(positions)
    assert "class='error'" not in page  # no section failed on a complete job


def test_header_names_job_config_platforms_and_personas(page: str, job_dir: Path) -> None:
    overview = _section(page, "overview")
    assert "complete</span>" in overview and "8 of 8 runs complete" in overview
    assert "20 videos" in overview and "95%" in overview and "100 resamples" in overview
    profiles = _section(page, "platforms")
    assert "douyin-like" in profiles and "responsiveness" in profiles
    personas = _section(page, "personas")
    job, _ = load_job_dir(job_dir)
    for persona in job.personas.values():
        assert html.escape(persona.narrative.strip()) in personas


def test_plots_are_inlined_pngs(page: str) -> None:
    images = _images(page)
    assert len(images) == 3  # diversity for each of two personas, and BEP
    assert all(image.startswith(PNG_MAGIC) for image in images)
    assert _images(_section(page, "bep")) and len(_images(_section(page, "diversity"))) == 2


def test_ground_truth_and_tables(page: str, summary: dict) -> None:
    checks = _section(page, "ground-truth")
    assert checks.count("<tr>") == len(summary["ground_truth_checks"]) + 1
    assert "diversity-table" in _section(page, "diversity-change")
    top10 = _section(page, "top10")
    assert "<h3>cultivation</h3>" in top10 and "<h3>counterfactual</h3>" in top10
    assert "mark-new'>NEW" in top10
    assert "\u2191" in top10 or "\u2193" in top10
    assert top10.count("class='cell'") == 4  # 2 platforms x 2 personas


def test_every_run_is_listed(page: str, summary: dict) -> None:
    runs = _section(page, "runs")
    assert len(summary["runs"]) == 8
    for run in summary["runs"]:
        assert f"<td>{run['run_id']}</td>" in runs


# -- a real browser ------------------------------------------------------------------------

def test_chromium_renders_the_report(job_dir: Path, tmp_path: Path) -> None:
    html_file = job_dir / "report.html"
    dumped = _browse(html_file, tmp_path / "dom-profile", "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    for section_id in SECTION_IDS:
        assert f'id="{section_id}"' in dumped.stdout
    assert "Bubble Escape Potential" in dumped.stdout and 'id="runs-table"' in dumped.stdout

    shot = tmp_path / "shot.png"
    shown = _browse(html_file, tmp_path / "shot-profile", f"--screenshot={shot}",
                    "--window-size=1280,4000")
    assert shown.returncode == 0 and shot.is_file(), shown.stderr[-2000:]
    pixels = imread(shot)
    assert pixels.shape[:2] == (4000, 1280)
    assert float(np.var(pixels[..., :3])) > 0
    assert float((pixels[..., :3].mean(axis=2) < 0.9).mean()) > 0.02  # text and plots drawn


# -- partial jobs, one experiment, failures ------------------------------------------------

def test_partial_job_reports_what_it_has(job_dir: Path, tmp_path: Path) -> None:
    partial = tmp_path / "small"
    shutil.copytree(job_dir, partial)
    depth_run = next(p for p in sorted((partial / "steps").iterdir()) if "--depth--" in p.name)
    sorted(depth_run.glob("part-*.parquet"))[-1].unlink()  # the counterfactual's last part
    breadth_run = next(p for p in sorted((partial / "steps").iterdir()) if "--breadth--" in p.name)
    shutil.rmtree(breadth_run)  # a run that never started

    assert main(["report", str(partial)]) == 0
    page = (partial / "report.html").read_text("utf-8")
    assert "id='job-status'>partial</span>" in page
    assert "6 of 8 runs complete" in page
    runs = _section(page, "runs")
    assert "incomplete" in runs and "not started" in runs
    assert f"<td>{depth_run.name}</td>" in runs and f"<td>{breadth_run.name}</td>" in runs
    assert "class='error'" not in page


def _render_subset(job_dir: Path, experiment: str) -> str:
    """The page of the job's steps of one experiment only, as a one-experiment job would have."""
    job, store = load_job_dir(job_dir)
    steps = store.read_steps()
    steps = steps.filter(pc.equal(steps["experiment"], experiment))
    planned = {run_id: 120 for run_id in set(steps.column("run_id").to_pylist())}
    summary = summarize(steps, job_id=job.job_id, planned=planned,
                        config=SummaryConfig(window=job.spec.window, n_boot=50))
    return render_report(summary, steps, job)


def test_depth_only_and_breadth_only_pages(job_dir: Path) -> None:
    depth = _render_subset(job_dir, "depth")
    assert "no breadth run with 20 classified videos yet" in _section(depth, "diversity")
    assert len(_images(depth)) == 1
    breadth = _render_subset(job_dir, "breadth")
    assert "no BEP" in _section(breadth, "bep")
    assert "<h3>breadth</h3>" in _section(breadth, "top10")
    assert len(_images(breadth)) == 2
    for page in (depth, breadth):
        assert "class='error'" not in page
        assert "No ground truth" in _section(page, "ground-truth")


def test_a_job_without_steps_says_so(job_dir: Path) -> None:
    job, store = load_job_dir(job_dir)
    steps = store.read_steps().slice(0, 0)
    summary = summarize(steps, job_id=job.job_id, planned={"a-run": 10},
                        config=SummaryConfig(window=job.spec.window, n_boot=50))
    page = render_report(summary, steps, job)
    assert "class='error'" not in page and not _images(page)
    assert "id='job-status'>partial</span>" in page
    assert "no BEP" in page and "No runs have recorded steps yet" in page
    assert "not started" in _section(page, "runs")


def test_a_broken_section_leaves_the_rest(job_dir: Path, summary: dict) -> None:
    job, store = load_job_dir(job_dir)
    broken = copy.deepcopy(summary)
    broken["aggregates"]["by_platform_persona"][0].pop("top10")
    broken["aggregates"]["by_platform_persona"][1]["bep_ci"] = "nonsense"
    broken["ground_truth_checks"][0]["detail"] = "<script>alert(1)</script>"
    page = render_report(broken, store.read_steps(), job)
    assert "class='error'" in _section(page, "bep")
    assert "no classified videos yet" in _section(page, "top10")
    assert "<script>" not in page and "&lt;script&gt;alert(1)" in page
    assert _images(_section(page, "diversity")) and f"<td>{summary['runs'][0]['run_id']}" in page


def test_report_on_a_copied_and_renamed_job_folder_writes_into_that_folder(
        job_dir: Path, tmp_path: Path) -> None:
    copy_dir = tmp_path / "renamed-copy"
    shutil.copytree(job_dir, copy_dir)
    (copy_dir / "summary.json").unlink()
    (copy_dir / "report.html").unlink()
    assert main(["report", str(copy_dir)]) == 0
    summary = json.loads((copy_dir / "summary.json").read_text("utf-8"))
    assert summary["complete"] and len(summary["runs"]) == 8
    assert (copy_dir / "report.html").exists()
