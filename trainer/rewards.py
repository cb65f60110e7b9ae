"""PersonaAct's rewards for GRPO: R = R_action + R_duration + R_format, each within [0, 1].

The plain functions score one answer against the logged human action; the callable classes
wrap them in TRL's reward-function protocol (`f(prompts=..., completions=..., **columns)`), and
are classes rather than closures so Ray can pickle them into training workers. Every completion
is read with `parse_action`, the same parser the serving agent uses, so the policy is rewarded
for exactly the behaviour it will show at audit time.

Choices the paper leaves open, made here on purpose:

* `action_f1` with neither side engaging is 1.0: skipping a video the persona also skipped is
  perfect agreement, and it is the most common case in the logs.
* An answer with no code block earns 0 action reward: nothing was read from it, and otherwise
  blank or rambling answers would collect the full reward on every no-engagement target.
* `duration_reward` divides by max(target, `EPS_S`) so targets near 0 s do not turn a tenth of a
  second of error into a zero reward; a negative or non-finite prediction or target scores 0.
* The duration reward uses the model's own watch call (salvaged or in the block); an answer
  that never states a valid watch time scores 0 rather than the caller's fallback.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bubblescope.agent.action_grammar import ParsedAction, parse_action
from bubblescope.contracts import Action

EPS_S = 0.5  # seconds; the denominator floor of the duration reward


def _engagements(action: Action) -> set[str]:
    present = {"like": action.like, "comment": action.comment is not None,
               "share": action.share is not None}
    return {name for name, done in present.items() if done}


def action_f1(predicted: Action, target: Action) -> float:
    """F1 over {like, comment, share}; 1.0 when neither side engages (see the module notes)."""
    guess, truth = _engagements(predicted), _engagements(target)
    if not guess and not truth:
        return 1.0
    return 2 * len(guess & truth) / (len(guess) + len(truth))


def duration_reward(predicted_s: float, target_s: float) -> float:
    """1 - min(1, |d - d_hat| / max(d, EPS_S)): 1 for an exact watch time, 0 at double or worse."""
    values_ok = all(math.isfinite(v) and v >= 0 for v in (predicted_s, target_s))
    if not values_ok:
        return 0.0
    return 1.0 - min(1.0, abs(target_s - predicted_s) / max(target_s, EPS_S))


def format_reward(parsed_ok: bool) -> float:
    return 1.0 if parsed_ok else 0.0


def _scores(parsed: ParsedAction, target: Action) -> tuple[float, float, float]:
    """(action, duration, format) rewards of one parsed answer."""
    engaged = action_f1(parsed.action, target) if parsed.has_block else 0.0
    stated_watch = parsed.watch_source != "fallback"
    timed = duration_reward(parsed.action.watch_s, target.watch_s) if stated_watch else 0.0
    return engaged, timed, format_reward(parsed.format_ok)


def total_reward(raw: str, target: Action, fallback_watch_s: float) -> float:
    """R = R_action + R_duration + R_format of one raw answer, within [0, 3]."""
    return sum(_scores(parse_action(raw, fallback_watch_s=fallback_watch_s), target))


def completion_text(completion: Any) -> str:
    """The answer text of a TRL completion: a string, or a list of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if not isinstance(completion, Sequence):
        return ""
    messages = [m for m in completion if isinstance(m, dict)]
    return "".join(_content_text(m.get("content")) for m in messages
                   if m.get("role", "assistant") == "assistant")


def _content_text(content: Any) -> str:
    """A message's text, whether plain or a list of typed parts as in multimodal chats."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text") or "" for part in content
                       if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def _target(watch_s: float, like: bool, comment: bool, share: bool) -> Action:
    # Only presence matters to the rewards, so the texts are placeholders.
    return Action(watch_s=max(float(watch_s), 0.0) if math.isfinite(watch_s) else 0.0,
                  like=bool(like), comment="" if comment else None, share="" if share else None)


class _CompletionReward:
    """A picklable TRL reward function returning one of the three rewards per completion."""

    component = 0
    name = ""

    def __init__(self) -> None:
        self.__name__ = self.name  # TRL labels its reward logs with `__name__`

    def __call__(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] = (),
        *,
        target_watch_s: Sequence[float],
        target_like: Sequence[bool],
        target_comment: Sequence[bool],
        target_share: Sequence[bool],
        fallback_watch_s: Sequence[float],
        **_: Any,
    ) -> list[float]:
        columns = zip(completions, target_watch_s, target_like, target_comment, target_share,
                      fallback_watch_s, strict=True)
        return [self._score(completion, target, fallback)
                for completion, *target, fallback in columns]

    def _score(self, completion: Any, target: list[Any], fallback: float) -> float:
        # The fallback never earns reward, so a broken column must not fail the batch either.
        fallback_s = float(fallback) if math.isfinite(fallback) and fallback >= 0 else 0.0
        parsed = parse_action(completion_text(completion), fallback_watch_s=fallback_s)
        return _scores(parsed, _target(*target))[self.component]


class ActionReward(_CompletionReward):
    component = 0
    name = "action_reward"


class DurationReward(_CompletionReward):
    component = 1
    name = "duration_reward"


class FormatReward(_CompletionReward):
    component = 2
    name = "format_reward"
