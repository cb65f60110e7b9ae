"""Deploying a job's agent on vLLM behind Ray Serve LLM, and proving it answers.

`deploy_vllm_policy` does what `deploy_policy` does for our policy app, for engine kind vllm:
the job's adapters are exported flat (`export_adapter_folders`, which refuses what vLLM would
only refuse at the first request: a rank above max_lora_rank, DoRA, saved modules) and
uploaded to the engine's cloud folder, the OpenAI app is started on Serve under
`/<app_name>`, and its start is awaited with a deadline. Then every persona's real decision
is asked once, through the client the device actors use (`VllmPolicy`): a healthy `/health`
proves nothing (an engine can pass it and die at its first request; an adapter for another
base loads only when first asked for). Each failure is one line naming the adapter or the
endpoint.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bubblescope.agent.errors import AgentError
from bubblescope.agent.spec import AgentPolicySpec
from bubblescope.agent.vllm_client import VllmPolicy, base_url, model_name
from bubblescope.contracts import Observation
from bubblescope.personas.schema import Persona
from bubblescope.serve.errors import VllmDeployError, VllmUnavailable
from bubblescope.serve.vllm_app import (
    VllmPolicySpec,
    build_vllm_app,
    export_adapter_folders,
    vllm_spec_of,
)

_ERROR_LINE = re.compile(r"\b([A-Za-z_][\w.]*(?:Error|Exception)): ([^\n|]+)")
START_TIMEOUT_S = 900.0  # an engine start: 35-65 s for the tiny model on 2 CPUs, minutes for 7B
POLL_S = 1.0
# The decision asked of every persona at deploy: a short video, nothing on screen but text.
PROBE = Observation(device_time=datetime(2026, 1, 1, tzinfo=UTC), on_screen_text="deploy check",
                    video_duration_s=10.0)


def upload_adapters(agent: AgentPolicySpec, spec: VllmPolicySpec) -> dict[str, str]:
    """The job's adapters, checked and laid out flat, copied into the engine's cloud folder;
    returns {persona: adapter id}."""
    try:
        from ray.llm._internal.common.utils.cloud_utils import CloudFileSystem
    except ImportError as error:
        raise VllmUnavailable(f"uploading adapters needs Ray Serve LLM ({error})") from error
    with tempfile.TemporaryDirectory(prefix="vllm-adapters-") as folder:
        ids = export_adapter_folders(agent.adapters, folder, max_lora_rank=spec.max_lora_rank)
        if not ids:
            return ids
        try:
            CloudFileSystem.upload_files(folder, spec.adapters_dir)
            present = {name.rstrip("/").rsplit("/", 1)[-1]
                       for name in CloudFileSystem.list_subfolders(spec.adapters_dir)}
        except Exception as error:  # the cloud SDK's own errors, of many kinds
            raise VllmDeployError(f"cannot upload the adapters to {spec.adapters_dir}: "
                                  f"{type(error).__name__}: {_first_line(error)}") from error
    missing = sorted(set(ids.values()) - present)
    if missing:
        raise VllmDeployError(f"adapters {missing} are not in {spec.adapters_dir} after the "
                              "upload; check the store's address and permissions")
    return ids


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [""])[0][:300]


def _app_status(name: str) -> tuple[str, str]:
    from ray import serve

    app = serve.status().applications.get(name)
    if app is None:
        return "NOT_STARTED", ""
    failing = [f"{d}: {s.message}" for d, s in app.deployments.items() if s.message]
    return str(app.status.value if hasattr(app.status, "value") else app.status), \
        _cause(" ".join([app.message, *failing]))


def _cause(message: str) -> str:
    """The last `SomeError: reason` in a replica's traceback (what went wrong, in one line),
    else the message's start."""
    found = _ERROR_LINE.findall(message)
    if found:
        name, reason = found[-1]
        return f"{name}: {' '.join(reason.split())[:300]}"
    return " ".join(message.split())[:300]


def wait_running(name: str, timeout_s: float, where: str,
                 status: Callable[[str], tuple[str, str]] = _app_status) -> None:
    """Until the app is RUNNING; a failed deploy or the deadline is a VllmDeployError."""
    deadline = time.monotonic() + timeout_s
    while True:
        state, message = status(name)
        if state == "RUNNING":
            return
        if state in ("DEPLOY_FAILED", "UNHEALTHY"):
            raise VllmDeployError(f"the vLLM engine at {where} cannot start: {message}")
        if time.monotonic() >= deadline:
            raise VllmDeployError(f"the vLLM engine at {where} did not start within "
                                  f"{timeout_s:g} s ({state}: {message})")
        time.sleep(POLL_S)


def check_decisions(agent: AgentPolicySpec, personas: list[Persona]) -> dict[str, str]:
    """One real decision per persona, as the device actors will ask it; {persona: raw answer}
    or a VllmDeployError naming the persona's adapter and the endpoint."""
    answers = {}
    for persona in personas:
        try:
            answers[persona.id] = VllmPolicy(agent, persona).decide(PROBE, ()).raw
        except AgentError as error:
            raise VllmDeployError(f"deploy check: {error}") from error
    return answers


def deploy_vllm_policy(agent: AgentPolicySpec, personas: list[Persona],
                       start_timeout_s: float = START_TIMEOUT_S) -> dict[str, str]:
    """Upload the adapters, start the OpenAI app on Serve, wait for it, ask every persona
    once; returns {persona: served model name}."""
    from ray import serve

    spec = vllm_spec_of(agent)
    upload_adapters(agent, spec)
    app = build_vllm_app(spec)
    port = agent.deployment.http_port
    if port is None and spec.endpoint is None:
        raise VllmDeployError("engine kind vllm is reached over HTTP: set "
                              "policy.agent.deployment.http_port")
    serve.start(http_options={"host": "127.0.0.1", "port": port or 8000})
    name = agent.deployment.app_name
    # Serve's public run waits for RUNNING without a deadline; its non-blocking form returns at
    # once, and wait_running keeps the deadline.
    serve._run(app, name=name, route_prefix=f"/{name}", _blocking=False)
    wait_running(name, start_timeout_s, base_url(agent))
    check_decisions(agent, personas)
    return {persona.id: model_name(agent, persona.id) for persona in personas}
