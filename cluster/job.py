"""Loading a job file into a ResolvedJob: spec, personas and platform profiles, all validated.

Nothing starts until this succeeds; every failure is one line naming file, key and fix.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bubblescope.cluster.errors import JobFileError
from bubblescope.config_files import read_mapping, validate
from bubblescope.jobspec import JOB_ID_PATTERN, JobSpec
from bubblescope.personas.loader import load_persona
from bubblescope.personas.schema import Persona
from bubblescope.sim.profiles import PlatformProfile, inline_profile, named_profiles


@dataclass(frozen=True)
class ResolvedJob:
    spec: JobSpec
    job_id: str
    source: str  # the job file
    storage_path: str  # absolute folder or URI
    personas: dict[str, Persona]
    profiles: dict[str, PlatformProfile]  # the job's platforms, in job order

    def resolved(self) -> dict[str, Any]:
        """The job as it runs, for job.yaml: spec, resolved platforms, persona ids."""
        return {
            "job_id": self.job_id,
            "fingerprint": self.fingerprint(),
            "source": self.source,
            "storage_path": self.storage_path,
            "spec": self.spec.model_dump(mode="json"),
            "platforms": {n: p.model_dump(mode="json") for n, p in self.profiles.items()},
            "personas": list(self.personas),
        }

    @classmethod
    def from_resolved(cls, data: dict[str, Any], personas: dict[str, Persona],
                      storage_path: str, source: str = "job.yaml") -> ResolvedJob:
        """Rebuild a job from its job.yaml (`source`) and persona files (see `resolved`)."""
        missing = [p for p in data["personas"] if p not in personas]
        if missing:
            raise JobFileError(f"persona files missing for {missing}", source=source,
                               key="personas")
        return cls(
            spec=JobSpec.model_validate(data["spec"]), job_id=data["job_id"],
            source=data.get("source", ""), storage_path=storage_path,
            personas={p: personas[p] for p in data["personas"]},
            profiles={n: PlatformProfile(**d) for n, d in data["platforms"].items()},
        )

    def fingerprint(self) -> str:
        """Hash of everything that decides the results; a resumed job must match it."""
        spec = self.spec.model_dump(mode="json", exclude={"storage_path", "description",
                                                          "metrics", "devices", "job_id"})
        spec.pop("personas")
        spec["platforms"] = {n: p.model_dump(mode="json") for n, p in self.profiles.items()}
        spec["personas"] = {i: p.model_dump(mode="json") for i, p in self.personas.items()}
        canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _personas(spec: JobSpec, base: Path, source: str) -> dict[str, Persona]:
    personas: dict[str, Persona] = {}
    for index, entry in enumerate(spec.personas):
        path = (base / entry).resolve()
        if not path.is_file():
            raise JobFileError(f"persona file {path} does not exist; fix the path",
                               source=source, key=f"personas.{index}")
        persona = load_persona(path)
        if persona.id in personas:
            raise JobFileError(f"persona id {persona.id!r} appears twice",
                               source=source, key=f"personas.{index}")
        personas[persona.id] = persona
    return personas


def _profiles(spec: JobSpec, source: str) -> dict[str, PlatformProfile]:
    named = named_profiles()
    profiles: dict[str, PlatformProfile] = {}
    for index, entry in enumerate(spec.platforms):
        if isinstance(entry, str):
            if entry not in named:
                raise JobFileError(f"no platform named {entry!r}; use one of {sorted(named)} "
                                   "or define it inline", source=source, key=f"platforms.{index}")
            profile = named[entry]
        else:
            profile = inline_profile(entry, source)
        if profile.name in profiles:
            raise JobFileError(f"platform {profile.name!r} appears twice",
                               source=source, key=f"platforms.{index}")
        profiles[profile.name] = profile
    return profiles


SCRCPY_SERVER_LOCATIONS = ("/usr/share/scrcpy/scrcpy-server",
                           "/usr/local/share/scrcpy/scrcpy-server",
                           "~/.local/share/bubblescope/scrcpy-server")


def _resolve_device_files(spec: JobSpec, base: Path, source: str) -> JobSpec:
    """backend adb: the scrcpy server file and the Whisper folder, as absolute paths."""
    if spec.devices.backend != "adb":
        return spec
    adb = spec.devices.adb
    key = "devices.adb.scrcpy.server_jar"
    if adb.scrcpy.server_jar is not None:
        jar = (base / Path(adb.scrcpy.server_jar).expanduser()).resolve()
        if not jar.is_file():
            raise JobFileError(f"scrcpy server file {jar} does not exist", source=source, key=key)
    else:
        found = [Path(p).expanduser() for p in SCRCPY_SERVER_LOCATIONS
                 if Path(p).expanduser().is_file()]
        if not found:
            raise JobFileError("no scrcpy server file found in "
                               f"{', '.join(SCRCPY_SERVER_LOCATIONS)}; set it here "
                               "(or run `bubblescope farm up`, which writes the virtual one)",
                               source=source, key=key)
        jar = found[0]
    whisper = adb.speech.whisper_path
    if whisper is not None:
        folder = (base / Path(whisper).expanduser()).resolve()
        if not (folder / "config.json").is_file():
            raise JobFileError(f"{folder} holds no Whisper checkpoint (config.json missing)",
                               source=source, key="devices.adb.speech.whisper_path")
        whisper = str(folder)
    scrcpy = adb.scrcpy.model_copy(update={"server_jar": str(jar)})
    speech = adb.speech.model_copy(update={"whisper_path": whisper})
    adb = adb.model_copy(update={"scrcpy": scrcpy, "speech": speech})
    return spec.model_copy(update={"devices": spec.devices.model_copy(update={"adb": adb})})


def _resolve_agent(spec: JobSpec, base: Path, source: str,
                   personas: dict[str, Persona]) -> JobSpec:
    """kind agent: base model and adapters as absolute paths, checked before anything runs."""
    agent = spec.policy.agent
    if agent is None:
        return spec
    from bubblescope.agent.adapters import check_adapter
    from bubblescope.agent.errors import AgentError
    from bubblescope.agent.vlm import check_model_dir

    def absolute(value: str) -> str:
        return str((base / Path(value).expanduser()).resolve())

    adapters = {pid: absolute(path) for pid, path in agent.adapters.items()}
    try:
        check_model_dir(absolute(agent.base_model))
        for pid, path in adapters.items():
            check_adapter(path, pid)
    except AgentError as error:
        raise JobFileError(str(error), source=source, key="policy.agent") from error
    strangers = sorted(set(adapters) - set(personas))
    if strangers:
        raise JobFileError(f"adapters for personas not in this job: {strangers}",
                           source=source, key="policy.agent.adapters")
    agent = agent.model_copy(update={"base_model": absolute(agent.base_model),
                                     "adapters": adapters})
    return spec.model_copy(update={"policy": spec.policy.model_copy(update={"agent": agent})})


def _storage_path(value: str, base: Path) -> str:
    if "://" in value:
        return value
    return str((base / Path(value).expanduser()).resolve())


def _check_window(spec: JobSpec, source: str) -> None:
    """The sliding window must fit in a phase, or every diversity comes out empty."""
    depth, breadth = spec.experiments.depth, spec.experiments.breadth
    phases = {}
    if depth is not None:
        phases["experiments.depth.cultivation_steps"] = depth.cultivation_steps
        phases["experiments.depth.counterfactual_steps"] = depth.counterfactual_steps
    if breadth is not None:
        phases["experiments.breadth.steps"] = breadth.steps
    longest = max(phases, key=phases.__getitem__)
    if spec.window > phases[longest]:
        raise JobFileError(f"{spec.window} videos is longer than every phase (the longest, "
                           f"{longest}, has {phases[longest]}), so diversity would come out "
                           f"empty; make it at most {phases[longest]}", source=source,
                           key="window")


def load_job(path: str | Path, *, job_id: str | None = None,
             storage_path: str | None = None) -> ResolvedJob:
    """Validate the job file and everything it names; raise JobFileError on the first problem."""
    path = Path(path)
    source = str(path)
    data = read_mapping(path, JobFileError, "job file")
    spec = validate(JobSpec, data, JobFileError, source)
    _check_window(spec, source)
    resolved_id = job_id if job_id is not None else (spec.job_id or path.stem)
    if not re.match(JOB_ID_PATTERN, resolved_id):
        raise JobFileError(f"job id {resolved_id!r} may hold letters, digits, '.', '_' and '-' "
                           "only", source=source, key="job_id")
    base = path.resolve().parent
    spec = _resolve_device_files(spec, base, source)
    # --out is relative to where the user stands; storage_path to the job file
    storage = _storage_path(storage_path, Path.cwd()) if storage_path \
        else _storage_path(spec.storage_path, base)
    personas = _personas(spec, base, source)
    spec = _resolve_agent(spec, base, source, personas)
    return ResolvedJob(
        spec=spec,
        job_id=resolved_id,
        source=str(path.resolve()),
        storage_path=storage,
        personas=personas,
        profiles=_profiles(spec, source),
    )
