"""Running an audit from this process: Ray (local or joined), the coordinator, live metrics,
progress, and the outputs at the end, also after Ctrl-C or a crash of the coordinator."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import ray
from ray import ObjectRef
from ray.exceptions import GetTimeoutError, RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from bubblescope.actors.coordinator import Coordinator
from bubblescope.cluster.errors import JobConflictError, JobFileError
from bubblescope.cluster.outputs import prepare_store, write_outputs
from bubblescope.cluster.progress import Progress
from bubblescope.cluster.ray_connect import init_ray
from bubblescope.job import ResolvedJob
from bubblescope.metrics.exporter import Exporter, start_exporter  # noqa
from bubblescope.sim.spec import SimDevicesSpec
from bubblescope.store import JobStore

NAMESPACE = "bubblescope"
POLL_S = 0.5
STATS_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class AuditOptions:
    address: str | None = None  # join this Ray cluster; None starts a local one
    metrics_port: int | None = -1  # -1: the job's metrics.port; None: no exporter
    progress: bool = True  # draw a progress bar
    coordinator_restarts: int = 3  # re-creations of a dead coordinator before giving up


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _start_ray(address: str | None) -> bool:
    """Connect to Ray; returns True when this process started (and so must stop) it."""
    if ray.is_initialized():
        return False
    init_ray(address, namespace=NAMESPACE, include_dashboard=False,
             logging_level=logging.WARNING, log_to_driver=True, configure_logging=True)
    return address is None


def _device_cap(job: ResolvedJob, started_here: bool) -> int | None:
    """backend sim: how many device actors fit this machine; adb: None (one per phone)."""
    devices = job.spec.devices
    if not isinstance(devices, SimDevicesSpec):
        return None
    if not started_here or devices.cpus_per_device == 0:
        return devices.count
    cpus = ray.cluster_resources().get("CPU", 1.0) - _policy_cpus(job)
    fits = max(1, math.floor(cpus / devices.cpus_per_device + 1e-9))
    if fits < devices.count:
        _say(f"warning: {devices.count} devices x {devices.cpus_per_device} CPU do not fit in "
             f"this machine's {cpus:g} CPUs; running {fits} at a time")
    return min(fits, devices.count)


def _policy_cpus(job: ResolvedJob) -> float:
    from bubblescope.serve.deploy import policy_cpus

    return policy_cpus(job.agent) if job.agent else 0.0


def _deploy_policy(job: ResolvedJob) -> None:
    """kind agent: start (or update) the policy app on Serve before any device asks it."""
    agent = job.agent
    if agent is None:
        return
    from bubblescope.serve.deploy import deploy_agent

    _say(f"policy: deploying {agent.deployment.app_name} ({agent.engine.kind}: "
         f"{agent.base_model}, {len(agent.adapters)} adapter(s))")
    deploy_agent(agent, list(job.personas.values()))


def _coordinator(job: ResolvedJob, devices: int | None) -> CoordinatorHandle:
    name = f"coordinator-{job.job_id}"
    try:
        ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        pass
    else:
        raise JobConflictError(f"job {job.job_id!r} is already running on this Ray cluster; "
                               "stop it first or pick another --job-id")
    capped = job if devices is None else _with_devices(job, devices)
    # on the driver's node: a worker node that goes down must not take the job's scheduler
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
    return ray.remote(Coordinator).options(name=name, namespace=NAMESPACE, num_cpus=0,
                                           max_concurrency=64,
                                           scheduling_strategy=here).remote(capped)


def _with_devices(job: ResolvedJob, count: int) -> ResolvedJob:
    """The job with `count` simulated device actors."""
    if not isinstance(job.spec.devices, SimDevicesSpec) or job.spec.devices.count == count:
        return job
    devices = job.spec.devices.model_copy(update={"count": count})
    return dataclasses.replace(job, spec=job.spec.model_copy(update={"devices": devices}))


def _exporter(job: ResolvedJob, options: AuditOptions, source) -> Exporter | None:
    port = job.spec.metrics.port if options.metrics_port == -1 else options.metrics_port
    if port is None:
        return None
    try:
        exporter = start_exporter(source, port, job.spec.metrics.host)
    except OSError:
        exporter = start_exporter(source, 0, job.spec.metrics.host)
        _say(f"warning: metrics port {port} is taken; serving metrics on port {exporter.port}")
    return exporter


# A Ray actor handle of a Coordinator; Ray's stubs cannot type calls of its remote methods.
CoordinatorHandle = Any


class _Driver:
    """Keeps a coordinator running the job, re-creating it if it dies."""

    def __init__(self, job: ResolvedJob, devices: int | None, options: AuditOptions) -> None:
        self.job, self.devices, self.options = job, devices, options
        self.latest: dict | None = None
        self.coordinator: CoordinatorHandle | None = None
        self.ref: ObjectRef | None = None

    def start(self) -> None:
        self.coordinator = _coordinator(self.job, self.devices)
        self.ref = self.coordinator.run.remote()

    def poll(self) -> bool:
        """Refresh stats; True once the job has ended."""
        if self.coordinator is None or self.ref is None:
            raise RuntimeError("the driver polls a coordinator it has not started")
        ready, _ = ray.wait([self.ref], timeout=POLL_S)
        if ready:
            self.latest = ray.get(self.ref)
            return True
        try:
            self.latest = ray.get(self.coordinator.stats.remote(), timeout=STATS_TIMEOUT_S)
        except GetTimeoutError:
            _say("warning: the coordinator did not answer for "
                 f"{STATS_TIMEOUT_S:g} s; still waiting")
        return False

    def stop(self) -> None:
        if self.coordinator is None or self.ref is None:
            return
        try:
            self.coordinator.stop.remote()
            self.latest = ray.get(self.ref, timeout=STOP_TIMEOUT_S)
        except (RayActorError, GetTimeoutError) as exc:
            _say(f"warning: the coordinator did not stop cleanly ({type(exc).__name__})")

    def close(self) -> None:
        if self.coordinator is not None:
            ray.kill(self.coordinator)
            self.coordinator = None


def _drive(driver: _Driver, progress: Progress, restarts: int) -> None:
    driver.start()
    failures = 0
    while True:
        try:
            if driver.poll():
                progress.update(driver.latest)
                return
        except RayActorError:
            failures += 1
            if failures > restarts:
                raise
            _say(f"warning: the coordinator died; resuming from the store ({failures}/{restarts})")
            driver.close()
            driver.start()
        progress.update(driver.latest)


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM (`ray job stop`, a scheduler, kill) stops the job as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _open_store(job: ResolvedJob) -> tuple[JobStore, str]:
    """The job's store, recorded or checked; a path that cannot be written is the user's."""
    try:
        store = JobStore(job.storage_path, job.job_id)
    except ValueError as exc:  # pyarrow: not a filesystem URI it knows
        raise JobFileError(f"{job.storage_path} is not a folder or filesystem URI ({exc}); "
                           "fix it or pass --out DIR", source=job.source,
                           key="storage_path") from exc
    try:
        return store, prepare_store(job, store)
    except OSError as exc:
        reason = exc.strerror or str(exc).splitlines()[0]
        raise JobFileError(f"cannot create {store.root} ({reason}); pick a folder you can "
                           "write, or pass --out DIR", source=job.source,
                           key="storage_path") from exc


def run_audit(job: ResolvedJob, options: AuditOptions = AuditOptions()) -> int:
    """Run (or resume) `job`; returns the process exit code."""
    store, state = _open_store(job)
    _say(f"{'resuming' if state == 'resume' else 'starting'} job {job.job_id} -> {store.root}")
    started_here = _start_ray(options.address)
    _deploy_policy(job)
    driver = _Driver(job, _device_cap(job, started_here), options)
    exporter = _exporter(job, options, lambda: driver.latest)
    if exporter is not None:
        _say(f"metrics: http://{job.spec.metrics.host}:{exporter.port}/metrics")
    progress = Progress(enabled=options.progress)
    code = 0
    began = time.monotonic()
    try:
        with _terminate_as_interrupt():
            _drive(driver, progress, options.coordinator_restarts)
        code = 0 if (driver.latest or {}).get("state") == "done" else 1
    except KeyboardInterrupt:
        progress.close()
        _say("interrupted: committing the chunks in flight (Ctrl-C again to abandon them)")
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C abandons the wait
            driver.stop()
        code = 130
    finally:
        progress.close()
        driver.close()
        if exporter is not None:
            exporter.close()
        if started_here:
            ray.shutdown()
    summary = write_outputs(job, store)
    _say(f"{'done' if summary['complete'] else 'partial results'} in "
         f"{time.monotonic() - began:.0f} s: {store.path('report.html')}")
    return code
