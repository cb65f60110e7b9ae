"""Importing PersonaAct's browsing sessions (github.com/Silung/PersonaAct, `raw_data/`).

The source's clock conventions are mixed, and the dataset's are not, so this is where they are
settled (see data/personaact-sessions/README.md):
- `start_time`/`end_time` are naive local times, UTC+8: converted to UTC;
- a record's `timestamp` (`YYYYMMDDTHHMMSSmmm`) is UTC and marks when the viewer left the
  video, so the view started `viewing_duration` seconds earlier (`started_at`);
- media paths are Windows-style and the media are not shipped: they are kept verbatim in
  `source_paths` and the media fields stay empty. Their file names are times, UTC except in a
  session's first record (local time); nothing here reads times from them.
Sessions without records (2 of collector `c`) are imported as empty sessions, so the dataset
holds every session the source has and the per-collector session counts stay the source's.
Every file is validated before anything is written: a bad file stops the import untouched.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bubblescope.config_files import read_json, validate
from bubblescope.personas.dataset import SAFE_NAME, write_index, write_session
from bubblescope.personas.errors import DatasetError
from bubblescope.personas.schema import Session, TraceAction, TraceRecord

SOURCE_TZ = timezone(timedelta(hours=8))  # the collectors' local time (China Standard Time)
SOURCE = "PersonaAct raw_data (https://github.com/Silung/PersonaAct), MIT licence"
NOTES = (
    "Imported from PersonaAct session JSON. start_time/end_time converted from local time "
    "(UTC+8) to UTC; record timestamps are UTC and mark when the viewer left the video; "
    "started_at = timestamp - viewing_duration. Media were not included: the original "
    "Windows-style paths are kept in source_paths (their file-name times are UTC, except the "
    "first record's video/audio, in local time). Categories are unlabelled. Sessions without "
    "records are kept as empty sessions. Early sessions of collector a have no end_time."
)
_COMPACT_TIME = re.compile(r"^\d{8}T\d{9}$")
_MEDIA_FIELDS = {"xml_path": "ui_dump", "video_path": "video_file", "audio_path": "audio_file"}


class _Source(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SourceAction(_Source):
    type: Literal["like", "comment", "share"]
    text: str | None = None


class _SourceRecord(_Source):
    timestamp: datetime
    actions: list[_SourceAction]
    viewing_duration: float = Field(ge=0)
    xml_path: str | None = None
    video_path: str | None = None
    audio_path: str | None = None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _compact_utc(cls, value: Any) -> datetime:
        if not isinstance(value, str) or not _COMPACT_TIME.match(value):
            raise ValueError(f"{value!r} is not a time in the form YYYYMMDDTHHMMSSmmm")
        try:
            parsed = datetime.strptime(value, "%Y%m%dT%H%M%S%f")
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid time: {exc}") from exc
        return parsed.replace(tzinfo=UTC)


class _SourceSession(_Source):
    session_id: str = Field(pattern=r"^\d{8}_\d{6}$")
    collector: str = Field(pattern=SAFE_NAME.pattern)
    platform: Literal["bilibili", "douyin", "kuaishou", "xiaohongshu"]
    start_time: datetime
    end_time: datetime | None = None
    total_actions: int | None = Field(default=None, ge=0)
    actions: list[_SourceRecord]

    @field_validator("start_time", "end_time")
    @classmethod
    def _local_to_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        local = value if value.tzinfo else value.replace(tzinfo=SOURCE_TZ)
        return local.astimezone(UTC)

    @model_validator(mode="after")
    def _count_matches(self) -> _SourceSession:
        if self.total_actions is not None and self.total_actions != len(self.actions):
            raise ValueError(f"total_actions is {self.total_actions} but actions has "
                             f"{len(self.actions)} records")
        return self


def _record(raw: _SourceRecord, platform: str) -> TraceRecord:
    return TraceRecord(
        timestamp=raw.timestamp,
        started_at=raw.timestamp - timedelta(seconds=raw.viewing_duration),
        viewing_duration=raw.viewing_duration,
        actions=tuple(TraceAction(type=a.type, text=a.text) for a in raw.actions),
        platform=platform,
        source_paths={field: getattr(raw, key) for key, field in _MEDIA_FIELDS.items()
                      if getattr(raw, key)},
    )


def _session(raw: _SourceSession) -> Session:
    return Session(
        session_id=raw.session_id, collector=raw.collector, platform=raw.platform,
        start_time=raw.start_time, end_time=raw.end_time,
        records=tuple(_record(record, raw.platform) for record in raw.actions),
    )


def load_source(path: Path) -> Session:
    """One PersonaAct session file as a dataset Session, or DatasetError naming file and key."""
    data = read_json(path, DatasetError, "PersonaAct session file")
    if not isinstance(data, dict):
        raise DatasetError("a PersonaAct session file holds one JSON object", source=str(path))
    raw: _SourceSession = validate(_SourceSession, data, DatasetError, str(path))
    named = re.fullmatch(r"session_(.+)\.json", path.name)
    if named and named.group(1) != raw.session_id:
        raise DatasetError(f"is {raw.session_id!r} but the file is named for {named.group(1)!r}",
                           source=str(path), key="session_id")
    try:
        return _session(raw)
    except ValueError as exc:  # e.g. end_time before start_time
        raise DatasetError(str(exc).splitlines()[-1].strip(), source=str(path)) from exc


def find_sources(src: Path) -> list[Path]:
    """Session files of `src`: a file, a collector folder, or a root of collector folders."""
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise DatasetError("no such file or folder", source=str(src))
    found = sorted(src.glob("session_*.json")) or sorted(src.glob("*/session_*.json"))
    if not found:
        raise DatasetError("no session_*.json files in it or in its collector folders",
                           source=str(src))
    return found


@dataclass(frozen=True)
class ImportResult:
    sessions: int
    records: int
    participants: tuple[str, ...]
    empty_sessions: tuple[str, ...]  # "<collector>/<session_id>" of sessions without records


def _select(sessions: list[tuple[Path, Session]],
            collectors: Collection[str] | None) -> list[Session]:
    """The sessions of `collectors` (all if none given), each (collector, id) only once."""
    chosen = [(p, s) for p, s in sessions if not collectors or s.collector in collectors]
    missing = sorted(set(collectors or ()) - {s.collector for _, s in chosen})
    if missing:
        raise DatasetError(f"no sessions of collector(s) {', '.join(missing)} in the sources")
    seen: dict[tuple[str, str], Path] = {}
    for path, session in chosen:
        key = (session.collector, session.session_id)
        if key in seen:
            raise DatasetError(f"session {key[0]}/{key[1]} is also in {seen[key]}",
                               source=str(path))
        seen[key] = path
    return [session for _, session in chosen]


def import_personaact(sources: Sequence[str | Path], out: str | Path,
                      collectors: Collection[str] | None = None) -> ImportResult:
    """Convert every session file under `sources` (of `collectors`, if given) into the
    dataset at `out`; sessions already there are overwritten with the same bytes."""
    paths = [path for src in sources for path in find_sources(Path(src))]
    chosen = _select([(path, load_source(path)) for path in paths], collectors)
    for session in chosen:
        write_session(out, session, update_index=False)
    write_index(out, source=SOURCE, notes=NOTES)
    return ImportResult(
        sessions=len(chosen), records=sum(len(s.records) for s in chosen),
        participants=tuple(sorted({s.collector for s in chosen})),
        empty_sessions=tuple(f"{s.collector}/{s.session_id}" for s in chosen if not s.records),
    )
