"""Scaling the policy app on a real Ray Serve: replicas added on queue length, personas spread
over replicas by adapter, and adapter churn counted exactly when personas outnumber the
adapters the replicas hold."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from ray import serve

from bubblescope.agent.serve_client import AgentPolicy
from bubblescope.agent.spec import AgentPolicySpec
from bubblescope.contracts import Observation
from bubblescope.personas.loader import load_persona
from bubblescope.serve.engine import EchoEngine
from bubblescope.serve.policy_app import DEPLOYMENT, deploy_policy, deployment_options
from tests.conftest import EXAMPLES
from tests.support.wait import wait_for

BASE = load_persona(EXAMPLES / "personas" / "concentrated.yaml")
PERSONAS = [BASE.model_copy(update={"id": f"s{i}"}) for i in range(4)]
SCREEN = Observation(device_time=datetime(2026, 1, 1, tzinfo=UTC),
                     on_screen_text="Cooking noodles\n@chef", video_duration_s=30.0)


class SlowEngine(EchoEngine):
    """Echo answers that take a while, so requests queue on a replica."""

    def generate(self, *args, **kwargs):
        time.sleep(0.5)  # paced: a model's generation time
        return super().generate(*args, **kwargs)


def _spec(app: str, **deployment) -> AgentPolicySpec:
    return AgentPolicySpec.model_validate({
        "base_model": "/models/none", "adapters": {p.id: f"/adapters/{p.id}" for p in PERSONAS},
        "deployment": {"app_name": app, "http_port": None, "max_batch_size": 4,
                       "batch_wait_s": 0.01, "cpus_per_replica": 0.25, **deployment},
        "decide_timeout_s": 60})


def _decide(policy: AgentPolicy):
    policy.decide(SCREEN, ())
    return policy.served()


def _replicas_running(app: str) -> int:
    status = serve.status().applications[app].deployments[DEPLOYMENT]
    return status.replica_states.get("RUNNING", 0)


def test_the_autoscaling_config_is_one_serve_accepts() -> None:
    from ray.serve.config import AutoscalingConfig

    spec = _spec("any", autoscaling={"min_replicas": 2, "max_replicas": 5,
                                     "target_ongoing_requests": 4, "upscale_delay_s": 3})
    config = AutoscalingConfig(**deployment_options(spec)["autoscaling_config"])
    assert (config.min_replicas, config.initial_replicas, config.max_replicas) == (2, 2, 5)
    assert (config.target_ongoing_requests, config.upscale_delay_s) == (4, 3)


@pytest.fixture
def fresh_serve(ray_local):
    serve.shutdown()
    apps: list[str] = []
    yield apps
    for app in apps:
        serve.delete(app)


def test_personas_spread_over_replicas_by_adapter_with_no_churn_once_placed(fresh_serve):
    spec = _spec("spread-policy", replicas=2, max_adapters_per_replica=2)
    fresh_serve.append(spec.deployment.app_name)
    deploy_policy(spec, PERSONAS, EchoEngine)
    policies = [AgentPolicy(spec, p) for p in PERSONAS]
    served_by: dict[str, set[str]] = defaultdict(set)
    for policy in policies:  # one at a time: each new adapter goes to the emptier replica
        served_by[policy.persona.id].add(_decide(policy).replica)
        time.sleep(1.5)  # paced: devices come online one after another
    with ThreadPoolExecutor(8) as pool:
        later = list(pool.map(_decide, [policies[i % 4] for i in range(48)]))
    for policy, served in zip([policies[i % 4] for i in range(48)], later, strict=True):
        served_by[policy.persona.id].add(served.replica)
    assert all(len(replicas) == 1 for replicas in served_by.values()), served_by
    per_replica = Counter(next(iter(r)) for r in served_by.values())
    assert sorted(per_replica.values()) == [2, 2]
    assert sum(s.adapter_evictions for s in later) == 0
    assert sum(s.adapter_loads for s in later) == 0  # every adapter stayed where it was


def test_churn_is_counted_once_per_load_and_eviction(fresh_serve):
    spec = _spec("churn-policy", replicas=1, max_adapters_per_replica=2)
    fresh_serve.append(spec.deployment.app_name)
    handle = deploy_policy(spec, PERSONAS, EchoEngine)
    policies = [AgentPolicy(spec, p) for p in PERSONAS]
    served = [_decide(policies[i % 4]) for i in range(12)]  # round robin over 4 > 2 held
    loads = sum(s.adapter_loads for s in served)
    evictions = sum(s.adapter_evictions for s in served)
    assert loads == 12  # LRU with room for 2 and a cycle of 4: every request misses
    assert loads - evictions == len(handle.loaded_adapters.remote().result(timeout_s=30)) == 2


def test_replicas_are_added_when_the_queue_grows(fresh_serve):
    spec = _spec("scaling-policy", max_adapters_per_replica=4, autoscaling={
        "min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1,
        "upscale_delay_s": 0, "downscale_delay_s": 600, "look_back_period_s": 1,
        "metrics_interval_s": 0.5})
    fresh_serve.append(spec.deployment.app_name)
    deploy_policy(spec, PERSONAS, SlowEngine)
    assert _replicas_running("scaling-policy") == 1
    policies = [AgentPolicy(spec, PERSONAS[i % 4]) for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        stop = time.monotonic() + 60
        replicas: set[str] = set()

        def load(policy: AgentPolicy) -> None:
            while time.monotonic() < stop and _replicas_running("scaling-policy") < 2:
                replicas.add(_decide(policy).replica)

        futures = [pool.submit(load, p) for p in policies]
        wait_for(lambda: _replicas_running("scaling-policy") == 2, timeout_s=60,
                 what="a second policy replica under a long queue")
        for future in futures:
            future.result(timeout=90)
