"""The loader picks each concrete device, classifier and policy class from the spec's type."""

from __future__ import annotations

from pathlib import Path

import pytest

from bubblescope.actors.loader import make_classifier, make_device, make_policy
from bubblescope.agent.baselines import PersonaStatsPolicy, RandomPolicy
from bubblescope.agent.serve_client import AgentPolicy, VlmClassifier
from bubblescope.agent.spec import (
    AgentPolicySpec,
    PersonaStatsPolicySpec,
    RandomPolicySpec,
    ServedAgentPolicySpec,
)
from bubblescope.devices.adb_phone import AdbPhone
from bubblescope.devices.device import Device
from bubblescope.devices.spec import AdbDevicesSpec
from bubblescope.perception.classifier import SimTruthClassifier
from bubblescope.perception.text_classifier import TextCategoryClassifier
from bubblescope.personas.loader import load_persona
from bubblescope.sim.catalogue import CatalogueConfig
from bubblescope.sim.in_process_device import InProcessDevice, SimWorld
from bubblescope.sim.spec import SimDevicesSpec

PERSONA = load_persona(Path(__file__).resolve().parents[2] / "examples" / "personas"
                       / "concentrated.yaml")
SIM = SimDevicesSpec()
ADB = AdbDevicesSpec.model_validate({"backend": "adb", "adb": {"speech": {"enabled": False}}})
AGENT = AgentPolicySpec(base_model="m")


@pytest.fixture(scope="module")
def sim_device() -> Device:
    world = SimWorld(catalogue=CatalogueConfig(videos=12_000, creators=200))
    return make_device("sim-0", SIM, world)


def test_devices_by_spec_type(sim_device: Device) -> None:
    assert type(sim_device) is InProcessDevice
    phone = make_device("127.0.0.1:5555", ADB)  # nothing connects until a feed opens
    assert type(phone) is AdbPhone and phone.transcriber is None
    assert not phone.scrcpy.audio  # no speech: no sound streamed
    with pytest.raises(ValueError, match="needs the job's simulated world"):
        make_device("sim-1", SIM)


def test_classifiers_by_spec(sim_device: Device) -> None:
    baseline = PersonaStatsPolicySpec()
    assert type(make_classifier(sim_device, SIM, baseline)) is SimTruthClassifier
    text = SIM.model_copy(update={"classifier": "text-embedding"})
    assert type(make_classifier(sim_device, text, baseline)) is TextCategoryClassifier
    assert type(make_classifier(sim_device, ADB, baseline)) is TextCategoryClassifier
    agent = ServedAgentPolicySpec(kind="agent", agent=AGENT)
    assert type(make_classifier(sim_device, SIM, agent)) is SimTruthClassifier
    classify = ServedAgentPolicySpec(kind="agent", agent=AGENT.model_copy(
        update={"classify": True}))
    assert type(make_classifier(sim_device, ADB, classify)) is VlmClassifier


def test_policies_by_spec_type() -> None:
    assert type(make_policy(PersonaStatsPolicySpec(), PERSONA, 1)) is PersonaStatsPolicy
    assert type(make_policy(RandomPolicySpec(kind="random"), PERSONA, 1)) is RandomPolicy
    agent = make_policy(ServedAgentPolicySpec(kind="agent", agent=AGENT), PERSONA, 1)
    assert type(agent) is AgentPolicy and agent.spec == AGENT


def test_every_device_can_be_waited_for(sim_device: Device) -> None:
    sim_device.wait_online(0.0)  # simulated phones never drop off: returns at once
