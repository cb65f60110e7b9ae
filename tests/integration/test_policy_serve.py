"""The policy app on a real Ray Serve: adapters multiplexed and bounded per replica, batches
that mix adapters with every answer routed back to its own request, HTTP and handles, a
replica killed mid-use, hostile model output."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import ray
from ray import serve

from bubblescope.agent.policy import HistoryItem
from bubblescope.agent.serve_client import AgentPolicy
from bubblescope.agent.spec import AgentPolicySpec
from bubblescope.contracts import Action, Observation
from bubblescope.personas.loader import load_persona
from bubblescope.serve.engine import EchoEngine
from bubblescope.serve.policy_app import DEPLOYMENT, deploy_policy
from tests.conftest import EXAMPLES

PORT = 18651
BASE = load_persona(EXAMPLES / "personas" / "concentrated.yaml")
PERSONAS = [BASE.model_copy(update={"id": f"p{i}"}) for i in range(3)]
UNADAPTED = BASE.model_copy(update={"id": "p-base"})  # no adapter: played by the base model
SCREEN = Observation(device_time=datetime(2026, 1, 1, tzinfo=UTC),
                     on_screen_text="Cooking noodles\n@chef", video_duration_s=30.0)
MARKER = f"/tmp/bubblescope-pwned-{uuid.uuid4().hex}"


class HostileEngine(EchoEngine):
    """A model whose answers try to run code."""

    def generate(self, keys, prompts, generation):
        return [f'```python\nwatch(1)\n__import__("os").system("touch {MARKER}")\n```'
                for _ in prompts]


def _spec(app: str, **deployment) -> AgentPolicySpec:
    return AgentPolicySpec.model_validate({
        "base_model": "/models/none", "adapters": {p.id: f"/adapters/{p.id}" for p in PERSONAS},
        "deployment": {"app_name": app, "http_port": PORT, "max_adapters_per_replica": 2,
                       "max_batch_size": 8, "batch_wait_s": 0.2, "cpus_per_replica": 0.5,
                       **deployment},
        "decide_timeout_s": 60})


@pytest.fixture(scope="module")
def echo_app(ray_local):
    # Serve keeps the HTTP options it was first started with: start it afresh with ours.
    serve.shutdown()
    spec = _spec("echo-policy")
    deploy_policy(spec, [*PERSONAS, UNADAPTED], EchoEngine)
    yield spec
    serve.delete("echo-policy")


def _decide(spec: AgentPolicySpec, persona_index: int,
            screen: Observation = SCREEN) -> tuple[Action, str]:
    policy = AgentPolicy(spec, PERSONAS[persona_index])
    history = [HistoryItem(SCREEN, Action(watch_s=2.0))]
    action = policy.decide(screen, history)
    return action, action.raw


def _tag(raw: str, name: str) -> str:
    """A field of EchoEngine's tag line (`adapter=p0 batch=8 adapters=2 re='...'`)."""
    return raw.split(f"{name}=")[1].split()[0]


def test_each_persona_is_answered_by_its_own_adapter(echo_app):
    for index in range(3):
        action, raw = _decide(echo_app, index)
        assert raw.startswith(f"adapter=p{index} ") and action.format_ok
        assert action.watch_s == 1.0  # EchoEngine: no frames in the prompt -> watch(1)


def test_a_mixed_batch_answers_each_request_with_its_own_adapter(echo_app):
    # Three adapters and the base model, each request with its own screen: every answer must
    # come back to the request that asked it, from that request's adapter, while batches mix
    # adapters (EchoEngine tags each answer with its adapter and the prompt it answered).
    personas = [*PERSONAS, UNADAPTED]
    expected = ["p0", "p1", "p2", "base"]

    def ask(index: int) -> tuple[int, str]:
        screen = SCREEN.model_copy(update={"on_screen_text": f"Clip number {index}\n@chef"})
        policy = AgentPolicy(echo_app, personas[index % 4])
        return index, policy.decide(screen, []).raw

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, range(32)))
    for index, raw in answers:
        assert _tag(raw, "adapter") == expected[index % 4], raw
        assert f"Clip number {index} @chef" in raw.split("re=")[1].splitlines()[0], raw
    mixes = [int(_tag(raw, "adapters")) for _, raw in answers]
    sizes = [int(_tag(raw, "batch")) for _, raw in answers]
    assert max(sizes) > 1  # batching put concurrent decisions together
    assert max(mixes) > 1  # and one batch held several adapters, generated in one pass


def test_adapters_per_replica_are_bounded(echo_app):
    handle = serve.get_deployment_handle(DEPLOYMENT, app_name="echo-policy")
    for index in (0, 1, 2, 0):
        _decide(echo_app, index)
    loaded = handle.loaded_adapters.remote().result(timeout_s=30)
    assert len(loaded) <= 2 and "p0" in loaded


def test_http_reaches_the_same_policy(echo_app):
    body = {"persona": "p1", "observation": json.loads(SCREEN.model_dump_json()), "history": []}
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/echo-policy", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "serve_multiplexed_model_id": "p1"})
    with urllib.request.urlopen(request, timeout=30) as response:
        reply = json.loads(response.read())
    assert reply["adapter"] == "p1" and "watch(1)" in reply["raw"]


def test_a_killed_replica_is_retried_not_skipped(echo_app):
    _decide(echo_app, 0)
    replicas = [a for a in ray.util.list_named_actors(all_namespaces=True)
                if a["namespace"] == "serve" and "echo-policy" in a["name"]
                and DEPLOYMENT in a["name"]]
    assert replicas
    for replica in replicas:
        ray.kill(ray.get_actor(replica["name"], namespace="serve"))
    began = time.monotonic()
    action, raw = _decide(echo_app, 1)
    assert raw.startswith("adapter=p1 ") and action.format_ok
    assert time.monotonic() - began < 60


def test_hostile_output_is_parsed_never_run(ray_local):
    spec = _spec("hostile-policy", http_port=PORT)
    deploy_policy(spec, PERSONAS, HostileEngine)
    try:
        action, _ = _decide(spec, 0)
    finally:
        serve.delete("hostile-policy")
    assert not action.format_ok
    assert action.watch_s == 1.0  # the valid call in the block still counts
    import os

    assert not os.path.exists(MARKER)


class LabelEngine(EchoEngine):
    """Answers category prompts with a Chinese label and decisions in the grammar."""

    def generate(self, keys, prompts, generation):
        return ["Label: 美食/家常菜, I think" if "taxonomy" in _text(p) else "```python\nwatch(2)\n```"
                for p in prompts]


def _text(prompt) -> str:
    return " ".join(part.get("text") or "" for message in prompt.messages
                    for part in message["content"])


def test_vlm_classifier_reads_a_taxonomy_label(ray_local):
    from bubblescope.agent.serve_client import VlmClassifier

    spec = _spec("label-policy")
    deploy_policy(spec, PERSONAS, LabelEngine)
    try:
        classifier = VlmClassifier("label-policy", timeout_s=60)
        with ThreadPoolExecutor(4) as pool:
            labels = list(pool.map(classifier.classify, [SCREEN] * 4))
            actions = list(pool.map(lambda i: _decide(spec, i % 3)[0], range(4)))
    finally:
        serve.delete("label-policy")
    assert labels == ["Food/Home Cooking"] * 4
    assert [a.watch_s for a in actions] == [2.0] * 4
