"""The farm's inventory on a real Ray and the real adb server: the node's device agent follows
adb's track-devices (a phone plugged in or pulled out mid-way), looks each phone up, and the
registry is rebuilt from the agents' heartbeats after it (or an agent) is killed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from ray.exceptions import ActorUnavailableError, RayActorError

from bubblescope.actors.phone_farm import PhoneFarm
from bubblescope.devices.spec import AdbDevicesSpec
from bubblescope.sim.android.farm import farm_down, farm_up
from tests.support.adb_server import private_adb_server
from tests.support.wait import wait_for

REPORT_S = 30.0  # an agent's first look at its phones, or a heartbeat after a restart


def survey(farm: PhoneFarm) -> dict[str, dict]:
    return {phone["serial"]: phone for phone in asyncio.run(farm.survey(REPORT_S))}


def online(farm: PhoneFarm) -> set[str]:
    return {serial for serial, phone in survey(farm).items() if phone["state"] == "online"}


@pytest.fixture
def phone_farm(ray_local, tmp_path: Path):
    with private_adb_server(tmp_path / "adb") as adb:
        record = farm_up(tmp_path / "farm", devices=2, time_warp=20.0, adb_port=adb.port)
        spec = AdbDevicesSpec.model_validate({"backend": "adb", "adb": {"port": adb.port}})
        farm = PhoneFarm(spec)
        try:
            yield farm, adb, record, tmp_path
        finally:
            for agent in farm.agents.values():
                ray_local.kill(agent)
            farm_down(tmp_path / "farm")


def test_the_agent_reports_each_phone_it_finds(phone_farm) -> None:
    farm, _, record, _ = phone_farm
    phones = survey(farm)
    assert {p.serial for p in record.phones} <= set(phones)
    for phone in record.phones:
        entry = phones[phone.serial]
        assert entry["state"] == "online" and entry["model"] == "BubblePhone"
        assert entry["android"] and "x" in entry["screen"]
        assert entry["apps"] == ["bubblescope-sim"]  # the only app driver whose app it has
        assert entry["node_id"] == farm.here


def test_a_phone_plugged_in_joins_and_one_pulled_out_goes_offline(phone_farm) -> None:
    farm, adb, record, folder = phone_farm
    extra = farm_up(folder / "extra", devices=1, time_warp=20.0, adb_port=adb.port)
    serial = extra.phones[0].serial
    try:
        wait_for(lambda: serial in online(farm), REPORT_S, every_s=0.5, what=f"{serial} to join")
    finally:
        farm_down(folder / "extra")
    wait_for(lambda: survey(farm)[serial]["state"] == "offline", REPORT_S, every_s=0.5,
             what=f"{serial} to be offline")
    assert {p.serial for p in record.phones} <= online(farm)


def test_a_killed_registry_and_agent_are_rebuilt(phone_farm, ray_local) -> None:
    farm, _, record, _ = phone_farm
    serials = {p.serial for p in record.phones}
    assert serials <= online(farm)
    ray_local.kill(farm.registry, no_restart=False)
    wait_for(lambda: serials <= online(farm), REPORT_S, every_s=0.5,
             what="the restarted registry to hear from the agent")
    for agent in farm.agents.values():
        ray_local.kill(agent, no_restart=False)

    def agents_answer() -> bool:
        try:
            return bool(ray_local.get([a.status.remote() for a in farm.agents.values()],
                                      timeout=REPORT_S))
        except (ActorUnavailableError, RayActorError):  # restarting
            return False

    wait_for(agents_answer, REPORT_S, every_s=0.5, what="the agents back")
    wait_for(lambda: serials <= online(farm), REPORT_S, every_s=0.5,
             what="the restarted agent to report its phones again")
