"""The quickstart trains its personas' adapters side by side: chains of steps, each in order,
several chains at once, a cached step skipped, a failed chain leaving the others to finish."""

from __future__ import annotations

import threading

import pytest

from bubblescope.trainer.quickstart import run_side_by_side


def _recording(log: list[str], name: str, action=None):
    def make() -> None:
        if action:
            action()
        log.append(name)
    return make


def test_chains_run_at_once_and_each_in_order():
    both_started = threading.Barrier(2, timeout=30)  # broken if the chains ran one by one
    log: list[str] = []
    chains = [[(f"{who} sft", lambda: False, _recording(log, f"{who} sft", both_started.wait)),
               (f"{who} grpo", lambda: False, _recording(log, f"{who} grpo"))]
              for who in ("a", "b")]
    run_side_by_side(chains, at_once=2, say=lambda _line: None)
    for who in ("a", "b"):
        assert log.index(f"{who} sft") < log.index(f"{who} grpo")
    assert sorted(log) == ["a grpo", "a sft", "b grpo", "b sft"]


def test_a_step_is_asked_whether_it_is_cached_only_when_its_turn_comes():
    made: list[str] = []
    said: list[str] = []
    chain = [("sft", lambda: False, lambda: made.append("sft")),
             ("sft+grpo", lambda: "sft" in made, lambda: made.append("sft+grpo"))]
    run_side_by_side([chain], at_once=1, say=said.append)
    assert made == ["sft"] and said == ["training: sft ...", "cached: sft+grpo"]


def test_a_failed_chain_lets_the_others_finish_then_raises():
    log: list[str] = []

    def fail() -> None:
        raise RuntimeError("persona a: out of memory")

    chains = [[("a sft", lambda: False, fail), ("a grpo", lambda: False,
                                                  _recording(log, "a grpo"))],
              [("b sft", lambda: False, _recording(log, "b sft")),
               ("b grpo", lambda: False, _recording(log, "b grpo"))]]
    with pytest.raises(RuntimeError, match="persona a: out of memory"):
        run_side_by_side(chains, at_once=1, say=lambda _line: None)
    assert log == ["b sft", "b grpo"]  # a's later step is not run on a missing adapter
