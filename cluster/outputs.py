"""A job's outputs beside its steps: job.yaml on the way in, summary.json and report.html out."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import ValidationError

from bubblescope.actors.plan import plan_runs
from bubblescope.cluster.errors import JobConflictError, JobFileError
from bubblescope.config_files import explain, read_mapping
from bubblescope.job import ResolvedJob
from bubblescope.jobspec import JobSpec
from bubblescope.metrics.summary import SummaryConfig, summarize
from bubblescope.personas.loader import load_persona, persona_to_yaml
from bubblescope.report.page import render_report
from bubblescope.sim.profiles import PlatformProfile
from bubblescope.sim.spec import SimDevicesSpec
from bubblescope.store import JobStore


def prepare_store(job: ResolvedJob, store: JobStore) -> str:
    """Record the job in its store, or check that the stored one is the same job.

    Returns "new" or "resume". A job id that holds a different job is refused, so results
    of two different specs never mix.
    """
    existing = store.read_text("job.yaml")
    if existing is not None:
        stored = yaml.safe_load(existing) or {}
        if stored.get("fingerprint") != job.fingerprint():
            raise JobConflictError(
                f"{store.root} holds job {job.job_id!r} run with a different spec; "
                "pass --job-id NEW (or --out DIR) to start a separate job")
        return "resume"
    for persona_id, persona in job.personas.items():
        store.write_text(f"personas/{persona_id}.yaml", persona_to_yaml(persona))
    store.write_text("job.yaml", yaml.safe_dump(job.resolved(), sort_keys=False,
                                                allow_unicode=True))
    return "new"


def load_job_dir(job_dir: str | Path) -> tuple[ResolvedJob, JobStore]:
    """The job stored in `job_dir` (`<storage_path>/<job_id>`), from its job.yaml and personas."""
    job_dir = Path(job_dir).expanduser().resolve()
    job_file = job_dir / "job.yaml"
    if not job_file.is_file():
        raise JobFileError("no job.yaml here; point at <storage_path>/<job_id>",
                           source=str(job_dir))
    data = read_mapping(job_file, JobFileError, "stored job file")
    personas = {p.stem: load_persona(p) for p in sorted((job_dir / "personas").glob("*.yaml"))}
    try:
        job = ResolvedJob.from_resolved(data, personas, storage_path=str(job_dir.parent),
                                        source=str(job_file))
    except ValidationError as exc:  # of the spec, or of a platform profile
        model = JobSpec if exc.title == JobSpec.__name__ else PlatformProfile
        key, reason = explain(exc, model)
        section = "spec" if model is JobSpec else "platforms"
        raise JobFileError(reason, source=str(job_file), key=f"{section}.{key}") from exc
    except (KeyError, TypeError, AttributeError) as exc:
        raise JobFileError(f"not a job.yaml that bubblescope wrote ({type(exc).__name__}: "
                           f"{exc}); rerun the audit to rewrite it", source=str(job_file)) from exc
    return job, JobStore(str(job_dir.parent), job_dir.name)  # the folder, even if renamed


def write_outputs(job: ResolvedJob, store: JobStore) -> dict:
    """summary.json and report.html from whatever the store holds now (partial jobs too)."""
    metrics = job.spec.metrics
    config = SummaryConfig(level=metrics.category_level, window=job.spec.window,
                           n_boot=metrics.bootstrap, block=metrics.block,
                           confidence=metrics.confidence, seed=job.spec.seed)
    planned = {run.run_id: run.total_steps for run in plan_runs(job)}
    steps = store.read_steps()
    devices = job.spec.devices
    simulated = isinstance(devices, SimDevicesSpec) or devices.adb.app == "bubblescope-sim"
    # ground truth is known wherever the platforms are simulated, in process or on phones
    platforms = {n: p.model_dump(mode="json") for n, p in job.profiles.items()} \
        if simulated else None
    summary = summarize(steps, job_id=job.job_id, planned=planned, config=config,
                        platforms=platforms)
    store.write_text("summary.json", json.dumps(summary, indent=1))
    store.write_text("report.html", render_report(summary, steps, job))
    return summary
