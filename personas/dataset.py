"""The session dataset: the one format persona agents are trained from.

    <dataset>/dataset.json                              index: format, version, participants
    <dataset>/<participant>/<session_id>/session.json   one Session (personas.schema), UTC times
    <dataset>/<participant>/<session_id>/media/...      video, audio, UI dumps, when recorded

A session is a folder of its own so that a recorder or an importer adds one without touching
any other session's files. `session.json` is written last and atomically: it is the mark that
a session is complete, so a session whose media are still being written is never read. The
index is regenerated from the folders, never edited in place, so it cannot drift from them.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import Counter
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bubblescope.config_files import read_json, validate
from bubblescope.personas.analyser import QUICK_SKIP_S, analyse
from bubblescope.personas.errors import DatasetError
from bubblescope.personas.schema import Persona, Session, UtcDatetime

FORMAT: Final = "bubblescope-sessions"
VERSION = 1
INDEX_FILE = "dataset.json"
SESSION_FILE = "session.json"
MEDIA_DIR = "media"  # media paths in a session.json are relative to the session folder
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # participant and session folder names


class ParticipantCount(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sessions: int = Field(ge=0, description="session folders with a session.json")
    records: int = Field(ge=0, description="records over those sessions")


class DatasetIndex(BaseModel):
    """dataset.json: what the folder is, and a count of what it holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["bubblescope-sessions"] = Field(description="always bubblescope-sessions")
    version: int = Field(ge=1, le=VERSION, description="format version")
    created: UtcDatetime = Field(description="UTC time the dataset was first written")
    source: str = Field(default="", description="where the sessions came from, in words")
    participants: dict[str, ParticipantCount] = Field(description="participant id -> counts")
    notes: str = Field(default="", description="conventions and caveats of the source")


def _atomic_write(path: Path, text: str) -> None:
    """Temp file + rename in the same folder: a reader sees the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def session_dir(dataset_dir: str | Path, session: Session) -> Path:
    return Path(dataset_dir) / session.collector / session.session_id


def write_session(dataset_dir: str | Path, session: Session, *, update_index: bool = True) -> Path:
    """Write `session` to its own folder; an importer writing many sessions passes
    update_index=False and calls write_index once at the end."""
    for key in ("collector", "session_id"):
        if not SAFE_NAME.match(getattr(session, key)):
            raise DatasetError(f"{getattr(session, key)!r} cannot name a folder (letters, digits,"
                               " _ . - only)", source=str(dataset_dir), key=key)
    path = session_dir(dataset_dir, session) / SESSION_FILE
    _atomic_write(path, session.model_dump_json(indent=1) + "\n")
    if update_index:
        write_index(dataset_dir)
    return path


def session_files(dataset_dir: str | Path) -> list[Path]:
    """Every complete session's session.json, by participant and session folder name."""
    root = Path(dataset_dir)
    return sorted(path for path in root.glob(f"*/*/{SESSION_FILE}")
                  if SAFE_NAME.match(path.parent.name) and SAFE_NAME.match(path.parent.parent.name))


def _counts(dataset_dir: Path) -> dict[str, ParticipantCount]:
    sessions: Counter[str] = Counter()
    records: Counter[str] = Counter()
    for path in session_files(dataset_dir):
        data = read_json(path, DatasetError, "session file")
        participant = path.parent.parent.name
        sessions[participant] += 1
        records[participant] += len(data.get("records", ())) if isinstance(data, dict) else 0
    return {p: ParticipantCount(sessions=sessions[p], records=records[p]) for p in sessions}


def write_index(dataset_dir: str | Path, *, source: str | None = None,
                notes: str | None = None) -> DatasetIndex:
    """Regenerate dataset.json from the folders; `created`, and `source`/`notes` when not
    given, are kept from the old index, so rewriting an unchanged dataset changes no byte."""
    root = Path(dataset_dir)
    old = read_index(root) if (root / INDEX_FILE).exists() else None
    index = DatasetIndex(
        format=FORMAT, version=VERSION,
        created=old.created if old else datetime.now(UTC),
        source=source if source is not None else (old.source if old else ""),
        participants=_counts(root),
        notes=notes if notes is not None else (old.notes if old else ""),
    )
    _atomic_write(root / INDEX_FILE, index.model_dump_json(indent=1) + "\n")
    return index


def read_index(dataset_dir: str | Path) -> DatasetIndex:
    path = Path(dataset_dir) / INDEX_FILE
    if not path.is_file():
        raise DatasetError(f"not a session dataset: no {INDEX_FILE} (make one with "
                           "`bubblescope dataset import-personaact`)", source=str(dataset_dir))
    data = read_json(path, DatasetError, "dataset index")
    if not isinstance(data, dict):
        raise DatasetError("the index holds one JSON object", source=str(path))
    return validate(DatasetIndex, data, DatasetError, str(path))


def read_session(path: str | Path) -> Session:
    """One session.json, validated, and checked against the folders it sits in."""
    path = Path(path)
    data = read_json(path, DatasetError, "session file")
    if not isinstance(data, dict):
        raise DatasetError("a session file holds one JSON object", source=str(path))
    session: Session = validate(Session, data, DatasetError, str(path))
    for key, folder in (("session_id", path.parent.name), ("collector", path.parent.parent.name)):
        if getattr(session, key) != folder:
            raise DatasetError(f"is {getattr(session, key)!r} but the folder is {folder!r}",
                               source=str(path), key=key)
    return session


def read_dataset(dataset_dir: str | Path,
                 participants: Collection[str] | None = None) -> list[Session]:
    """Every session (of `participants`, if given), by participant, then start time."""
    read_index(dataset_dir)
    sessions = [read_session(path) for path in session_files(dataset_dir)
                if participants is None or path.parent.parent.name in participants]
    return sorted(sessions, key=lambda s: (s.collector, s.start_time, s.session_id))


def participant_stats(sessions: Sequence[Session]) -> dict[str, Any]:
    """The numbers `dataset stats` shows for one participant (or for all); unrounded, so a
    table rounds once (rounding twice turns a median of 7.345 into 7.34)."""
    records = [r for s in sessions for r in s.records]
    durations = np.array([r.viewing_duration for r in records], dtype=float)
    likes = sum(r.did("like") for r in records)
    has = bool(records)
    return {
        "sessions": len(sessions), "records": len(records),
        "likes": likes, "like_rate": likes / len(records) if has else None,
        "comments": sum(r.did("comment") for r in records),
        "shares": sum(r.did("share") for r in records),
        "zero_duration": int((durations == 0).sum()),
        "median_s": float(np.median(durations)) if has else None,
        "mean_s": float(durations.mean()) if has else None,
        "quick_skip_rate": float((durations < QUICK_SKIP_S).mean()) if has else None,
        "platforms": dict(sorted(Counter(s.platform for s in sessions).items())),
    }


def dataset_summary(dataset_dir: str | Path) -> dict[str, Any]:
    """The index's header plus statistics per participant and over all of them."""
    index = read_index(dataset_dir)
    sessions = read_dataset(dataset_dir)
    by_participant: dict[str, list[Session]] = {}
    for session in sessions:
        by_participant.setdefault(session.collector, []).append(session)
    return {
        "format": index.format, "version": index.version,
        "created": index.created.isoformat(), "source": index.source,
        "participants": {p: participant_stats(ss) for p, ss in by_participant.items()},
        "all": participant_stats(sessions),
    }


def _percent(rate: float | None, count: int) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}% ({count})"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def summary_table(summary: dict[str, Any]) -> str:
    """`dataset_summary` as the plain-text table `bubblescope dataset stats` prints."""
    rows = [("participant", "sessions", "records", "like rate", "zero s", "median s", "mean s",
             "quick skip", "platforms (sessions)")]
    for name, stats in [*summary["participants"].items(), ("all", summary["all"])]:
        quick = stats["quick_skip_rate"]
        rows.append((
            name, str(stats["sessions"]), str(stats["records"]),
            _percent(stats["like_rate"], stats["likes"]), str(stats["zero_duration"]),
            _number(stats["median_s"]),
            _number(stats["mean_s"]), "-" if quick is None else f"{100 * quick:.1f}%",
            ", ".join(f"{p} ({n})" for p, n in stats["platforms"].items()),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:-1], widths[1:],
                                                                        strict=True)), row[-1]])
        for row in rows)


def persona_from_dataset(dataset_dir: str | Path, participant: str,
                         narrative: str | None = None) -> Persona:
    """A persona carrying the behaviour statistics of one participant's recorded sessions."""
    sessions = read_dataset(dataset_dir, participants={participant})
    records = sum(len(s.records) for s in sessions)
    if not records:
        known = ", ".join(sorted(read_index(dataset_dir).participants)) or "none"
        raise DatasetError(f"participant {participant!r} has no records (participants: {known})",
                           source=str(dataset_dir))
    platforms = sorted({s.platform for s in sessions})
    return Persona(
        id=participant,
        narrative=narrative or (f"Participant {participant} of the session dataset "
                                f"{Path(dataset_dir).resolve().name}, as seen in {records} "
                                f"recorded views over {len(sessions)} sessions."),
        stats=analyse(sessions),
        source={"kind": "dataset", "dataset": str(dataset_dir), "participant": participant,
                "sessions": str(len(sessions)), "records": str(records),
                "platforms": ",".join(platforms)},
    )
