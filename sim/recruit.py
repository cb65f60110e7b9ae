"""Recruiting a synthetic human as an audit persona: record their trace, analyse it.

The persona sees only the trace (what a real participant's recording would give), never the
human's hidden interests.
"""

from __future__ import annotations

from bubblescope.personas.analyser import analyse
from bubblescope.personas.schema import Persona, Session
from bubblescope.sim.catalogue import CatalogueConfig, build_catalogue
from bubblescope.sim.human import HumanSpec, SyntheticHuman, human_spec
from bubblescope.sim.platform import Platform
from bubblescope.sim.profiles import named_profiles
from bubblescope.sim.traces import browse
from bubblescope.taxonomy import load_taxonomy

DEFAULT_RECORDS = {"a": 939, "b": 780}  # records in the real trace each human is fitted to


def record_trace(name: str, *, seed: int = 0, records: int | None = None,
                 catalogue: CatalogueConfig | None = None) -> list[Session]:
    return record_trace_with(human_spec(name), seed=seed, records=records, catalogue=catalogue)


def record_trace_with(spec: HumanSpec, *, seed: int = 0, records: int | None = None,
                      catalogue: CatalogueConfig | None = None) -> list[Session]:
    """`spec`'s human browsing a fresh account on their home platform."""
    human = SyntheticHuman(spec, load_taxonomy(), seed)
    platform = Platform(named_profiles()[spec.home_platform],
                        build_catalogue(catalogue or CatalogueConfig(seed=seed)))
    count = records or DEFAULT_RECORDS.get(spec.calibrated_on or "", 800)
    return browse(human, platform, records=count, seed=seed, collector=spec.name)


def persona_from_human(name: str, *, seed: int = 0, records: int | None = None) -> Persona:
    spec = human_spec(name)
    sessions = record_trace(name, seed=seed, records=records)
    return Persona(
        id=name,
        narrative=spec.narrative,
        traits=spec.traits,
        stats=analyse(sessions),
        source={"kind": "synthetic-human", "human": name, "seed": str(seed),
                "platform": spec.home_platform, "calibrated_on": spec.calibrated_on or ""},
    )
