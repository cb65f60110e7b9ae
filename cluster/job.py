"""Loading a job file into a ResolvedJob: spec, personas and platform profiles, all validated.

Nothing starts until this succeeds; every failure is one line naming file, key and fix.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bubblescope.personas.loader import load_persona
from bubblescope.personas.schema import Persona
from bubblescope.sim.profiles import PlatformProfile, inline_profile, named_profiles

from .errors import JobFileError
from .jobspec import JobSpec


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
                      storage_path: str) -> ResolvedJob:
        """Rebuild a job from its job.yaml and persona files (see `resolved`)."""
        missing = [p for p in data["personas"] if p not in personas]
        if missing:
            raise JobFileError(f"persona files missing for {missing}", source="job.yaml",
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


def _key(loc: tuple) -> str:
    return ".".join(str(part) for part in loc if not str(part).startswith("function-"))


def _first_error(exc: ValidationError, model: type[BaseModel], data: Any) -> tuple[str, str]:
    error = exc.errors()[0]
    key = _key(error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, error["loc"][:-1])
        return key, f"unknown key; allowed here: {', '.join(allowed)}"
    if error["type"] == "missing":
        return key, "required key is missing"
    return key, error["msg"]


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        candidates = [a for a in getattr(annotation, "__args__", (annotation,))
                      if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return []
        model = candidates[0]
    return sorted(model.model_fields)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise JobFileError(f"cannot read job file ({exc.strerror}); check the path",
                           source=str(path)) from exc
    except yaml.YAMLError as exc:
        raise JobFileError(f"not valid YAML: {str(exc).splitlines()[0]}", source=str(path)) from exc
    if not isinstance(data, dict):
        raise JobFileError("a job file holds one mapping of keys", source=str(path))
    return data


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


def _storage_path(value: str, base: Path) -> str:
    if "://" in value:
        return value
    return str((base / Path(value).expanduser()).resolve())


def load_job(path: str | Path, *, job_id: str | None = None,
             storage_path: str | None = None) -> ResolvedJob:
    """Validate the job file and everything it names; raise JobFileError on the first problem."""
    path = Path(path)
    source = str(path)
    data = _read_yaml(path)
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        key, message = _first_error(exc, JobSpec, data)
        raise JobFileError(message, source=source, key=key) from exc
    resolved_id = job_id if job_id is not None else (spec.job_id or path.stem)
    try:
        JobSpec.model_validate({**data, "job_id": resolved_id})
    except ValidationError as exc:
        raise JobFileError("job id may hold letters, digits, '.', '_' and '-' only",
                           source=source, key="job_id") from exc
    base = path.resolve().parent
    return ResolvedJob(
        spec=spec,
        job_id=resolved_id,
        source=str(path.resolve()),
        storage_path=storage_path if storage_path and "://" in storage_path
        else _storage_path(storage_path or spec.storage_path, Path.cwd() if storage_path else base),
        personas=_personas(spec, base, source),
        profiles=_profiles(spec, source),
    )
