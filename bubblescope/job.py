"""The job as it runs: the validated spec with its personas and platform profiles resolved.

`cluster/job.py` builds it from a job file (`load_job`); every part that runs a job (the
coordinator, run planning, the loader, the report) takes it typed from here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from bubblescope.agent.spec import AgentPolicySpec, ServedAgentPolicySpec
from bubblescope.errors import ConfigError
from bubblescope.jobspec import BACKENDS, JobSpec
from bubblescope.personas.schema import Persona
from bubblescope.sim.profiles import PlatformProfile


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
            raise ConfigError(f"persona files missing for {missing}", source=source,
                              key="personas")
        spec = dict(data["spec"])
        spec["devices"] = _devices_as_written(spec.get("devices", {}))
        # ... and the policy's `agent: null` of every kind
        spec["policy"] = {k: v for k, v in spec.get("policy", {}).items() if v is not None}
        return cls(
            spec=JobSpec.model_validate(spec), job_id=data["job_id"],
            source=data.get("source", ""), storage_path=storage_path,
            personas={p: personas[p] for p in data["personas"]},
            profiles={n: PlatformProfile(**d) for n, d in data["platforms"].items()},
        )

    def fingerprint(self) -> str:
        """Hash of everything that decides the results; a resumed job must match it."""
        spec = self.spec.model_dump(mode="json", exclude={"storage_path", "description",
                                                          "metrics", "devices", "job_id"})
        spec.pop("personas")
        # as before the policy union, so results written then still resume
        spec["policy"].setdefault("agent", None)
        agent = spec["policy"]["agent"]
        if agent and agent.get("engine") == {"kind": "transformers"}:
            del agent["engine"]  # as before engines had a choice
        spec["platforms"] = {n: p.model_dump(mode="json") for n, p in self.profiles.items()}
        spec["personas"] = {i: p.model_dump(mode="json") for i, p in self.personas.items()}
        canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def agent(self) -> AgentPolicySpec | None:
        """The served agent's settings (policy kind agent), else None."""
        policy = self.spec.policy
        return policy.agent if isinstance(policy, ServedAgentPolicySpec) else None


def _devices_as_written(devices: dict[str, Any]) -> dict[str, Any]:
    """A job.yaml's devices section in today's shape: results written before the devices
    union dumped every backend's keys (and `classifier: null`); keep the backend's own."""
    model = BACKENDS.get(devices.get("backend", "sim"))
    if model is None:
        return devices
    return {k: v for k, v in devices.items() if k in model.model_fields and v is not None}
