"""The vLLM client on a fake OpenAI server (the wire faked, not the call): what a request
holds, which failures are retried within decide_timeout_s, and the deploy checks' one-line
errors. The real engine: tests/integration/test_vllm_engine.py."""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from bubblescope.actors.loader import make_policy
from bubblescope.agent.errors import PolicyUnavailable
from bubblescope.agent.serve_client import AgentPolicy
from bubblescope.agent.spec import AgentPolicySpec, ServedAgentPolicySpec, VllmEngineSpec
from bubblescope.agent.vllm_client import VllmPolicy, model_name
from bubblescope.agent.watch_constraint import watch_regex
from bubblescope.contracts import Frame, Observation
from bubblescope.personas.loader import load_persona
from bubblescope.serve.errors import VllmDeployError
from bubblescope.serve.vllm_app import vllm_spec_of
from bubblescope.serve.vllm_deploy import check_decisions, wait_running
from tests.conftest import EXAMPLES

PERSONA = load_persona(EXAMPLES / "personas" / "concentrated.yaml")
NOBODY = PERSONA.model_copy(update={"id": "nobody"})
ANSWER = "Noodles, Food.\n```python\nwatch(4.5)\nlike()\n```"


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (30, 60), (9, 99, 199)).save(buffer, format="PNG")
    return buffer.getvalue()


SCREEN = Observation(device_time=datetime(2026, 1, 1, tzinfo=UTC), video_duration_s=20.0,
                     on_screen_text="Cooking noodles\n@chef",
                     frames=(Frame(pts_s=0, width=30, height=60, format="png", data=_png()),))


class FakeOpenAI(BaseHTTPRequestHandler):
    """Answers each POST with the next of `script` (status, body), the last one repeated."""

    script: list[tuple[int, dict]] = []
    bodies: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        status, body = self.script[min(len(self.bodies), len(self.script)) - 1]
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def _reply(text: str) -> tuple[int, dict]:
    return 200, {"choices": [{"message": {"role": "assistant", "content": text}}]}


@contextmanager
def fake_openai(*script: tuple[int, dict]) -> Iterator[tuple[str, type[FakeOpenAI]]]:
    handler = type("Handler", (FakeOpenAI,), {"script": list(script), "bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    finally:
        server.shutdown()
        server.server_close()


def _agent(endpoint: str, **changes) -> AgentPolicySpec:
    data = {"base_model": "/models/tiny", "adapters": {"concentrated": "/adapters/c/sft-grpo"},
            "generation": {"temperature": 0, "max_new_tokens": 16},
            "prompt": {"frames": 1, "frame_edge": 112, "history": 0},
            "decide_timeout_s": 3, "engine": {"kind": "vllm", "adapters_dir": "s3://b/a",
                                              "endpoint": endpoint}}
    data.update(changes)
    return AgentPolicySpec.model_validate(data)


def test_a_decision_is_one_chat_request_with_the_frame_in_place():
    with fake_openai(_reply(ANSWER)) as (url, handler):
        action = VllmPolicy(_agent(url), PERSONA).decide(SCREEN, ())
    assert action.watch_s == 4.5 and action.like and action.format_ok
    (body,) = handler.bodies
    assert body["model"] == "bubblescope-policy:concentrated--sft-grpo"
    assert (body["max_tokens"], body["temperature"]) == (16, 0)
    assert "structured_outputs" not in body
    system, user = body["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    kinds = [part["type"] for part in user["content"]]
    assert kinds == ["text", "image_url", "text"]  # where the prompt puts its image
    assert user["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "Cooking noodles" in user["content"][2]["text"]


def test_a_persona_without_adapter_asks_the_base_model_and_constraints_travel():
    agent = _agent("http://x/v1", generation={"constrain_watch": True})
    assert model_name(agent, "nobody") == "bubblescope-policy"
    with fake_openai(_reply("watch(")) as (url, handler):
        action = VllmPolicy(_agent(url, generation={"constrain_watch": True}), NOBODY).decide(
            SCREEN, ())
    assert not action.format_ok  # an answer that does not parse is counted, not hidden
    assert action.watch_s == PERSONA.stats.duration.median
    assert handler.bodies[0]["structured_outputs"] == {"regex": watch_regex()}


def test_serving_failures_are_retried_within_the_deadline():
    with fake_openai((503, {"error": "replica restarting"}), (500, {"error": "died"}),
                     _reply(ANSWER)) as (url, handler):
        action = VllmPolicy(_agent(url, decide_timeout_s=10), PERSONA).decide(SCREEN, ())
    assert action.watch_s == 4.5 and len(handler.bodies) == 3


def test_a_dead_endpoint_names_itself_after_the_deadline():
    with fake_openai((503, {"error": "down"})) as (url, handler), \
            pytest.raises(PolicyUnavailable) as caught:
        VllmPolicy(_agent(url, decide_timeout_s=2), PERSONA).decide(SCREEN, ())
    message = str(caught.value)
    assert url in message and "within 2 s" in message and "\n" not in message
    assert len(handler.bodies) >= 2  # retried, then given up


def test_a_refused_adapter_fails_at_once_naming_it():
    refusal = (400, {"error": {"message": "LoRA rank 256 is greater than max_lora_rank 128"}})
    with fake_openai(refusal) as (url, handler), pytest.raises(PolicyUnavailable) as caught:
        VllmPolicy(_agent(url, decide_timeout_s=30), PERSONA).decide(SCREEN, ())
    message = str(caught.value)
    assert "concentrated--sft-grpo" in message and "max_lora_rank 128" in message
    assert "HTTP 400" in message and len(handler.bodies) == 1


def test_deploy_check_sends_a_real_decision_and_names_the_adapter():
    """An engine that passes /health and then dies at its first request is found at deploy."""
    with fake_openai((500, {"error": "Unsupported CPU attention configuration"})) as (url, _), \
            pytest.raises(VllmDeployError) as caught:
        check_decisions(_agent(url, decide_timeout_s=1), [PERSONA])
    assert "deploy check" in str(caught.value) and "concentrated--sft-grpo" in str(caught.value)
    with fake_openai(_reply(ANSWER)) as (url, handler):
        answers = check_decisions(_agent(url), [PERSONA, NOBODY])
    assert answers == {"concentrated": ANSWER, "nobody": ANSWER}
    assert [b["model"] for b in handler.bodies] == ["bubblescope-policy:concentrated--sft-grpo",
                                                    "bubblescope-policy"]


def test_an_engine_that_cannot_start_is_one_line():
    def failed(_name):
        return "DEPLOY_FAILED", "ModuleNotFoundError: No module named 'llguidance'"

    with pytest.raises(VllmDeployError, match="cannot start: ModuleNotFoundError") as caught:
        wait_running("app", 5, "http://h/app/v1", status=failed)
    assert "http://h/app/v1" in str(caught.value)
    with pytest.raises(VllmDeployError, match="did not start within 0.1 s"):
        wait_running("app", 0.1, "http://h/app/v1", status=lambda _n: ("DEPLOYING", ""))


def test_the_loader_picks_the_client_by_engine():
    vllm = ServedAgentPolicySpec(kind="agent", agent=_agent("http://h/v1"))
    assert isinstance(make_policy(vllm, PERSONA, 0), VllmPolicy)
    ours = ServedAgentPolicySpec(kind="agent", agent=AgentPolicySpec(base_model="/m"))
    assert isinstance(make_policy(ours, PERSONA, 0), AgentPolicy)


def test_engine_specs():
    plain = AgentPolicySpec.model_validate({"base_model": "/m", "engine": {}})
    assert plain.engine.kind == "transformers"
    with pytest.raises(ValueError, match="set classify to false"):
        _agent("http://h/v1", classify=True)
    agent = _agent("http://h/v1")
    assert isinstance(agent.engine, VllmEngineSpec)
    spec = vllm_spec_of(agent)
    assert (spec.base_model, spec.frame_edge, spec.adapters_dir) == ("/models/tiny", 112,
                                                                     "s3://b/a")
    assert re.fullmatch(watch_regex(), "x ```python\nwatch(12.5)\n```", re.DOTALL)
