"""The session dataset and the PersonaAct importer, held to the source README's own table
(data/personaact-sessions/README.md) and to the paper's Table 1."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bubblescope.cluster.cli import main
from bubblescope.personas.dataset import (
    INDEX_FILE,
    dataset_summary,
    read_dataset,
    session_files,
    write_session,
)
from bubblescope.personas.errors import DatasetError
from bubblescope.personas.import_personaact import load_source
from bubblescope.personas.loader import load_persona

SOURCE = Path(__file__).resolve().parents[2] / "data" / "personaact-sessions"

# README table: sessions, records, likes, like rate as printed, zero-duration records,
# median and mean viewing_duration (s), platforms (sessions)
README = {
    "P01": (13, 386, 93, "24.1%", 0, 2.17, 25.68,
            {"bilibili": 2, "douyin": 7, "xiaohongshu": 4}),
    "P02": (4, 389, 1, "0.3%", 0, 2.09, 22.59, {"bilibili": 1, "douyin": 2, "kuaishou": 1}),
    "P03": (8, 334, 79, "23.7%", 0, 1.88, 17.72, {"bilibili": 1, "douyin": 5, "kuaishou": 2}),
    "P04": (8, 319, 0, "0.0%", 0, 1.76, 25.31, {"bilibili": 3, "douyin": 3, "kuaishou": 2}),
    "P05": (7, 617, 0, "0.0%", 0, 2.28, 9.15,
            {"bilibili": 4, "douyin": 1, "kuaishou": 1, "xiaohongshu": 1}),
    "a": (8, 939, 58, "6.2%", 3, 4.95, 7.79, {"douyin": 8}),
    "b": (19, 780, 54, "6.9%", 0, 7.35, 21.91, {"bilibili": 16, "douyin": 3}),
    "c": (19, 722, 44, "6.1%", 0, 15.57, 42.65, {"bilibili": 1, "douyin": 18}),
}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("personaact")
    assert main(["dataset", "import-personaact", str(SOURCE), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def summary(dataset: Path) -> dict:
    return dataset_summary(dataset)


def test_every_session_file_becomes_a_session(dataset: Path) -> None:
    assert len(list(SOURCE.glob("*/session_*.json"))) == 86
    assert len(session_files(dataset)) == 86
    index = json.loads((dataset / INDEX_FILE).read_text("utf-8"))
    assert index["format"] == "bubblescope-sessions" and index["version"] == 1
    assert sum(p["records"] for p in index["participants"].values()) == 4486
    assert {p: c["records"] for p, c in index["participants"].items()} == {
        p: row[1] for p, row in README.items()}


@pytest.mark.parametrize("collector", sorted(README))
def test_per_collector_statistics_are_the_readme_table(summary: dict, collector: str) -> None:
    sessions, records, likes, like_pct, zeros, median, mean, platforms = README[collector]
    stats = summary["participants"][collector]
    assert (stats["sessions"], stats["records"], stats["likes"]) == (sessions, records, likes)
    assert f"{100 * stats['like_rate']:.1f}%" == like_pct
    assert stats["zero_duration"] == zeros
    assert (round(stats["median_s"], 2), round(stats["mean_s"], 2)) == (median, mean)
    assert stats["platforms"] == platforms


def test_all_collectors_together(summary: dict) -> None:
    total = summary["all"]
    assert (total["sessions"], total["records"], total["likes"]) == (86, 4486, 329)
    assert (total["comments"], total["shares"], total["zero_duration"]) == (3, 5, 3)
    assert (round(total["median_s"], 2), round(total["mean_s"], 2)) == (4.93, 20.85)
    assert total["platforms"] == {"bilibili": 28, "douyin": 47, "kuaishou": 6, "xiaohongshu": 5}


def test_the_papers_table_1(summary: dict) -> None:
    a, b = summary["participants"]["a"], summary["participants"]["b"]
    assert (a["records"], round(a["mean_s"], 1), round(a["median_s"], 1)) == (939, 7.8, 5.0)
    assert (b["records"], round(b["mean_s"], 1), round(b["median_s"], 1)) == (780, 21.9, 7.3)


def test_times_are_utc_and_views_start_before_they_end(dataset: Path) -> None:
    for session in read_dataset(dataset):
        assert session.start_time.utcoffset() == timedelta(0)
        assert session.end_time is None or session.end_time.utcoffset() == timedelta(0)
        for record in session.records:
            assert record.timestamp.utcoffset() == timedelta(0)
            assert record.started_at is not None and record.started_at <= record.timestamp
            assert record.platform == session.platform and record.category is None


def test_session_times_move_from_local_to_utc(dataset: Path) -> None:
    by_key = {(s.collector, s.session_id): s for s in read_dataset(dataset)}
    missing_end = 0
    for path in SOURCE.glob("*/session_*.json"):
        raw = json.loads(path.read_text("utf-8"))
        session = by_key[(raw["collector"], raw["session_id"])]
        local = datetime.fromisoformat(raw["start_time"]).replace(tzinfo=UTC)
        assert session.start_time == local - timedelta(hours=8)
        if "end_time" in raw:
            end = datetime.fromisoformat(raw["end_time"]).replace(tzinfo=UTC)
            assert session.end_time == end - timedelta(hours=8)
        else:
            missing_end += 1
            assert session.end_time is None and raw["collector"] == "a"
    assert missing_end == 5


def test_record_timestamps_stay_utc_and_media_paths_stay_verbatim(dataset: Path) -> None:
    session = next(s for s in read_dataset(dataset, {"a"}) if s.session_id == "20251125_165859")
    first = session.records[0]
    assert first.timestamp == datetime(2025, 11, 25, 8, 59, 17, 999000, tzinfo=UTC)
    assert first.started_at == first.timestamp - timedelta(seconds=18.84)
    assert first.source_paths["video_file"] == "raw_data\\a\\videos\\20251125T165859160.mp4"
    assert (first.video_file, first.audio_file, first.ui_dump) == (None, None, None)


def test_started_at_agrees_with_the_video_file_name_local_only_in_the_first_record(
        dataset: Path) -> None:
    """The README's clock quirk, checked rather than trusted: file-name times are UTC except
    in a session's first record, where they are local (UTC+8)."""
    for session in read_dataset(dataset):
        for i, record in enumerate(session.records):
            video = record.source_paths.get("video_file")
            if video is None:
                continue
            stamp = re.search(r"(\d{8}T\d{9})\.mp4$", video).group(1)
            named = datetime.strptime(stamp, "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
            named -= timedelta(hours=8 if i == 0 else 0)
            assert abs((named - record.started_at).total_seconds()) < 0.5


def test_quirky_records_and_empty_sessions_are_kept(dataset: Path) -> None:
    a = [r for s in read_dataset(dataset, {"a"}) for r in s.records]
    silent = [r for r in a if r.viewing_duration == 0.0 and "video_file" not in r.source_paths]
    assert len(silent) == 3 and all("audio_file" not in r.source_paths for r in silent)
    empty = [s for s in read_dataset(dataset) if not s.records]
    assert len(empty) == 2 and {s.collector for s in empty} == {"c"}


def test_dataset_round_trips_the_source(dataset: Path) -> None:
    loaded = sorted((load_source(p) for p in SOURCE.glob("*/session_*.json")),
                    key=lambda s: (s.collector, s.start_time, s.session_id))
    assert read_dataset(dataset) == loaded


def test_stats_command(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "dataset", "stats", str(dataset))
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["a"][1:9] == ["8", "939", "6.2%", "(58)", "3", "4.95", "7.79", "28.3%"]
    assert rows["b"][1:8] == ["19", "780", "6.9%", "(54)", "0", "7.35", "21.91"]
    assert rows["all"][1:3] == ["86", "4486"]
    code, out, _ = _run(capsys, "dataset", "stats", str(dataset), "--json")
    assert code == 0 and json.loads(out)["participants"]["c"]["records"] == 722


def test_persona_from_dataset(dataset: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a.yaml"
    code, printed, _ = _run(capsys, "persona", "from-dataset", str(dataset),
                            "--participant", "a", "--out", str(out))
    assert code == 0 and "939 records" in printed
    persona = load_persona(out)
    assert persona.id == "a" and len(persona.stats.duration_sample) == 939
    assert persona.stats.n_sessions == 8 and persona.stats.categories == {}
    assert persona.stats.duration.median == 4.95 and "939" in persona.narrative
    assert persona.source["kind"] == "dataset" and persona.source["participant"] == "a"
    code, _, err = _run(capsys, "persona", "from-dataset", str(dataset), "--participant", "zz",
                        "--out", str(tmp_path / "zz.yaml"), "--narrative", "x")
    assert code == 2 and "'zz'" in err and len(err.strip().splitlines()) == 1


def test_reimport_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ds"
    argv = ("dataset", "import-personaact", str(SOURCE / "b"), "--out", str(out))
    assert _run(capsys, *argv)[0] == 0
    before = _snapshot(out)
    assert _run(capsys, *argv)[0] == 0
    assert _snapshot(out) == before and len(before) == 20  # 19 sessions + dataset.json


def test_collectors_can_be_picked_and_added_one_by_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ds"
    assert _run(capsys, "dataset", "import-personaact", str(SOURCE), "--out", str(out),
                "--collector", "a")[0] == 0
    a_files = _snapshot(out / "a")
    code, printed, _ = _run(capsys, "dataset", "import-personaact",
                            *map(str, sorted((SOURCE / "c").glob("*.json"))), "--out", str(out))
    assert code == 0 and "2 without records" in printed
    assert _snapshot(out / "a") == a_files
    index = json.loads((out / INDEX_FILE).read_text("utf-8"))
    assert index["participants"] == {"a": {"sessions": 8, "records": 939},
                                     "c": {"sessions": 19, "records": 722}}
    code, _, err = _run(capsys, "dataset", "import-personaact", str(SOURCE), "--out", str(out),
                        "--collector", "nobody")
    assert code == 2 and "nobody" in err


def _broken_source(tmp_path: Path, edit) -> Path:
    src = tmp_path / "src" / "a"
    shutil.copytree(SOURCE / "a", src)
    path = max(sorted(src.glob("session_*.json")), key=lambda p: p.stat().st_size)
    data = json.loads(path.read_text("utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(("edit", "key"), [
    (lambda d: d.pop("actions"), "actions: required key is missing"),
    (lambda d: d["actions"][4].update(timestamp="2025-11-25 08:59"), "actions.4.timestamp"),
    (lambda d: d["actions"][1].update(actions=[{"type": "dislike"}]), "actions.1.actions.0.type"),
    (lambda d: d.update(platform="youtube"), "platform"),
    (lambda d: d.update(total_actions=1), "total_actions is 1"),
])
def test_a_malformed_source_file_stops_the_import(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], edit, key: str) -> None:
    path = _broken_source(tmp_path, edit)
    out = tmp_path / "out"
    code, _, err = _run(capsys, "dataset", "import-personaact", str(path.parent), "--out", str(out))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert str(path) in err and key in err
    assert not out.exists()  # every file is checked before anything is written


def test_a_source_that_is_not_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "session_20250101_000000.json"
    bad.write_text("{ not json", encoding="utf-8")
    code, _, err = _run(capsys, "dataset", "import-personaact", str(bad), "--out",
                        str(tmp_path / "out"))
    assert code == 2 and str(bad) in err and "not valid JSON" in err
    code, _, err = _run(capsys, "dataset", "import-personaact", str(tmp_path / "nowhere"),
                        "--out", str(tmp_path / "out"))
    assert code == 2 and "no such file or folder" in err


def test_read_dataset_rejects_an_unknown_key(dataset: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    path = session_files(copy)[0]
    data = json.loads(path.read_text("utf-8"))
    data["records"][0]["mood"] = "happy"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DatasetError) as caught:
        read_dataset(copy)
    message = str(caught.value)
    assert str(path) in message and "records.0.mood: unknown key" in message
    assert "\n" not in message
    code, _, err = _run(capsys, "dataset", "stats", str(copy))
    assert code == 2 and "records.0.mood" in err


def test_read_dataset_rejects_times_without_a_zone(dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    path = session_files(copy)[0]
    data = json.loads(path.read_text("utf-8"))
    data["start_time"] = data["start_time"].rstrip("Z")
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DatasetError, match="start_time"):
        read_dataset(copy)


def test_adding_a_session_touches_no_other(dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    before = _snapshot(copy)
    session = read_dataset(copy, {"b"})[0]
    new = session.model_copy(update={"collector": "d", "session_id": "20260101_000000"})
    written = write_session(copy, new)
    after = _snapshot(copy)
    assert written.relative_to(copy).parts == ("d", "20260101_000000", "session.json")
    assert {k: v for k, v in after.items() if k.startswith(("a/", "b/", "c/", "P"))} == {
        k: v for k, v in before.items() if k != INDEX_FILE}
    index = json.loads(after[INDEX_FILE])
    assert index["participants"]["d"] == {"sessions": 1, "records": len(session.records)}
    assert index["created"] == json.loads(before[INDEX_FILE])["created"]
    with pytest.raises(DatasetError, match="cannot name a folder"):
        write_session(copy, new.model_copy(update={"session_id": "../escape"}))
