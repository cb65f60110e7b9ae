"""The agent policy on vLLM behind Ray Serve LLM, as a device actor reaches it: its OpenAI API.

The same `ServedPolicy` as the policy app's client (request, retries within
`decide_timeout_s`, parsing, the persona's median watch time when an answer does not parse),
with another transport: the decision prompt (`agent/prompt.py`, as trained) becomes one OpenAI
chat request, each frame a PNG `image_url` in the place the prompt puts it; the persona's
adapter is the request's `model` (`<model_id>:<persona>--<adapter name>`), which Ray Serve LLM
loads at run time from the engine's cloud folder; `generation.constrain_watch` becomes vLLM's
structured output (a regex over the whole answer, `watch_regex`).

Failures: no connection, a timeout, or a 5xx (a replica dying, Serve starting its
replacement) is retried; a 4xx (an adapter vLLM refuses, a request too long) is the engine
refusing this request on purpose, and fails at once with one line naming the adapter and the
endpoint.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bubblescope.agent.errors import PolicyUnavailable
from bubblescope.agent.prompt import Prompt, decision_prompt
from bubblescope.agent.serve_client import ServedPolicy
from bubblescope.agent.spec import AgentPolicySpec, VllmEngineSpec
from bubblescope.agent.watch_constraint import watch_regex
from bubblescope.agent.wire import DecideRequest
from bubblescope.personas.schema import Persona

ADAPTER_SEPARATOR = "--"


def vllm_engine(spec: AgentPolicySpec) -> VllmEngineSpec:
    if not isinstance(spec.engine, VllmEngineSpec):
        raise TypeError(f"engine kind {spec.engine.kind!r} is not vllm")
    return spec.engine


def served_adapter_id(persona: str, folder: str | Path) -> str:
    """The adapter's id under the engine's adapters_dir: `<persona>--<folder name>`."""
    return f"{persona}{ADAPTER_SEPARATOR}{Path(folder).name}"


def model_name(spec: AgentPolicySpec, persona: str) -> str:
    """The OpenAI `model` of `persona`'s decisions: its adapter, or the base model alone."""
    engine = vllm_engine(spec)
    folder = spec.adapters.get(persona)
    return engine.model_id if folder is None \
        else f"{engine.model_id}:{served_adapter_id(persona, folder)}"


def base_url(spec: AgentPolicySpec) -> str:
    """The OpenAI API root the device actors call (see VllmEngineSpec.endpoint)."""
    engine = vllm_engine(spec)
    if engine.endpoint:
        return engine.endpoint.rstrip("/")
    port = spec.deployment.http_port
    if port is None:
        raise PolicyUnavailable("engine kind vllm is reached over HTTP: set "
                                "policy.agent.deployment.http_port or policy.agent.engine.endpoint")
    return f"http://127.0.0.1:{port}/{spec.deployment.app_name}/v1"


def _image_part(image) -> dict:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # lossless: vLLM sees the pixels transformers would
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}


def chat_messages(prompt: Prompt) -> list[dict]:
    """The prompt's messages in OpenAI's chat format, images in their placeholders' places."""
    images = iter(prompt.images)
    messages = []
    for message in prompt.messages:
        parts = [_image_part(next(images)) if part["type"] == "image"
                 else {"type": "text", "text": part["text"]} for part in message["content"]]
        messages.append({"role": message["role"], "content": parts})
    return messages


def chat_body(spec: AgentPolicySpec, model: str, prompt: Prompt) -> dict[str, Any]:
    """One chat completion request: the prompt, the generation settings, the constraint."""
    generation = spec.generation
    body: dict[str, Any] = {"model": model, "messages": chat_messages(prompt),
                            "max_tokens": generation.max_new_tokens,
                            "temperature": generation.temperature, "top_p": generation.top_p}
    if generation.constrain_watch:
        body["structured_outputs"] = {"regex": watch_regex()}
    return body


class RefusedRequest(Exception):
    """The engine answered 4xx: it refuses this request, and would refuse it again."""


def post_json(url: str, body: dict, timeout_s: float) -> dict:
    """POST `body` as JSON; the decoded answer, RefusedRequest on a 4xx, or the transport's
    own error (URLError, HTTPError 5xx, a timeout) for the caller to retry."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        if 400 <= error.code < 500:
            detail = error.read().decode("utf-8", "replace")
            raise RefusedRequest(f"HTTP {error.code}: {' '.join(detail.split())[:300]}") \
                from error
        raise


class VllmPolicy(ServedPolicy):
    """The persona's decisions from vLLM behind Ray Serve LLM (engine kind vllm)."""

    def __init__(self, spec: AgentPolicySpec, persona: Persona) -> None:
        super().__init__(spec, persona)
        self.model = model_name(spec, persona.id)
        self.url = base_url(spec) + "/chat/completions"

    @property
    def endpoint(self) -> str:
        return f"vLLM at {self.url} (model {self.model})"

    def _once(self, request: DecideRequest, timeout_s: float) -> str:
        history = [(view.observation, view.action) for view in request.history]
        prompt = decision_prompt(self.persona, request.observation, history, self.spec.prompt)
        try:
            reply = post_json(self.url, chat_body(self.spec, self.model, prompt), timeout_s)
        except RefusedRequest as error:
            raise PolicyUnavailable(f"persona {self.persona.id!r}: {self.endpoint} refuses "
                                    f"the request ({error})") from error
        return str(reply["choices"][0]["message"]["content"] or "")

    def _retryable(self, error: Exception) -> bool:
        return isinstance(error, urllib.error.URLError | socket.timeout | TimeoutError
                          | ConnectionError | json.JSONDecodeError)
