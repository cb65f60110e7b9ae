"""End to end: audits through the CLI's runner, live metrics scraped by a real Prometheus,
and the quickstart recovering the simulated world's ground truth."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from bubblescope.cluster.job import load_job
from bubblescope.cluster.local import AuditOptions, run_audit
from tests.conftest import EXAMPLES, write_job
from tests.support.prometheus_server import free_port, running_prometheus

LIVE_JOB = """
    job_id: live
    seed: 2
    storage_path: out
    personas: [PERSONAS/concentrated.yaml]
    platforms: [douyin-like, frozen]
    experiments:
      depth: {cultivation_steps: 3000, counterfactual_steps: 3000}
    window: 50
    replicates: 1
    devices: {count: 2, cpus_per_device: 0.5, sim_pace: 5000}  # outlasts many scrapes, however fast the machine
    metrics: {bootstrap: 50}
    checkpoint_every: 50
"""


def test_live_metrics_reach_a_real_prometheus_during_the_audit(tmp_path: Path, ray_local) -> None:
    port = free_port()
    job = load_job(write_job(tmp_path, LIVE_JOB))
    config = {"global": {"scrape_interval": "500ms", "evaluation_interval": "1s"},
              "scrape_configs": [{"job_name": "bubblescope", "honor_labels": True,
                                  "scrape_interval": "500ms", "scrape_timeout": "400ms",
                                  "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]}
    codes: list[int] = []
    with running_prometheus(config, tmp_path) as prometheus:
        # Prometheus applies a new configuration's targets only every few seconds, and a
        # fast audit can end before then: start it once the target has been scraped.
        prometheus.wait_for('up{job="bubblescope"}', lambda r: len(r) == 1, timeout_s=20)
        audit = threading.Thread(target=lambda: codes.append(
            run_audit(job, AuditOptions(progress=False, metrics_port=port))), daemon=True)
        audit.start()
        selector = '{job="live"}'
        prometheus.wait_for(f"bubblescope_job_steps_done{selector}",
                            lambda r: r and float(r[0]["value"][1]) > 0, timeout_s=60)
        prometheus.wait_for('bubblescope_device_state{job="live",state="running"} == 1',
                            lambda r: len(r) >= 1, timeout_s=30)
        for stage in ("observe", "decide", "act", "record", "overhead"):
            prometheus.wait_for(
                f'bubblescope_step_latency_seconds_count{{job="live",stage="{stage}"}}',
                lambda r: r and float(r[0]["value"][1]) > 0, timeout_s=30)
        prometheus.wait_for(f"bubblescope_window_diversity{selector}",
                            lambda r: all(0 < float(s["value"][1]) <= 25 for s in r) and r,
                            timeout_s=30)
        prometheus.wait_for(f"bubblescope_running_bep{selector}", lambda r: len(r) == 2,
                            timeout_s=60)
        prometheus.wait_for(f"sum(rate(bubblescope_steps_total{selector}[5s]))",
                            lambda r: r and float(r[0]["value"][1]) > 0, timeout_s=30)
        audit.join(timeout=180)
    assert codes == [0]
    summary = json.loads((tmp_path / "out" / "live" / "summary.json").read_text())
    assert summary["complete"]


def test_quickstart_recovers_the_simulated_ground_truth(tmp_path: Path, ray_local) -> None:
    """The issue's acceptance, on the shipped quickstart: diversity falls on every adaptive
    platform and not on null; frozen and null BEP far below every adaptive platform; BEP in
    the order of configured responsiveness; every BEP with a CI."""
    job = load_job(EXAMPLES / "quickstart.yaml", storage_path=str(tmp_path))
    assert run_audit(job, AuditOptions(progress=False, metrics_port=None)) == 0
    folder = tmp_path / "quickstart"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["complete"] and len(summary["runs"]) == 60
    checks = {c["check"]: c for c in summary["ground_truth_checks"]}
    failed = [c for c in checks.values() if not c["passed"]]
    assert not failed, failed
    assert {"diversity falls on bilibili-like", "diversity falls on kuaishou-like",
            "diversity falls on douyin-like", "diversity does not fall on null",
            "BEP of null far below every adaptive platform",
            "BEP of frozen far below every adaptive platform",
            "BEP order matches responsiveness", "every BEP has a CI"} <= set(checks)
    depth = [r for r in summary["runs"] if r["experiment"] == "depth"]
    assert all(r["bep_ci"][0] <= r["bep"] <= r["bep_ci"][1] for r in depth)
    assert all(len(r["top10"]["counterfactual"]) == 10 for r in depth)
    assert (folder / "report.html").stat().st_size > 10_000
    assert (folder / "job.yaml").exists() and (folder / "personas" / "dispersed.yaml").exists()
