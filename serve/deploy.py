"""Deploying a job's agent on the engine its spec names: the one entry `serve up` and an
audit use. Engine kind transformers is our policy app (`policy_app.deploy_policy`); kind vllm
is vLLM behind Ray Serve LLM (`vllm_deploy.deploy_vllm_policy`), checked with a real decision
per persona before any device asks."""

from __future__ import annotations

from bubblescope.agent.spec import AgentPolicySpec, VllmEngineSpec
from bubblescope.personas.schema import Persona


def deploy_agent(agent: AgentPolicySpec, personas: list[Persona]) -> None:
    """Start (or update) the app serving `agent`, ready for the device actors."""
    if isinstance(agent.engine, VllmEngineSpec):
        from bubblescope.serve.vllm_deploy import deploy_vllm_policy

        deploy_vllm_policy(agent, personas)
        return
    from bubblescope.serve.policy_app import deploy_policy

    deploy_policy(agent, personas)


def http_address(agent: AgentPolicySpec) -> str | None:
    """Where the app answers over HTTP on this cluster, if it does."""
    if isinstance(agent.engine, VllmEngineSpec):
        from bubblescope.agent.vllm_client import base_url

        return base_url(agent) + "/chat/completions"
    port = agent.deployment.http_port
    return f"http://127.0.0.1:{port}/{agent.deployment.app_name}" if port else None


def policy_cpus(agent: AgentPolicySpec) -> float:
    """Logical CPUs the serving app takes from the cluster (so fewer devices fit beside it)."""
    if isinstance(agent.engine, VllmEngineSpec):
        engine = agent.engine
        return engine.max_replicas * engine.cpus_per_replica if engine.device == "cpu" else 0.0
    return agent.deployment.most_replicas * agent.deployment.cpus_per_replica
