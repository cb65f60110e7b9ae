"""Loading a job file into a ResolvedJob: spec, personas and platform profiles, all validated.

Nothing starts until this succeeds; every failure is one line naming file, key and fix.
"""

from __future__ import annotations

import re
from pathlib import Path

from bubblescope.agent.spec import PromptSpec, ServedAgentPolicySpec
from bubblescope.cluster.errors import JobFileError
from bubblescope.config_files import read_mapping, validate
from bubblescope.devices.spec import AdbDevicesSpec
from bubblescope.job import ResolvedJob
from bubblescope.jobspec import JOB_ID_PATTERN, JobSpec
from bubblescope.personas.loader import load_persona
from bubblescope.personas.schema import Persona
from bubblescope.sim.profiles import PlatformProfile, inline_profile, named_profiles

__all__ = ["ResolvedJob", "load_job"]


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
    devices = spec.devices
    if not isinstance(devices, AdbDevicesSpec):
        return spec
    adb = devices.adb
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
    accounts = devices.accounts
    if accounts is not None:
        accounts = str((base / Path(accounts).expanduser()).resolve())
        if not Path(accounts).is_file():
            raise JobFileError(f"account file {accounts} does not exist; write it (see "
                               "`bubblescope accounts add`) or drop the key", source=source,
                               key="devices.accounts")
    return spec.model_copy(update={"devices": devices.model_copy(
        update={"adb": adb, "accounts": accounts})})


def _check_prompts(adapters: dict[str, str], prompt: PromptSpec, source: str) -> None:
    """Every adapter is served with the prompt it was trained on (its manifest says which)."""
    from bubblescope.agent.adapters import check_prompt
    from bubblescope.agent.errors import AgentError

    try:
        for pid, path in adapters.items():
            check_prompt(path, pid, prompt)
    except AgentError as error:
        raise JobFileError(str(error), source=source, key="policy.agent.prompt") from error


def _resolve_agent(spec: JobSpec, base: Path, source: str,
                   personas: dict[str, Persona], check_files: bool = True) -> JobSpec:
    """kind agent: base model and adapters as absolute paths, checked before anything runs
    (unless `check_files` is off: they live on other machines, e.g. a Kubernetes volume)."""
    policy = spec.policy
    if not isinstance(policy, ServedAgentPolicySpec):
        return spec
    agent = policy.agent
    from bubblescope.agent.adapters import check_adapter
    from bubblescope.agent.errors import AgentError
    from bubblescope.agent.vlm import check_model_dir

    def absolute(value: str) -> str:
        return str((base / Path(value).expanduser()).resolve())

    adapters = {pid: absolute(path) for pid, path in agent.adapters.items()}
    try:
        if check_files:
            check_model_dir(absolute(agent.base_model))
            for pid, path in adapters.items():
                check_adapter(path, pid)
    except AgentError as error:
        raise JobFileError(str(error), source=source, key="policy.agent") from error
    strangers = sorted(set(adapters) - set(personas))
    if strangers:
        raise JobFileError(f"adapters for personas not in this job: {strangers}",
                           source=source, key="policy.agent.adapters")
    if check_files:
        _check_prompts(adapters, agent.prompt, source)
    agent = agent.model_copy(update={"base_model": absolute(agent.base_model),
                                     "adapters": adapters})
    return spec.model_copy(update={"policy": policy.model_copy(update={"agent": agent})})


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
             storage_path: str | None = None, check_model_files: bool = True) -> ResolvedJob:
    """Validate the job file and everything it names; raise JobFileError on the first problem.
    `check_model_files=False` leaves the agent's model and adapter folders unchecked, for
    describing a deployment elsewhere (cluster/k8s_render.py); whatever loads them checks them."""
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
    spec = _resolve_agent(spec, base, source, personas, check_model_files)
    return ResolvedJob(
        spec=spec,
        job_id=resolved_id,
        source=str(path.resolve()),
        storage_path=storage,
        personas=personas,
        profiles=_profiles(spec, source),
    )
