"""The loader: the one place that maps a job's typed specs to concrete classes.

A device by the devices spec's type (the simulated world or phones on adb), a classifier by
the spec's `classifier` (or the served agent's VLM when it classifies), a policy by the
policy spec's type (for the served agent, by its engine's type: our policy app or vLLM).
No other module picks a Device, Policy or Classifier class.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from bubblescope.agent.policy import Policy
from bubblescope.agent.spec import (
    PersonaStatsPolicySpec,
    RandomPolicySpec,
    ServedAgentPolicySpec,
    VllmEngineSpec,
)
from bubblescope.devices.adb_phone import AdbPhone
from bubblescope.devices.device import Device
from bubblescope.devices.spec import AdbDevicesSpec, SpeechSpec
from bubblescope.errors import ConfigError
from bubblescope.job import ResolvedJob
from bubblescope.jobspec import DevicesSpec, PolicySpec
from bubblescope.perception.classifier import Classifier, SimTruthClassifier
from bubblescope.personas.schema import Persona
from bubblescope.sim.catalogue import CatalogueConfig
from bubblescope.sim.in_process_device import InProcessDevice, SimWorld
from bubblescope.sim.spec import SimDevicesSpec

if TYPE_CHECKING:
    from bubblescope.perception.speech import TranscriptPipeline

TINY_WHISPER = Path("~/.cache/bubblescope/tiny-whisper").expanduser()
TINY_WHISPER_TOKENS = 8  # the untrained tiny model never stops early: keep its output short


# -- what the coordinator hands every device actor --------------------------------------------
def world_of(job: ResolvedJob) -> SimWorld:
    """The simulated world of the job: its catalogue and platforms, identical on every actor."""
    world = job.spec.world
    pace = job.spec.devices.sim_pace if isinstance(job.spec.devices, SimDevicesSpec) else None
    return SimWorld(catalogue=CatalogueConfig(seed=job.spec.seed, videos=world.catalogue_videos,
                                              creators=world.creators),
                    profiles=dict(job.profiles), pace=pace)


def devices_of(job: ResolvedJob) -> DevicesSpec:
    """The job's devices spec, checked for what a device needs before any actor starts."""
    devices = job.spec.devices
    if isinstance(devices, AdbDevicesSpec) and devices.adb.scrcpy.server_jar is None:
        raise ConfigError("no scrcpy server file; set devices.adb.scrcpy.server_jar",
                          key="devices.adb.scrcpy.server_jar")
    return devices


def sim_serials(devices: SimDevicesSpec) -> list[str]:
    """One name per in-process device actor; phones on adb come from the farm's registry."""
    return [f"sim-{i}" for i in range(devices.count)]


# -- inside a device actor ----------------------------------------------------------------------
def make_device(serial: str, devices: DevicesSpec, world: SimWorld | None = None) -> Device:
    """The device `serial` of `devices`; backend sim plays in `world` (see `world_of`)."""
    if isinstance(devices, SimDevicesSpec):
        if world is None:
            raise ValueError(f"device {serial}: backend sim needs the job's simulated world")
        return InProcessDevice(serial, world)
    if isinstance(devices, AdbDevicesSpec):
        return AdbPhone(serial, devices.adb, transcriber=make_transcriber(devices.adb.speech))
    raise TypeError(f"no device for a spec of type {type(devices).__name__}")


def make_classifier(device: Device, devices: DevicesSpec, policy: PolicySpec) -> Classifier:
    """The served agent's VLM when it classifies (`policy.agent.classify`), else the devices
    spec's classifier."""
    if isinstance(policy, ServedAgentPolicySpec) and policy.agent.classify:
        from bubblescope.agent.serve_client import VlmClassifier

        return VlmClassifier(policy.agent.deployment.app_name, policy.agent.decide_timeout_s)
    if devices.classifier == "sim-truth":
        return SimTruthClassifier(device.ground_truth)
    if devices.classifier == "text-embedding":
        from bubblescope.perception.text_classifier import TextCategoryClassifier

        return TextCategoryClassifier()
    raise TypeError(f"no classifier named {devices.classifier!r}")


def make_policy(policy: PolicySpec, persona: Persona, seed: int) -> Policy:
    """The policy `policy` names, playing `persona`; baselines draw from `seed`."""
    from bubblescope.agent.baselines import PersonaStatsPolicy, RandomPolicy

    if isinstance(policy, PersonaStatsPolicySpec):
        return PersonaStatsPolicy(persona, seed)
    if isinstance(policy, RandomPolicySpec):
        return RandomPolicy(seed)
    if isinstance(policy, ServedAgentPolicySpec) and isinstance(policy.agent.engine,
                                                                 VllmEngineSpec):
        from bubblescope.agent.vllm_client import VllmPolicy

        return VllmPolicy(policy.agent, persona)
    if isinstance(policy, ServedAgentPolicySpec):
        from bubblescope.agent.serve_client import AgentPolicy

        return AgentPolicy(policy.agent, persona)
    raise TypeError(f"no policy for a spec of type {type(policy).__name__}")


# -- speech -------------------------------------------------------------------------------------
def tiny_whisper(folder: Path = TINY_WHISPER) -> Path:
    """The locally built tiny Whisper (demos and tests), built once per machine; concurrent
    builders each write a temporary copy and the first rename wins."""
    if (folder / "config.json").is_file():
        return folder
    from bubblescope.perception.tiny_whisper import build_tiny_whisper

    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix="tiny-whisper-", dir=folder.parent))
    build_tiny_whisper(temporary)
    try:
        temporary.rename(folder)
    except OSError:  # another process got there first
        shutil.rmtree(temporary, ignore_errors=True)
    return folder


def make_transcriber(speech: SpeechSpec) -> TranscriptPipeline | None:
    """Speech segments (silero-vad) -> recognition (Whisper at a local path) -> transcript."""
    if not speech.enabled:
        return None
    from bubblescope.perception.speech import TranscriptPipeline
    from bubblescope.perception.vad import SpeechSegmenter
    from bubblescope.perception.whisper_asr import WhisperOptions, WhisperRecognizer

    if speech.whisper_path is None:
        recognizer = WhisperRecognizer(tiny_whisper(),
                                       WhisperOptions(max_new_tokens=TINY_WHISPER_TOKENS))
    else:
        recognizer = WhisperRecognizer(speech.whisper_path)
    return TranscriptPipeline(SpeechSegmenter(), recognizer)
