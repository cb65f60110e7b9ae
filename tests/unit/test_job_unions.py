"""The job's devices and policy sections: discriminated unions of the specs their parts own.

The YAML keeps its shape (`devices: {backend: adb, adb: {...}}`, `policy: {kind: agent,
agent: {...}}`), the tag defaults when left out, and a key only another variant reads is
refused in one line that names it; the devices section keeps both `count` and `adb` whatever
the backend, as job files that switch backend by one key have always done."""

from __future__ import annotations

import pytest

from bubblescope.agent.spec import (
    PersonaStatsPolicySpec,
    RandomPolicySpec,
    ServedAgentPolicySpec,
)
from bubblescope.cluster.errors import JobFileError
from bubblescope.config_files import validate
from bubblescope.devices.spec import AdbDevicesSpec
from bubblescope.jobspec import JobSpec
from bubblescope.sim.spec import SimDevicesSpec

BASE = {"personas": ["p.yaml"], "platforms": ["null"], "experiments": {"breadth": {}}}


def _spec(**sections) -> JobSpec:
    return validate(JobSpec, {**BASE, **sections}, JobFileError, "job.yaml")


def _refused(**sections) -> str:
    with pytest.raises(JobFileError) as error:
        _spec(**sections)
    message = str(error.value)
    assert "\n" not in message and message.startswith("job.yaml: ")
    return message


def test_defaults_are_simulated_devices_and_the_persona_stats_policy() -> None:
    spec = _spec()
    assert isinstance(spec.devices, SimDevicesSpec) and isinstance(spec.policy,
                                                                   PersonaStatsPolicySpec)
    assert (spec.devices.count, spec.devices.classifier, spec.devices.sim_pace) == \
        (4, "sim-truth", None)
    untagged = _spec(devices={"count": 2}, policy={})
    assert untagged.devices.backend == "sim" and untagged.devices.count == 2
    assert untagged.policy.kind == "persona-stats"


def test_the_adb_variant_keeps_its_adb_section_and_defaults() -> None:
    spec = _spec(devices={"backend": "adb", "max_restarts": 2,
                          "adb": {"port": 5038, "scrcpy": {"max_fps": 4}}})
    devices = spec.devices
    assert isinstance(devices, AdbDevicesSpec) and devices.classifier == "text-embedding"
    assert (devices.adb.port, devices.adb.scrcpy.max_fps, devices.max_restarts) == (5038, 4, 2)
    assert devices.adb.scrcpy.max_size == 640  # what jobs always streamed at
    assert devices.online_timeout_s == devices.adb.online_timeout_s == 300


@pytest.mark.parametrize(("kind", "model"), [("persona-stats", PersonaStatsPolicySpec),
                                             ("random", RandomPolicySpec)])
def test_each_baseline_kind(kind: str, model: type) -> None:
    assert type(_spec(policy={"kind": kind}).policy) is model


def test_the_agent_kind_keeps_its_agent_section() -> None:
    spec = _spec(policy={"kind": "agent", "agent": {"base_model": "m",
                                                    "prompt": {"history": 2}}})
    assert isinstance(spec.policy, ServedAgentPolicySpec)
    assert spec.policy.agent.prompt.history == 2 and spec.policy.agent.prompt.frames == 1


@pytest.mark.parametrize(("sections", "named"), [
    ({"devices": {"backend": "adb", "sim_pace": 1}},
     "devices.sim_pace is only read with backend sim"),
    ({"policy": {"kind": "random", "agent": {"base_model": "m"}}},
     "policy.agent is only read with kind agent"),
    ({"policy": {"kind": "agent"}}, "needs policy.agent"),
])
def test_a_key_of_another_variant_is_refused_by_name(sections: dict, named: str) -> None:
    assert named in _refused(**sections)


@pytest.mark.parametrize(("sections", "key"), [
    ({"devices": {"backend": "adb", "adb": {"prot": 1}}}, "devices.adb.prot: unknown key"),
    ({"devices": {"backend": "adb", "adb": {"scrcpy": {"max_size": -1}}}},
     "devices.adb.scrcpy.max_size"),
    ({"devices": {"backend": "adb", "classifier": "sim-truth"}}, "devices.classifier"),
    ({"devices": {"speed": 1}}, "devices.speed: unknown key"),
    ({"devices": {"backend": "usb"}}, "devices: "),
    ({"policy": {"kind": "oracle"}}, "policy: "),
    ({"policy": {"kind": "agent", "agent": {"base_model": "m", "promt": {}}}},
     "policy.agent.promt: unknown key"),
])
def test_errors_name_the_key_as_written_without_the_union_tag(sections: dict, key: str) -> None:
    assert key in _refused(**sections)


def test_a_file_switches_backend_by_one_key() -> None:
    devices = {"count": 4, "adb": {"port": 5038, "speech": {"enabled": False}}}
    sim = _spec(devices={"backend": "sim", **devices}).devices
    adb = _spec(devices={"backend": "adb", **devices}).devices
    assert isinstance(sim, SimDevicesSpec) and sim.count == 4
    assert isinstance(adb, AdbDevicesSpec) and adb.adb.port == 5038
    assert "devices.adb.prot" in _refused(devices={"adb": {"prot": 1}})  # still validated


def test_the_job_schema_describes_both_unions() -> None:
    schema = JobSpec.model_json_schema()
    assert {"SimDevicesSpec", "AdbDevicesSpec", "ServedAgentPolicySpec"} <= set(schema["$defs"])


def test_old_job_yaml_devices_are_read_in_todays_shape() -> None:
    """Results written before the union dumped every backend's keys; reports still load."""
    from bubblescope.job import _devices_as_written

    old = {"backend": "sim", "count": 2, "cpus_per_device": 0.5, "max_restarts": 5,
           "classifier": None, "adb": {"port": 5037}, "sim_pace": None}
    assert _spec(devices=_devices_as_written(old)).devices.count == 2


def test_results_written_before_the_unions_still_load(tmp_path) -> None:
    """A job.yaml dumped before the unions held every variant's keys, null where unused."""
    from bubblescope.job import ResolvedJob

    old = {**BASE, "experiments": {"breadth": {"steps": 5}},
           "policy": {"kind": "persona-stats", "agent": None},
           "devices": {"backend": "sim", "count": 2, "cpus_per_device": 0.5, "max_restarts": 5,
                       "classifier": None, "adb": {"port": 5037}, "sim_pace": None}}
    data = {"job_id": "old", "spec": old, "platforms": {}, "personas": []}
    job = ResolvedJob.from_resolved(data, {}, str(tmp_path))
    assert isinstance(job.spec.devices, SimDevicesSpec) and job.spec.devices.count == 2
    assert isinstance(job.spec.policy, PersonaStatsPolicySpec) and job.agent is None
