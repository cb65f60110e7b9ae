"""An audit played by the agent policy: the tiny Qwen2.5-VL on Ray Serve, two persona adapters
multiplexed on one replica, the replica killed mid-audit."""

from __future__ import annotations

import json
import threading

import pyarrow.compute as pc
import pytest
import ray
from ray import serve

from bubblescope.cluster.job import load_job
from bubblescope.cluster.local import AuditOptions, run_audit
from bubblescope.store import JobStore
from tests.conftest import write_job
from tests.support.wait import wait_for

KILL_WAIT_S = 240  # until the audit has made progress and its replica can be killed
AUDIT_WAIT_S = 600  # for the audit to finish once its replica is back
JOB = """
    job_id: agent
    seed: 4
    storage_path: out
    personas: [PERSONAS/concentrated.yaml, PERSONAS/dispersed.yaml]
    platforms: [douyin-like]
    experiments:
      depth: {cultivation_steps: 12, counterfactual_steps: 12}
    window: 6
    replicates: 1
    devices: {count: 2, cpus_per_device: 0}
    metrics: {port: null, bootstrap: 60}
    checkpoint_every: 2
    policy:
      kind: agent
      agent:
        base_model: MODEL
        adapters: {concentrated: ADAPTERS/concentrated, dispersed: ADAPTERS/dispersed}
        deployment: {app_name: agent-audit, replicas: 1, max_adapters_per_replica: 2,
                     http_port: null, cpus_per_replica: 0.5, batch_wait_s: 0.05}
        generation: {max_new_tokens: 20}
        prompt: {history: 2, frames: 0}
        decide_timeout_s: 90
"""


def _untrained_adapter(base, folder) -> None:
    from peft import LoraConfig, get_peft_model

    from bubblescope.agent.vlm import load_model
    from bubblescope.trainer.config import LANGUAGE_MODULES

    model = get_peft_model(load_model(base), LoraConfig(r=4, lora_alpha=8,
                                                        target_modules=LANGUAGE_MODULES))
    model.save_pretrained(str(folder))


@pytest.fixture(scope="module")
def agent_job(tmp_path_factory, tiny_vlm):
    folder = tmp_path_factory.mktemp("agent-audit")
    for persona in ("concentrated", "dispersed"):
        _untrained_adapter(tiny_vlm, folder / "adapters" / persona)
    body = JOB.replace("MODEL", str(tiny_vlm)).replace("ADAPTERS", str(folder / "adapters"))
    return write_job(folder, body)


def _replica_names() -> list[str]:
    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a["namespace"] == "serve" and "agent-audit" in a["name"]
            and "PolicyServer" in a["name"]]


def _progressed(store: JobStore, steps: int) -> bool:
    try:
        return any(store.next_step(r) >= steps for r in store.run_ids())
    except FileNotFoundError:  # no step written yet
        return False


@pytest.mark.slow
@pytest.mark.timeout(KILL_WAIT_S + AUDIT_WAIT_S + 60)
def test_agent_audit_survives_a_killed_replica(agent_job, ray_local):
    job = load_job(agent_job)
    store = JobStore(job.storage_path, job.job_id)
    codes: list[int] = []
    audit = threading.Thread(target=lambda: codes.append(run_audit(
        job, AuditOptions(progress=False, metrics_port=None))))
    audit.start()
    wait_for(lambda: _progressed(store, 4), KILL_WAIT_S, every_s=0.2,
             what="four steps of a run before the kill")
    names = _replica_names()
    assert names, "the policy replica should be running mid-audit"
    for name in names:
        ray.kill(ray.get_actor(name, namespace="serve"))
    audit.join(timeout=AUDIT_WAIT_S)
    serve.shutdown()  # leave no policy app (nor Serve's HTTP settings) to later tests
    assert codes == [0]

    steps = store.read_steps()
    for run_id in store.run_ids():
        mine = steps.filter(pc.equal(steps["run_id"], run_id))
        assert sorted(mine["step"].to_pylist()) == list(range(24))  # none lost, none twice
    with open(store.path("summary.json"), encoding="utf-8") as handle:
        summary = json.load(handle)
    runs = summary["runs"]
    assert all("format_failures" in run for run in runs)
    failures = sum(run["format_failures"] for run in runs)
    assert failures == sum(not ok for ok in steps["action_format_ok"].to_pylist())
    # every step names the replica that decided it: the killed one and its replacement
    replicas = steps["served_replica"].to_pylist()
    assert None not in replicas and len(set(replicas)) >= 2
    serving = summary["serving"]
    assert sum(r["decisions"] for r in serving["replicas"]) == steps.num_rows
    assert serving["adapter_loads"] >= len(job.agent.adapters)  # loaded again after the kill
