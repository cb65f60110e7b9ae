"""An adapter Serve evicts while a batch that uses it is being generated: it is unloaded only
after, at the next engine call that does not need it, and a batch never runs on an adapter
an earlier eviction already unloaded."""

from __future__ import annotations

import asyncio

from bubblescope.agent.prompt import Prompt
from bubblescope.agent.spec import AgentPolicySpec
from bubblescope.serve.engine import EchoEngine
from bubblescope.serve.policy_app import PolicyServer

SPEC = AgentPolicySpec.model_validate({
    "base_model": "/models/none", "adapters": {k: f"/adapters/{k}" for k in "abc"},
    "deployment": {"batch_wait_s": 0}}).model_dump(mode="json")


class WatchfulEngine(EchoEngine):
    """Fails a generation whose adapter is not loaded, as a real engine would."""

    def __init__(self, base_model: str) -> None:
        super().__init__(base_model)
        self.server: PolicyServer | None = None
        self.generated: list[list[str]] = []

    def generate(self, keys, prompts, generation):
        missing = [key for key in keys if key and key not in self.adapters]
        assert not missing, f"generating with unloaded adapters {missing}"
        self.generated.append(list(keys))
        return super().generate(keys, prompts, generation)


def _prompt() -> Prompt:
    return Prompt(messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}])


def test_an_adapter_evicted_mid_batch_is_unloaded_only_after() -> None:
    async def scenario() -> None:
        server = PolicyServer(SPEC, {}, WatchfulEngine)
        engine = server.engine
        lease_a = await server.get_adapter("a")
        lease_b = await server.get_adapter("b")
        lease_a.__del__()  # Serve evicts a ...
        assert "a" in engine.loaded()  # ... but nothing has run yet that could unload it
        await server._generate([("a", _prompt()), ("", _prompt())])  # a batch still using a
        assert "a" in engine.loaded()
        await server._generate([("b", _prompt())])
        assert engine.loaded() == ["b"]  # the first call without a unloads it
        lease_a.__del__()  # Python collects the lease: no second release
        assert server.churn.take() == (2, 1) and not lease_b.released

    asyncio.run(scenario())


def test_a_batch_reloads_an_adapter_an_eviction_already_unloaded() -> None:
    async def scenario() -> None:
        server = PolicyServer(SPEC, {}, WatchfulEngine)
        lease_c = await server.get_adapter("c")
        lease_c.__del__()
        await server._generate([("", _prompt())])  # c is unloaded here
        assert "c" not in server.engine.loaded()
        await server._generate([("c", _prompt())])  # a request that got c before the eviction
        assert server.engine.generated[-1] == ["c"] and "c" in server.engine.loaded()
        assert server.churn.take() == (2, 1)

    asyncio.run(scenario())
