"""PersonaAct's rewards: the edge cases chosen in trainer/rewards.py, and TRL's calling protocol."""

from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bubblescope.agent.action_grammar import format_action
from bubblescope.contracts import Action
from bubblescope.trainer.rewards import (
    EPS_S,
    ActionReward,
    DurationReward,
    FormatReward,
    action_f1,
    completion_text,
    duration_reward,
    format_reward,
    total_reward,
)


def act(watch_s: float = 10.0, **engaged: bool) -> Action:
    return Action(watch_s=watch_s, like=engaged.get("like", False),
                  comment="x" if engaged.get("comment") else None,
                  share="mom" if engaged.get("share") else None)


@pytest.mark.parametrize(
    ("predicted", "target", "expected"),
    [
        ({}, {}, 1.0),
        ({"like": True}, {"like": True}, 1.0),
        ({"like": True}, {"like": True, "comment": True}, 2 / 3),
        ({"like": True, "comment": True}, {"like": True}, 2 / 3),
        ({"like": True, "share": True}, {"like": True, "comment": True}, 0.5),
        ({"like": True, "comment": True, "share": True}, {"share": True}, 0.5),
        ({"like": True}, {}, 0.0),
        ({}, {"comment": True}, 0.0),
        ({"like": True}, {"share": True}, 0.0),
    ],
)
def test_action_f1(predicted: dict, target: dict, expected: float) -> None:
    assert action_f1(act(**predicted), act(**target)) == pytest.approx(expected)


def test_an_empty_comment_still_counts_as_commenting() -> None:
    assert action_f1(Action(watch_s=1, comment=""), act(comment=True)) == 1.0


@pytest.mark.parametrize(
    ("predicted", "target", "expected"),
    [
        (10.0, 10.0, 1.0),
        (20.0, 10.0, 0.0),
        (30.0, 10.0, 0.0),
        (0.0, 10.0, 0.0),
        (7.5, 10.0, 0.75),
        (12.5, 10.0, 0.75),
        (0.0, 0.0, 1.0),
        (EPS_S / 2, 0.0, 0.5),
        (EPS_S, 0.0, 0.0),
        (0.1, 0.2, 0.8),
        (-1.0, 0.0, 0.0),
        (math.nan, 10.0, 0.0),
        (10.0, math.nan, 0.0),
        (math.inf, 10.0, 0.0),
        (10.0, math.inf, 0.0),
    ],
)
def test_duration_reward(predicted: float, target: float, expected: float) -> None:
    assert duration_reward(predicted, target) == pytest.approx(expected)


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True))
def test_duration_reward_is_always_within_unit_interval(predicted: float, target: float) -> None:
    reward = duration_reward(predicted, target)
    assert not math.isnan(reward) and 0.0 <= reward <= 1.0


def test_format_reward() -> None:
    assert (format_reward(True), format_reward(False)) == (1.0, 0.0)


def test_total_reward() -> None:
    target = act(10.0, like=True, comment=True)
    assert total_reward(format_action(target), target, fallback_watch_s=3.0) == 3.0
    half = format_action(act(5.0, like=True))
    assert total_reward(half, target, fallback_watch_s=3.0) == pytest.approx(2 / 3 + 0.5 + 1.0)
    assert total_reward("no idea", act(10.0), fallback_watch_s=10.0) == 0.0
    assert total_reward("I'd watch(10) it", act(10.0), fallback_watch_s=3.0) == 1.0


REWARDS = (ActionReward, DurationReward, FormatReward)
GOOD = "Video: cats\n\n```python\nwatch(10)\nlike()\n```"
MALFORMED = "I think this persona would enjoy it, and like it."
COLUMNS = {
    "target_watch_s": [10.0, 10.0],
    "target_like": [True, False],
    "target_comment": [False, False],
    "target_share": [False, False],
    "fallback_watch_s": [10.0, 10.0],
}


def call(reward, completions: list) -> list[float]:
    # TRL passes everything by keyword, plus extras such as trainer_state and completion_ids.
    return reward(prompts=["p"] * len(completions), completions=completions,
                  completion_ids=[[1]] * len(completions), trainer_state=None, **COLUMNS)


@pytest.mark.parametrize(
    ("reward_class", "expected"),
    [(ActionReward, [1.0, 0.0]), (DurationReward, [1.0, 0.0]), (FormatReward, [1.0, 0.0])],
)
def test_callables_score_plain_completions(reward_class, expected: list[float]) -> None:
    assert call(reward_class(), [GOOD, MALFORMED]) == expected


@pytest.mark.parametrize("reward_class", REWARDS)
def test_callables_accept_conversational_completions(reward_class) -> None:
    plain = call(reward_class(), [GOOD, MALFORMED])
    chat = [[{"role": "assistant", "content": GOOD}], [{"role": "assistant", "content": MALFORMED}]]
    parts = [[{"role": "assistant", "content": [{"type": "text", "text": GOOD}]}],
             [{"role": "assistant", "content": [{"type": "text", "text": MALFORMED}]}]]
    assert call(reward_class(), chat) == plain == call(reward_class(), parts)


@pytest.mark.parametrize("reward_class", REWARDS)
def test_callables_pickle_and_have_names(reward_class) -> None:
    reward = pickle.loads(pickle.dumps(reward_class()))
    assert reward.__name__ == reward_class.name and reward.__name__.endswith("_reward")
    assert call(reward, [GOOD, GOOD]) == call(reward_class(), [GOOD, GOOD])


def test_names_are_distinct_for_trl_logs() -> None:
    assert len({cls().__name__ for cls in REWARDS}) == 3


def test_malformed_completion_gets_no_format_or_duration_reward() -> None:
    # The fallback equals the target, so a reward from the fallback would show up as 1.0.
    scores = [call(cls(), [MALFORMED, ""])[0] for cls in REWARDS]
    assert scores == [0.0, 0.0, 0.0]
    no_watch = "```python\nlike()\n```"
    assert call(DurationReward(), [no_watch, no_watch]) == [0.0, 0.0]
    assert call(ActionReward(), [no_watch, no_watch]) == [1.0, 0.0]


def test_a_broken_fallback_column_does_not_fail_the_batch() -> None:
    columns = {**COLUMNS, "fallback_watch_s": [math.nan, -1.0]}
    rewards = FormatReward()(prompts=None, completions=[GOOD, MALFORMED], **columns)
    assert rewards == [1.0, 0.0]


def test_mismatched_column_lengths_are_an_error() -> None:
    with pytest.raises(ValueError):
        call(FormatReward(), [GOOD])


@pytest.mark.parametrize(
    ("completion", "text"),
    [
        ("abc", "abc"),
        ([{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}], "ab"),
        ({"role": "assistant", "content": "a"}, "a"),
        ([{"role": "tool", "content": "x"}, {"content": "y"}], "y"),
        ([{"role": "assistant", "content": None}], ""),
        (None, ""),
        (42, ""),
    ],
)
def test_completion_text(completion, text: str) -> None:
    assert completion_text(completion) == text
