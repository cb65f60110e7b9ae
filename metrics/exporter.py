"""Live export of a job in flight to Prometheus.

The coordinator keeps its running numbers as plain data and hands out a snapshot through
`stats()` (see `metrics.live`). This module turns such a snapshot into Prometheus metric
families at scrape time, so the exporter holds no state of its own: what Prometheus sees is
always the coordinator's latest copy, and nothing here needs to know how the job is run.

Each exporter serves its own `CollectorRegistry`, never the process-wide default one, so two
jobs (or two tests) in one process never see each other's metrics.

Every job metric carries a `job` label holding the job id. The scrape config must therefore
set `honor_labels: true` (deploy/prometheus/prometheus.yml does), or Prometheus renames it to
`exported_job` and the dashboards find nothing.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

__all__ = ["DEVICE_STATES", "JOB_STATES", "RUN_STATES", "Exporter", "StatsCollector",
           "start_exporter"]

Stats = Mapping[str, Any]  # the coordinator's stats(): plain JSON-able data
StatsSource = Callable[[], Mapping[str, Any] | None]

JOB_STATES = ("starting", "running", "stopping", "done", "stopped", "failed")
RUN_STATES = ("pending", "running", "done", "failed", "stopped")
DEVICE_STATES = ("idle", "starting", "running", "restarting", "offline", "failed", "stopped")

_RUN_LABELS = ["job", "run", "persona", "platform", "experiment", "replicate"]
_WINDOW_LABELS = [*_RUN_LABELS, "phase"]
_BEP_LABELS = ["job", "run", "persona", "platform", "replicate"]
_STEP_LABELS = ["job", "persona", "platform", "experiment", "phase"]
_JOIN_TIMEOUT_S = 5.0
_PRESENT_DOC = "1 while a job is in flight; 0, without a job label, before one starts."


class StatsCollector:
    """A custom collector that reads `source()` at every scrape and yields metric families.

    `source` returns the coordinator's `stats()` dict, or None before a job exists; then only
    `bubblescope_job_present 0` is exported. Exceptions raised by `source` propagate, so the
    scrape fails and Prometheus' `up` series shows the coordinator is unreachable.
    """

    def __init__(self, source: StatsSource) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        stats = self._source()
        if stats is None:
            yield GaugeMetricFamily("bubblescope_job_present", _PRESENT_DOC, value=0)
            return
        job = str(stats["job_id"])
        yield from _job_families(job, stats)
        yield from _run_families(job, _as_dict(stats.get("runs")))
        yield _steps_family(job, _as_list(stats.get("steps")))
        yield _latency_family(job, _as_dict(stats.get("latency")))
        yield from _device_families(job, _as_dict(stats.get("devices")))


@dataclass
class Exporter:
    """A running /metrics endpoint; `close()` (or leaving a `with` block) stops it."""

    host: str
    port: int
    _server: WSGIServer = field(repr=False)
    _thread: Thread = field(repr=False)
    _closed: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=_JOIN_TIMEOUT_S)

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def start_exporter(source: StatsSource, port: int, host: str = "127.0.0.1") -> Exporter:
    """Serve `source`'s stats at http://host:port/metrics in a daemon thread.

    `port=0` picks a free port (read it back from `Exporter.port`). A port already in use
    raises `OSError` (errno EADDRINUSE) with a one-line message saying how to pick another.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(source))
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise
        raise OSError(errno.EADDRINUSE,
                      f"metrics port {port} on {host} is already in use; choose another "
                      "(metrics.port in the job file or --metrics-port)") from e
    return Exporter(host=host, port=int(server.server_address[1]), _server=server,
                    _thread=thread)


def _job_families(job: str, stats: Stats) -> Iterator[Metric]:
    runs = _as_dict(stats.get("runs"))
    yield _gauge("bubblescope_job_present", _PRESENT_DOC, ["job"], [([job], 1.0)])
    done = stats.get("steps_done", _sum_runs(runs, "steps_done"))
    planned = stats.get("steps_total", _sum_runs(runs, "steps_total"))
    yield _gauge("bubblescope_job_steps_done", "Steps committed so far in this job.",
                 ["job"], [([job], float(done))])
    yield _gauge("bubblescope_job_steps_planned", "Steps this job will take in all.",
                 ["job"], [([job], float(planned))])
    yield _counter("bubblescope_format_failures_total",
                   "Steps whose policy output did not parse.", ["job"],
                   [([job], float(stats.get("format_failures", 0)))])
    yield from _replica_families(job, _as_dict(stats.get("replicas")))
    if "state" in stats:
        yield _state_set("bubblescope_job_state", "The job's state: 1 for the current one.",
                         [job], ["job"], JOB_STATES, str(stats["state"]))
    yield _gauge("bubblescope_runs", "Runs in each state.", ["job", "state"],
                 [([job, state], float(n)) for state, n in _count_run_states(runs).items()])


Sample = tuple[list[str], float]  # label values, value


def _run_families(job: str, runs: Mapping[str, Mapping]) -> Iterator[Metric]:
    progress: list[Sample] = []
    diversity: list[Sample] = []
    entropy: list[Sample] = []
    bep: list[Sample] = []
    for run_id, run in sorted(runs.items()):
        labels = [job, str(run_id), str(run["persona"]), str(run["platform"]),
                  str(run["experiment"]), str(run["replicate"])]
        progress.append((labels, _ratio(run["steps_done"], run["steps_total"])))
        window = [*labels, str(run.get("phase") or "")]
        _append_known(diversity, window, run.get("window_diversity"))
        _append_known(entropy, window, run.get("window_entropy_bits"))
        _append_known(bep, [labels[0], labels[1], labels[2], labels[3], labels[5]],
                      run.get("running_bep"))
    yield _gauge("bubblescope_run_progress_ratio", "Fraction of its steps a run has taken.",
                 _RUN_LABELS, progress)
    yield _gauge("bubblescope_window_diversity",
                 "Distinct categories in the run's current sliding window.", _WINDOW_LABELS,
                 diversity)
    yield _gauge("bubblescope_window_entropy_bits",
                 "Category entropy (bits) of the run's current sliding window.", _WINDOW_LABELS,
                 entropy)
    yield _gauge("bubblescope_running_bep",
                 "Bubble Escape Potential of a depth run so far (JS divergence, base 2).",
                 _BEP_LABELS, bep)


def _steps_family(job: str, steps: Iterable[Mapping]) -> Metric:
    samples = [([job, str(s["persona"]), str(s["platform"]), str(s["experiment"]),
                 str(s["phase"])], float(s["count"])) for s in steps]
    return _counter("bubblescope_steps_total", "Steps committed, by run kind and phase.",
                    _STEP_LABELS, samples)


def _latency_family(job: str, latency: Mapping[str, Mapping]) -> Metric:
    family = HistogramMetricFamily("bubblescope_step_latency_seconds",
                                   "Time per step spent in each stage; overhead is Ray and "
                                   "coordination time.", labels=["job", "stage"])
    for stage, histogram in sorted(latency.items()):
        family.add_metric([job, str(stage)], _cumulative_buckets(histogram),
                          float(histogram["sum"]))
    return family


def _cumulative_buckets(histogram: Mapping) -> list[tuple[str, float]]:
    """Non-cumulative counts per upper bound (last one +Inf) to Prometheus' `le` buckets."""
    bounds = [floatToGoString(b) for b in histogram["buckets"]] + ["+Inf"]
    counts = list(histogram["counts"])
    if len(counts) != len(bounds):
        raise ValueError(f"latency histogram has {len(counts)} counts for {len(bounds)} "
                         "buckets (+Inf included); they must match")
    cumulative, total = [], 0.0
    for bound, count in zip(bounds, counts, strict=True):
        total += float(count)
        cumulative.append((bound, total))
    return cumulative


def _device_families(job: str, devices: Mapping[str, Mapping]) -> Iterator[Metric]:
    states = GaugeMetricFamily("bubblescope_device_state",
                               "The device's state: 1 for the current one, 0 for the others.",
                               labels=["job", "device", "state"])
    restarts, steps = [], []
    for name, device in sorted(devices.items()):
        current = str(device.get("state", ""))
        for state in DEVICE_STATES:
            states.add_metric([job, str(name), state], 1.0 if state == current else 0.0)
        restarts.append(([job, str(name)], float(device.get("restarts", 0))))
        steps.append(([job, str(name)], float(device.get("steps", 0))))
    yield states
    yield _counter("bubblescope_device_restarts_total", "Times the device was restarted.",
                   ["job", "device"], restarts)
    yield _counter("bubblescope_device_steps_total", "Steps the device has taken.",
                   ["job", "device"], steps)


def _family(kind: type[GaugeMetricFamily] | type[CounterMetricFamily], name: str, doc: str,
            labels: list[str], samples: Iterable[tuple[list[str], float]]):
    family = kind(name, doc, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


def _gauge(name: str, doc: str, labels: list[str],
           samples: Iterable[Sample]) -> GaugeMetricFamily:
    return _family(GaugeMetricFamily, name, doc, labels, samples)


def _replica_families(job: str, replicas: Mapping[str, Any]) -> Iterator[Metric]:
    """The policy replicas that decided this job's steps: decisions and adapter churn."""
    for key, name, doc in (
            ("decisions", "bubblescope_replica_decisions_total",
             "Decisions the policy replica served for this job."),
            ("adapter_loads", "bubblescope_replica_adapter_loads_total",
             "Persona adapters the replica loaded while serving this job."),
            ("adapter_evictions", "bubblescope_replica_adapter_evictions_total",
             "Persona adapters the replica evicted to make room while serving this job.")):
        yield _counter(name, doc, ["job", "replica"],
                       [([job, replica], float(_as_dict(counts).get(key, 0)))
                        for replica, counts in replicas.items()])


def _counter(name: str, doc: str, labels: list[str],
             samples: Iterable[tuple[list[str], float]]) -> CounterMetricFamily:
    return _family(CounterMetricFamily, name, doc, labels, samples)


def _state_set(name: str, doc: str, values: list[str], labels: list[str],
               states: Iterable[str], current: str) -> GaugeMetricFamily:
    return _gauge(name, doc, [*labels, "state"],
                  [([*values, state], 1.0 if state == current else 0.0) for state in states])


def _count_run_states(runs: Mapping[str, Mapping]) -> dict[str, int]:
    counts = dict.fromkeys(RUN_STATES, 0)
    for run in runs.values():
        state = str(run.get("state", "pending"))
        counts[state] = counts.get(state, 0) + 1
    return counts


def _sum_runs(runs: Mapping[str, Mapping], key: str) -> float:
    return float(sum(run.get(key, 0) for run in runs.values()))


def _ratio(done: float, total: float) -> float:
    return float(done) / float(total) if total else 0.0


def _append_known(samples: list[Sample], labels: list[str],
                  value: float | None) -> None:
    if value is not None:
        samples.append((labels, float(value)))


def _as_dict(value: object) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _as_list(value: object) -> list:
    return list(value) if isinstance(value, list | tuple) else []
