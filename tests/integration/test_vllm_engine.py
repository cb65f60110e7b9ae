"""The agent on the real vLLM CPU engine under Ray Serve LLM: the tiny Qwen2.5-VL, its LoRA
adapters loaded at run time from a local S3 (moto), reached by the device actors' own client.

One deployment for the module (an engine start takes 35-65 s on two cores). Greedy decisions
equal the transformers engine's, token for token, for text and for frames, on the base model
and on each adapter (one of rank 8, one of rank 128 as a stacked SFT+GRPO adapter is); an
adapter vLLM refuses is named at deploy; a killed replica costs no decision.

Runs in the vLLM venv (`make test-vllm`; marker `vllm`).
"""

from __future__ import annotations

import io
import threading
import time
from datetime import UTC, datetime

import pytest
import ray
from PIL import Image
from ray import serve

from bubblescope.agent.errors import AdapterError
from bubblescope.agent.policy import HistoryItem
from bubblescope.agent.prompt import decision_prompt
from bubblescope.agent.spec import AgentPolicySpec
from bubblescope.agent.vllm_client import VllmPolicy
from bubblescope.agent.watch_constraint import watch_regex
from bubblescope.contracts import Action, Frame, Observation
from bubblescope.personas.loader import load_persona
from bubblescope.serve.engine import TransformersEngine
from bubblescope.serve.errors import VllmDeployError
from bubblescope.serve.vllm_app import vllm_spec_of
from bubblescope.serve.vllm_deploy import check_decisions, deploy_vllm_policy, upload_adapters
from tests.conftest import EXAMPLES
from tests.support.s3_server import running_s3
from tests.support.system_programs import free_port
from tests.support.tiny_adapters import random_adapter
from tests.support.wait import wait_for

pytestmark = pytest.mark.vllm

APP = "vllm-policy"
START_TIMEOUT_S = 900  # an engine start: 35-65 s alone, over 5 minutes on a crowded machine
CONCENTRATED = load_persona(EXAMPLES / "personas" / "concentrated.yaml")
DISPERSED = load_persona(EXAMPLES / "personas" / "dispersed.yaml")
NOBODY = CONCENTRATED.model_copy(update={"id": "nobody"})  # no adapter: the base model
PROMPT = {"history": 2, "frames": 1, "frame_edge": 112, "instructions": False,
          "transcript_chars": 200}


def _frame(colour: tuple[int, int, int]) -> Frame:
    buffer = io.BytesIO()
    image = Image.new("RGB", (90, 160), colour)
    image.paste((255, 255, 255), (20, 40, 70, 90))
    image.save(buffer, format="PNG")
    return Frame(pts_s=0.0, width=90, height=160, format="png", data=buffer.getvalue())


TEXT = Observation(device_time=datetime(2026, 1, 1, tzinfo=UTC), video_duration_s=30.0,
                   on_screen_text="Cooking noodles at home\n@chef", transcript="boil the water")
PICTURE = TEXT.model_copy(update={"frames": (_frame((200, 30, 30)),),
                                  "on_screen_text": "Sunset over the sea\n@travel"})
BLUE = PICTURE.model_copy(update={"frames": (_frame((30, 30, 200)),)})
BARE = PICTURE.model_copy(update={"frames": ()})  # the picture's text without its frame
HISTORY = (HistoryItem(TEXT, Action(watch_s=3.5, like=True)),)


def _agent(base, adapters: dict, bucket: str, env: dict, port: int, **changes) -> AgentPolicySpec:
    engine = {"kind": "vllm", "adapters_dir": f"{bucket}/adapters", "device": "cpu",
              "dtype": "float32", "enforce_eager": True, "max_lora_rank": 128,
              "max_loras_per_replica": 2, "max_model_len": 4096, "images_per_prompt": 1,
              "env_vars": env}
    data = {"base_model": str(base), "adapters": {k: str(v) for k, v in adapters.items()},
            "deployment": {"app_name": APP, "http_port": port},
            "generation": {"temperature": 0, "max_new_tokens": 24}, "prompt": PROMPT,
            "decide_timeout_s": START_TIMEOUT_S, "engine": engine}
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return AgentPolicySpec.model_validate(data)


@pytest.fixture(scope="module")
def adapters(tiny_vlm, tmp_path_factory):
    from bubblescope.agent.adapter_stack import stack_adapters

    root = tmp_path_factory.mktemp("vllm-adapters")
    sft = random_adapter(tiny_vlm, root / "parts" / "sft", r=64, seed=2)
    grpo = random_adapter(tiny_vlm, root / "parts" / "grpo", r=8, seed=3)
    return {"concentrated": random_adapter(tiny_vlm, root / "concentrated" / "sft", r=8, seed=1),
            # SFT (r 64) + GRPO (r 8), stacked and padded to rank 128, as the quickstart serves
            "dispersed": stack_adapters(sft, grpo, root / "dispersed" / "sft-grpo")}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with running_s3(tmp_path_factory.mktemp("s3")) as server, pytest.MonkeyPatch.context() as env:
        for key, value in server.env.items():  # the driver uploads as a user's shell would
            env.setenv(key, value)
        yield server


@pytest.fixture(scope="module")
def served(tiny_vlm, adapters, s3, ray_local):
    serve.shutdown()  # Serve keeps the HTTP options it first started with: ours, afresh
    agent = _agent(tiny_vlm, adapters, s3.create_bucket("policy"), s3.env, free_port())
    began = time.monotonic()
    models = deploy_vllm_policy(agent, [CONCENTRATED, DISPERSED, NOBODY],
                                start_timeout_s=START_TIMEOUT_S)
    print(f"vLLM app deployed and checked in {time.monotonic() - began:.0f} s: {models}")
    yield agent
    serve.shutdown()


@pytest.fixture(scope="module")
def transformers_engine(tiny_vlm, adapters):
    engine = TransformersEngine(str(tiny_vlm))
    for persona, folder in adapters.items():
        engine.load_adapter(persona, str(folder))
    return engine


def _greedy_transformers(engine, agent: AgentPolicySpec, persona, observation) -> str:
    history = [(item.observation, item.action) for item in HISTORY]
    prompt = decision_prompt(persona, observation, history, agent.prompt)
    return engine.generate([agent.adapter_key(persona.id)], [prompt], agent.generation)[0]


def _greedy_vllm(agent: AgentPolicySpec, persona, observation) -> str:
    return VllmPolicy(agent, persona).decide(observation, HISTORY).raw


@pytest.mark.timeout(START_TIMEOUT_S + 300)
def test_greedy_decisions_equal_the_transformers_engine(served, transformers_engine):
    answers = {}
    for persona in (NOBODY, CONCENTRATED, DISPERSED):
        for name, observation in (("text", TEXT), ("picture", PICTURE), ("blue", BLUE),
                                  ("bare", BARE)):
            ours = _greedy_vllm(served, persona, observation)
            theirs = _greedy_transformers(transformers_engine, served, persona, observation)
            assert ours == theirs, f"{persona.id}, {name}: vLLM {ours!r} != transformers {theirs!r}"
            answers[persona.id, name] = ours
    # The untrained base answers blank lines (seen 2026-12-07); each adapter must change that.
    for persona in ("concentrated", "dispersed"):  # each adapter really served
        assert answers[persona, "text"] != answers["nobody", "text"], persona
    # The frame reaches the model (the untrained base is blind to everything, so the adapters
    # show it): the same text with and without a frame, and frames of two colours, differ.
    adapted = ("concentrated", "dispersed")
    assert any(answers[p, "picture"] != answers[p, "bare"] for p in adapted)
    assert any(answers[p, "picture"] != answers[p, "blue"] for p in adapted)


def test_the_watch_constraint_travels_as_structured_output(served):
    constrained = served.model_copy(update={"generation": served.generation.model_copy(
        update={"constrain_watch": True, "temperature": 1.0, "max_new_tokens": 32})})
    import re

    pattern = re.compile(watch_regex(), re.DOTALL)
    for persona in (CONCENTRATED, DISPERSED):
        raw = VllmPolicy(constrained, persona).decide(TEXT, HISTORY).raw
        assert pattern.fullmatch(raw), raw


def _llm_replicas() -> list[str]:
    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a["namespace"] == "serve" and APP in a["name"] and "LLMServer" in a["name"]]


@pytest.mark.timeout(START_TIMEOUT_S + 300)
def test_a_killed_replica_loses_no_decision(served):
    expected = [_greedy_vllm(served, persona, TEXT) for persona in (CONCENTRATED, DISPERSED)]
    replicas = wait_for(_llm_replicas, 30, what="the LLMServer replica")
    answers: list[str] = []
    errors: list[BaseException] = []

    def decide_through_the_kill() -> None:
        try:
            for _ in range(3):
                answers.extend(_greedy_vllm(served, p, TEXT) for p in (CONCENTRATED, DISPERSED))
        except BaseException as error:  # noqa: BLE001 - reported below, as the test's failure
            errors.append(error)

    for name in replicas:
        ray.kill(ray.get_actor(name, namespace="serve"))
    worker = threading.Thread(target=decide_through_the_kill)
    worker.start()
    worker.join(timeout=START_TIMEOUT_S + 120)
    assert not worker.is_alive() and not errors, errors
    assert answers == expected * 3  # every decision made, the same as before the kill
    assert set(_llm_replicas()).isdisjoint(replicas)  # a new replica answered


def test_an_adapter_above_max_lora_rank_is_refused_before_upload(served, adapters):
    small = served.model_copy(update={"engine": served.engine.model_copy(
        update={"max_lora_rank": 64})})
    with pytest.raises(AdapterError, match="persona 'dispersed'.*rank 128 above max_lora_rank 64"):
        upload_adapters(small, vllm_spec_of(small))


@pytest.mark.timeout(300)
def test_an_adapter_for_another_base_is_named_at_deploy(served, tmp_path):
    """Loaded only when first asked for, so only a real decision at deploy finds it."""
    from bubblescope.trainer.tiny_corpus import tiny_corpus
    from bubblescope.trainer.tiny_model import TinyModelConfig, build_tiny_model

    other = build_tiny_model(tmp_path / "wider", tiny_corpus(catalogue_step=400),
                             TinyModelConfig(hidden_size=128, heads=4))
    stranger = random_adapter(other, tmp_path / "adapters" / "concentrated" / "wide", r=8,
                              seed=4)
    agent = served.model_copy(update={"adapters": {"concentrated": str(stranger)},
                                      "decide_timeout_s": 30.0})
    upload_adapters(agent, vllm_spec_of(agent))
    with pytest.raises(VllmDeployError) as caught:
        check_decisions(agent, [CONCENTRATED])
    message = str(caught.value)
    assert "concentrated--wide" in message and "\n" not in message
