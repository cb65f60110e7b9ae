"""An audit whose decisions go through vLLM: the job's policy.agent.engine kind vllm, the real
vLLM CPU engine under Ray Serve LLM deployed by the audit itself (adapters uploaded to a local
S3), its replica killed mid-audit; no step lost or written twice, format failures counted.

Runs in the vLLM venv (`make test-vllm`; marker `vllm`).
"""

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
from tests.e2e.test_agent_audit import _progressed
from tests.support.s3_server import running_s3
from tests.support.system_programs import free_port
from tests.support.tiny_adapters import random_adapter
from tests.support.wait import wait_for

pytestmark = pytest.mark.vllm

APP = "vllm-audit"
KILL_WAIT_S = 900  # the engine's start (minutes on a crowded machine), then four steps
AUDIT_WAIT_S = 900  # for the audit to finish once a new replica has started
STEPS = 16
JOB = """
    job_id: vllm-agent
    seed: 4
    storage_path: out
    personas: [PERSONAS/concentrated.yaml, PERSONAS/dispersed.yaml]
    platforms: [douyin-like]
    experiments:
      depth: {cultivation_steps: 8, counterfactual_steps: 8}
    window: 4
    replicates: 1
    devices: {count: 2, cpus_per_device: 0}
    metrics: {port: null, bootstrap: 60}
    checkpoint_every: 2
    policy:
      kind: agent
      agent:
        base_model: MODEL
        adapters: {concentrated: ADAPTERS/concentrated/sft, dispersed: ADAPTERS/dispersed/sft}
        deployment: {app_name: APP_NAME, http_port: PORT}
        generation: {max_new_tokens: 20, constrain_watch: true}
        prompt: {history: 2, frames: 0}
        decide_timeout_s: 800
        engine:
          kind: vllm
          adapters_dir: BUCKET/adapters
          device: cpu
          dtype: float32
          enforce_eager: true
          cpus_per_replica: 0.5
          max_lora_rank: 8
          max_loras_per_replica: 2
          max_model_len: 2048
          images_per_prompt: 0
          env_vars: ENV
"""


@pytest.fixture(scope="module")
def vllm_job(tmp_path_factory, tiny_vlm):
    folder = tmp_path_factory.mktemp("vllm-audit")
    for seed, persona in enumerate(("concentrated", "dispersed")):
        random_adapter(tiny_vlm, folder / "adapters" / persona / "sft", r=8, seed=seed)
    with running_s3(folder) as s3, pytest.MonkeyPatch.context() as env:
        for key, value in s3.env.items():
            env.setenv(key, value)
        body = (JOB.replace("MODEL", str(tiny_vlm)).replace("ADAPTERS", str(folder / "adapters"))
                .replace("APP_NAME", APP).replace("PORT", str(free_port()))
                .replace("BUCKET", s3.create_bucket("audit")).replace("ENV", json.dumps(s3.env)))
        yield write_job(folder, body)


def _llm_replicas() -> list[str]:
    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a["namespace"] == "serve" and APP in a["name"] and "LLMServer" in a["name"]]


@pytest.mark.slow
@pytest.mark.timeout(KILL_WAIT_S + AUDIT_WAIT_S + 60)
def test_an_audit_on_vllm_survives_a_killed_replica(vllm_job, ray_local):
    serve.shutdown()  # Serve keeps the HTTP options it first started with: ours, afresh
    job = load_job(vllm_job)
    store = JobStore(job.storage_path, job.job_id)
    codes: list[int] = []
    audit = threading.Thread(target=lambda: codes.append(run_audit(
        job, AuditOptions(progress=False, metrics_port=None))))
    audit.start()
    wait_for(lambda: _progressed(store, 4) or not audit.is_alive(), KILL_WAIT_S, every_s=0.5,
             what="four steps of a run before the kill")
    replicas = _llm_replicas()
    assert audit.is_alive() and replicas, "the vLLM replica should be serving mid-audit"
    for name in replicas:
        ray.kill(ray.get_actor(name, namespace="serve"))
    audit.join(timeout=AUDIT_WAIT_S)
    assert not audit.is_alive() and codes == [0]
    assert set(_llm_replicas()).isdisjoint(replicas)  # the audit finished on a new replica
    serve.shutdown()  # leave no policy app (nor Serve's HTTP settings) to later tests
    assert not [a for a in ray.util.list_named_actors(all_namespaces=True)
                if "PolicyServer" in a["name"]]  # no transformers app answered instead

    steps = store.read_steps()
    for run_id in store.run_ids():
        mine = steps.filter(pc.equal(steps["run_id"], run_id))
        assert sorted(mine["step"].to_pylist()) == list(range(STEPS))  # none lost, none twice
    raws = steps["action_raw"].to_pylist()
    assert all(raws), "every decision is an answer of the model"
    with open(store.path("summary.json"), encoding="utf-8") as handle:
        runs = json.load(handle)["runs"]
    failures = sum(run["format_failures"] for run in runs)
    assert failures == sum(not ok for ok in steps["action_format_ok"].to_pylist())
