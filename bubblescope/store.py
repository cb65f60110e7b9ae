"""The job store: everything a job writes, under `<storage_path>/<job_id>/`.

    job.yaml            the resolved job spec
    personas/<id>.yaml  the persona files the job ran with
    steps/<run>/part-<first>-<last>.parquet
                        StepRecords, append-only; each part is written whole or not at all
    state/<run>/<next>.json
                        the run's checkpoint after step next-1 (written before its part)
    summary.json, report.html

Progress is read off the part names alone, so a crash at any instant leaves a store from which
a job resumes without losing or repeating a step. Local folders and any pyarrow filesystem URI
(s3://, gs://) work; on object stores a single PUT is the atomic unit.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from bubblescope.errors import StorageError

_PART = re.compile(r"^part-(\d{8})-(\d{8})\.parquet$")
_UTC_TS = pa.timestamp("us", tz="UTC")

# StepRecord.to_row() flattened; fixed so every part has one schema even when a column is all
# null (tests/unit/test_store.py keeps the two in step)
STEP_SCHEMA = pa.schema([
    ("job_id", pa.string()), ("run_id", pa.string()), ("persona", pa.string()),
    ("platform", pa.string()), ("experiment", pa.string()), ("replicate", pa.int32()),
    ("device", pa.string()), ("node", pa.string()), ("account", pa.string()),
    ("phase", pa.string()),
    ("step", pa.int64()), ("phase_step", pa.int64()), ("device_time", _UTC_TS),
    ("video_id", pa.string()), ("video_duration_s", pa.float64()), ("category", pa.string()),
    ("category_truth", pa.string()), ("decided_watch_s", pa.float64()), ("reversed", pa.bool_()),
    ("recorded_at", _UTC_TS), ("action_watch_s", pa.float64()), ("action_like", pa.bool_()),
    ("action_comment", pa.string()), ("action_share", pa.string()), ("action_raw", pa.string()),
    ("action_format_ok", pa.bool_()), ("performed_like", pa.bool_()),
    ("performed_comment", pa.bool_()), ("performed_share", pa.bool_()),
    ("served_replica", pa.string()), ("served_adapter_loads", pa.int32()),
    ("served_adapter_evictions", pa.int32()),
    ("latency_observe_s", pa.float64()),
    ("latency_decide_s", pa.float64()), ("latency_act_s", pa.float64()),
    ("latency_record_s", pa.float64()),
])


def _filesystem(storage_path: str) -> tuple[pafs.FileSystem, str]:
    if "://" in storage_path:
        return pafs.FileSystem.from_uri(storage_path)
    return pafs.LocalFileSystem(), str(Path(storage_path).expanduser().resolve())


class JobStore:
    def __init__(self, storage_path: str, job_id: str) -> None:
        self.fs, base = _filesystem(storage_path)
        self.job_id = job_id
        self.root = f"{base.rstrip('/')}/{job_id}"
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    # -- plain files -------------------------------------------------------------------
    def write_bytes(self, relative: str, data: bytes) -> None:
        target = self.path(relative)
        self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        if not self.local:  # one PUT is atomic on object stores
            with self.fs.open_output_stream(target) as out:
                out.write(data)
            return
        temporary = f"{target}.{uuid.uuid4().hex}.tmp"
        with self.fs.open_output_stream(temporary) as out:
            out.write(data)
        self.fs.move(temporary, target)

    def write_text(self, relative: str, text: str) -> None:
        self.write_bytes(relative, text.encode("utf-8"))

    def read_text(self, relative: str) -> str | None:
        try:
            with self.fs.open_input_stream(self.path(relative)) as stream:
                return stream.read().decode("utf-8")
        except FileNotFoundError:
            return None

    def exists(self, relative: str = "") -> bool:
        info = self.fs.get_file_info(self.path(relative) if relative else self.root)
        return info.type != pafs.FileType.NotFound

    def _list(self, relative: str) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(self.path(relative), allow_not_found=True)
        return self.fs.get_file_info(selector)

    # -- steps -------------------------------------------------------------------------
    def parts(self, run_id: str) -> list[tuple[int, int, str]]:
        """(first, last, path) of each committed part of a run, in step order, checked."""
        found = []
        for info in self._list(f"steps/{run_id}"):
            match = _PART.match(info.base_name)
            if match:
                found.append((int(match[1]), int(match[2]), info.path))
        found.sort()
        expected = 0
        for first, last, path in found:
            if first != expected or last < first:
                raise StorageError(f"{path}: steps {first}-{last} do not follow step "
                                   f"{expected - 1}; the store was edited by hand or corrupted")
            expected = last + 1
        return found

    def next_step(self, run_id: str) -> int:
        parts = self.parts(run_id)
        return parts[-1][1] + 1 if parts else 0

    def run_ids(self) -> list[str]:
        return sorted(i.base_name for i in self._list("steps") if i.type == pafs.FileType.Directory)

    def commit(self, run_id: str, steps: pa.Table, checkpoint: dict) -> None:
        """Append `steps` (consecutive, from next_step on) and the checkpoint after them."""
        if steps.num_rows == 0:
            return
        numbers = steps.column("step").to_pylist()
        first, last = numbers[0], numbers[-1]
        if numbers != list(range(first, last + 1)):
            raise StorageError(f"run {run_id}: steps {first}-{last} are not consecutive")
        self.write_text(f"state/{run_id}/{last + 1:08d}.json", json.dumps(checkpoint))
        sink = pa.BufferOutputStream()
        pq.write_table(steps.cast(STEP_SCHEMA), sink)
        self.write_bytes(f"steps/{run_id}/part-{first:08d}-{last:08d}.parquet",
                         sink.getvalue().to_pybytes())
        if first > 0:  # the checkpoint these steps started from is superseded
            with contextlib.suppress(FileNotFoundError):
                self.fs.delete_file(self.path("state", run_id, f"{first:08d}.json"))

    def checkpoint(self, run_id: str) -> dict | None:
        """The checkpoint matching the last committed step, None if the run has not started."""
        next_step = self.next_step(run_id)
        if next_step == 0:
            return None
        text = self.read_text(f"state/{run_id}/{next_step:08d}.json")
        if text is None:
            raise StorageError(f"{self.path('state', run_id)}: no checkpoint for step "
                               f"{next_step}; the run cannot resume")
        return json.loads(text)

    def read_steps(self, run_ids: list[str] | None = None) -> pa.Table:
        tables = []
        for run_id in run_ids if run_ids is not None else self.run_ids():
            for _, _, path in self.parts(run_id):
                with self.fs.open_input_file(path) as handle:
                    tables.append(pq.read_table(handle, schema=STEP_SCHEMA))
        if not tables:
            return STEP_SCHEMA.empty_table()
        return pa.concat_tables(tables)
