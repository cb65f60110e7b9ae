"""The registry's bookkeeping and the agent's parsing, in-process: conflicts between nodes,
stale nodes, assignments, adb's device list and `pm list packages`."""

from __future__ import annotations

from bubblescope.actors import device_registry
from bubblescope.actors.device_agent import installed_apps, parse_device_list
from bubblescope.actors.device_registry import DeviceRegistry
from bubblescope.actors.phone_nodes import labelled_phone_nodes


def phone(serial: str, state: str = "device") -> dict:
    return {"serial": serial, "state": state, "model": "M", "android": "13", "screen": "1x2",
            "apps": []}


def by_serial(registry: DeviceRegistry) -> dict[str, dict]:
    return {entry["serial"]: entry for entry in registry.phones()}


def test_phones_carry_their_node_and_run() -> None:
    registry = DeviceRegistry()
    registry.report("n1", "10.0.0.1", "127.0.0.1:5037", [phone("a"), phone("b", "offline")], 0)
    registry.assign("a", "job", "run-1", "acct-7")
    entries = by_serial(registry)
    assert entries["a"]["node_id"] == "n1" and entries["a"]["state"] == "online"
    assert (entries["a"]["job_id"], entries["a"]["run_id"], entries["a"]["account"]) == \
        ("job", "run-1", "acct-7")
    assert entries["b"]["state"] == "offline" and entries["b"]["run_id"] == ""
    registry.release("a", "another-job")  # not its run: kept
    assert by_serial(registry)["a"]["run_id"] == "run-1"
    registry.release("a", "job")
    assert by_serial(registry)["a"]["run_id"] == ""


def test_two_nodes_claiming_one_serial_is_a_conflict() -> None:
    registry = DeviceRegistry()
    registry.report("n1", "", "127.0.0.1:5037", [phone("a")], 0)
    registry.report("n2", "", "127.0.0.1:5038", [phone("a")], 0)
    entry = by_serial(registry)["a"]
    assert entry["state"] == "conflict" and entry["conflict"] == ["n1", "n2"]
    registry.node_gone("n1")
    assert by_serial(registry)["a"]["state"] == "online"
    assert by_serial(registry)["a"]["node_id"] == "n2"


def test_a_phone_moves_to_the_node_that_reports_it_after_a_restart(monkeypatch) -> None:
    registry = DeviceRegistry()
    now = [100.0]
    monkeypatch.setattr(device_registry.time, "time", lambda: now[0])
    registry.report("old", "", "127.0.0.1:5037", [phone("a")], 0)
    now[0] += device_registry.STALE_S + 1  # the old node's agent went quiet (its raylet died)
    registry.report("new", "", "127.0.0.1:5037", [phone("a")], 0)
    assert by_serial(registry)["a"]["node_id"] == "new"
    assert registry.reporters() == ["new|127.0.0.1:5037"]


def test_adb_lists_and_packages_parse() -> None:
    assert parse_device_list("emu-1\tdevice\n127.0.0.1:5555\toffline\n\n") == \
        {"emu-1": "device", "127.0.0.1:5555": "offline"}
    assert parse_device_list("") == {}
    packages = "package:com.android.shell\npackage:com.ss.android.ugc.aweme\n"
    assert installed_apps(packages, {"douyin": "com.ss.android.ugc.aweme",
                                     "bilibili": "tv.danmaku.bili"}) == ["douyin"]


def test_phone_nodes_are_the_alive_labelled_ones() -> None:
    nodes = [
        {"NodeID": "a", "Alive": True, "NodeManagerAddress": "10.0.0.1",
         "Labels": {"bubblescope.io/phones": "true", "bubblescope.io/adb-port": "5038"}},
        {"NodeID": "b", "Alive": False, "Labels": {"bubblescope.io/phones": "true"}},
        {"NodeID": "c", "Alive": True, "Labels": {}},
        {"NodeID": "d", "Alive": True, "Labels": {"bubblescope.io/phones": "true"}},
    ]
    found = {node.node_id: node for node in labelled_phone_nodes(nodes)}
    assert set(found) == {"a", "d"}
    assert found["a"].adb_port == 5038 and found["d"].adb_port == 5037


def test_a_job_start_refuses_what_the_user_must_fix() -> None:
    from bubblescope.actors.phone_farm import FarmPhone, check_first_phones
    from bubblescope.cluster.cli import exit_code
    from bubblescope.devices.spec import AdbDevicesSpec
    from bubblescope.errors import ConfigError

    beats = [{"node": "n1", "adb": "127.0.0.1:5037", "phones": 2, "adb_error": ""}]
    ok = FarmPhone("a", "n1", "127.0.0.1:5037", "online")
    named = AdbDevicesSpec.model_validate({"backend": "adb", "adb": {"serials": ["a", "zz"]}})
    cases = [(named, [ok], "phone zz is on no phone node"),
             (named.model_copy(update={"adb": named.adb.model_copy(update={"serials": None})}),
              [ok, FarmPhone("b", "n2", "127.0.0.1:5038", "conflict")],
              "phone b is reported by two nodes")]
    for devices, phones, message in cases:
        try:
            check_first_phones(devices, phones, beats)
        except ConfigError as exc:
            assert message in str(exc) and exit_code(exc) == 2
            assert "\n" not in str(exc)
        else:
            raise AssertionError(f"accepted: {message}")
