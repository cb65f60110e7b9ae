"""Where a persona's training sessions come from, and what each recorded video looked like.

Two sources: a synthetic human's trace in the simulated world (observations rebuilt from the
catalogue, as the simulated app shows them), and a session dataset written by the recorder or
an importer (observations from the UI dump saved with each view: its on-screen text).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

from bubblescope.agent.spec import PromptSpec
from bubblescope.contracts import Observation
from bubblescope.personas.schema import Persona, Session, TraceRecord
from bubblescope.trainer.config import DataSpec
from bubblescope.trainer.dataset import Observer
from bubblescope.trainer.errors import TrainConfigError


@dataclass(frozen=True)
class SessionSource:
    sessions: list[Session]
    observer_for: Callable[[Session], Observer]  # recorded media sit in each session's folder
    description: str


def _source_value(persona: Persona, key: str, given, what: str):
    if given is not None:
        return given
    if persona.source.get("kind") == "synthetic-human" and key in persona.source:
        return persona.source[key]
    raise TrainConfigError(f"persona {persona.id!r} does not come from a synthetic human; "
                           f"set data.{key} ({what})", key=f"data.{key}")


def simulated_source(persona: Persona, data: DataSpec, prompt: PromptSpec) -> SessionSource:
    from bubblescope.sim.catalogue import CatalogueConfig, build_catalogue
    from bubblescope.sim.human import human_names
    from bubblescope.sim.observations import TraceFrames, TraceObserver
    from bubblescope.sim.recruit import record_trace

    human = str(_source_value(persona, "human", data.human, "the synthetic human"))
    seed = int(_source_value(persona, "seed", data.seed, "the trace's seed"))
    if human not in human_names():
        raise TrainConfigError(f"no synthetic human {human!r} (known: "
                               f"{', '.join(human_names())})", key="data.human")
    sessions = record_trace(human, seed=seed, records=data.records)
    observer = TraceObserver(build_catalogue(CatalogueConfig(seed=seed)),
                             TraceFrames(count=prompt.frames))
    return SessionSource(sessions, lambda _session: observer.observe,
                         f"synthetic human {human}, seed {seed}, {data.records} videos")


def _screen_text(folder: Path, record: TraceRecord) -> str:
    if not record.ui_dump:
        return ""
    try:
        root = ElementTree.fromstring((folder / record.ui_dump).read_text("utf-8"))
    except (OSError, ElementTree.ParseError):
        return ""
    texts = (node.get("text") or node.get("content-desc") or "" for node in root.iter("node"))
    return "\n".join(text for text in texts if text.strip())


def recorded_observer(folder: Path) -> Observer:
    """On-screen text from each view's UI dump; frames and speech are not read back yet."""
    def observe(record: TraceRecord) -> Observation:
        started = record.started_at or record.timestamp - timedelta(
            seconds=record.viewing_duration)
        return Observation(device_time=started, on_screen_text=_screen_text(folder, record),
                           video_id=record.video_id, video_duration_s=record.video_duration_s)
    return observe


def dataset_source(persona: Persona, data: DataSpec) -> SessionSource:
    from bubblescope.personas.dataset import read_dataset, session_dir

    participant = data.participant or persona.id
    sessions = read_dataset(data.path, participants={participant})
    if not sessions:
        raise TrainConfigError(f"dataset {data.path} has no sessions of participant "
                               f"{participant!r}; set data.participant", key="data.participant")
    return SessionSource(sessions, lambda session: recorded_observer(
        session_dir(data.path, session)), f"dataset {data.path}, participant {participant}")


def session_source(persona: Persona, data: DataSpec, prompt: PromptSpec) -> SessionSource:
    if data.source == "simulated":
        return simulated_source(persona, data, prompt)
    return dataset_source(persona, data)
