"""The job store: append-only parts, checkpoints, and what a crash leaves behind."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bubblescope.contracts import Action, StageLatency, StepRecord
from bubblescope.errors import StorageError
from bubblescope.store import STEP_SCHEMA, JobStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def part(first: int, last: int) -> pa.Table:
    return pa.Table.from_pylist(rows(first, last), schema=STEP_SCHEMA)


def rows(first: int, last: int) -> list[dict]:
    return [StepRecord(
        job_id="j", run_id="r", persona="p", platform="x", experiment="breadth", replicate=0,
        device="d", account="a", phase="breadth", step=i, phase_step=i, device_time=NOW,
        category="Food/Drinks", decided_watch_s=1.0, reversed=False, action=Action(watch_s=1.0),
        latency=StageLatency(), recorded_at=NOW).to_row() for i in range(first, last + 1)]


def test_commit_appends_parts_and_keeps_the_latest_checkpoint(tmp_path) -> None:
    store = JobStore(str(tmp_path), "j")
    assert store.next_step("r") == 0 and store.checkpoint("r") is None
    store.commit("r", part(0, 9), {"next_step": 10})
    store.commit("r", part(10, 14), {"next_step": 15})
    assert store.next_step("r") == 15
    assert store.checkpoint("r") == {"next_step": 15}
    assert [p.name for p in (tmp_path / "j" / "state" / "r").iterdir()] == ["00000015.json"]
    table = store.read_steps()
    assert table.column("step").to_pylist() == list(range(15))
    assert StepRecord.from_row(table.to_pylist()[3]) == StepRecord.from_row(rows(3, 3)[0])


def test_a_crash_between_checkpoint_and_part_resumes_from_the_older_checkpoint(tmp_path) -> None:
    store = JobStore(str(tmp_path), "j")
    store.commit("r", part(0, 9), {"next_step": 10})
    store.write_text("state/r/00000020.json", '{"next_step": 20}')  # part never landed
    assert store.next_step("r") == 10
    assert store.checkpoint("r") == {"next_step": 10}


def test_gaps_are_refused_not_papered_over(tmp_path) -> None:
    store = JobStore(str(tmp_path), "j")
    store.commit("r", part(0, 9), {"next_step": 10})
    store.commit("r", part(10, 19), {"next_step": 20})
    (tmp_path / "j" / "steps" / "r" / "part-00000000-00000009.parquet").unlink()
    with pytest.raises(StorageError, match="do not follow"):
        store.next_step("r")


def test_non_consecutive_rows_are_refused(tmp_path) -> None:
    store = JobStore(str(tmp_path), "j")
    with pytest.raises(StorageError, match="not consecutive"):
        gappy = pa.Table.from_pylist(rows(0, 3) + rows(5, 5), schema=STEP_SCHEMA)
        store.commit("r", gappy, {"next_step": 6})


def test_empty_store_reads_an_empty_table(tmp_path) -> None:
    assert JobStore(str(tmp_path), "j").read_steps().num_rows == 0


def test_store_on_a_uri(tmp_path) -> None:
    store = JobStore(f"file://{tmp_path}", "j")
    store.commit("r", part(0, 4), {"next_step": 5})
    assert JobStore(str(tmp_path), "j").next_step("r") == 5


def test_step_schema_is_the_flattened_step_record() -> None:
    assert list(rows(0, 0)[0]) == STEP_SCHEMA.names


def test_parts_written_before_a_column_existed_still_read(tmp_path) -> None:
    """A job store from before `node`, `performed_*` and `served_*` were recorded: its parts
    read, the new columns null, and the rows still make StepRecords."""
    store = JobStore(str(tmp_path), "j")
    sink = pa.BufferOutputStream()
    older = part(0, 2).drop_columns(["node", "performed_like", "performed_comment",
                                     "performed_share", "served_replica",
                                     "served_adapter_loads", "served_adapter_evictions"])
    pq.write_table(older, sink)  # as the older schema wrote it
    store.write_bytes("steps/r/part-00000000-00000002.parquet", sink.getvalue().to_pybytes())
    table = store.read_steps(["r"])
    assert table.num_rows == 3 and table.column("node").null_count == 3
    record = StepRecord.from_row(table.to_pylist()[0])
    assert record.node is None and not record.performed.like and record.served is None
