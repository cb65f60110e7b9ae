"""Constrained decoding of the one number an answer must get right: the argument of `watch(`.

With `generation.constrain_watch`, once a sampled answer has written `watch(`, only tokens that
keep its argument in the canonical shape (`format_seconds`: up to four digits, a point, one
digit, then `)`) may follow; the model's own probabilities choose among them. Everything else
in the answer is sampled freely, so malformed answers still happen and are still counted.
Small models trained from scratch otherwise write numbers such as `3.7.8` that no parser
should guess at; production engines offer the same through structured outputs (vLLM's guided
decoding), and this is that idea for the one field that matters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OPEN = "watch("
MAX_INTEGER_DIGITS = 4  # 9999.9 s: longer than any video twice through

_INTEGER = re.compile(rf"\d{{1,{MAX_INTEGER_DIGITS}}}")
_POINT = re.compile(rf"\d{{1,{MAX_INTEGER_DIGITS}}}\.")
_DONE = re.compile(rf"\d{{1,{MAX_INTEGER_DIGITS}}}\.\d")
_CLOSE = re.compile(r"\)\s*")


def allowed_next(generated: str) -> frozenset[str] | None:
    """Which kinds of token may come next ('digit', 'point', 'close'), or None when the answer
    is not inside a `watch(` argument (or its argument is already malformed: left alone)."""
    start = generated.rfind(OPEN)
    if start < 0:
        return None
    argument = generated[start + len(OPEN):]
    if ")" in argument:
        return None
    if argument == "":
        return frozenset({"digit"})
    if _INTEGER.fullmatch(argument):
        return frozenset({"digit", "point"} if len(argument) < MAX_INTEGER_DIGITS
                         else {"point"})
    if _POINT.fullmatch(argument):
        return frozenset({"digit"})
    if _DONE.fullmatch(argument):
        return frozenset({"close"})
    return None


@dataclass(frozen=True)
class TokenKinds:
    """Token ids by kind, read off the vocabulary once: single digits, the point, and tokens
    that close the call (`)` with nothing but whitespace after it)."""

    digit: tuple[int, ...]
    point: tuple[int, ...]
    close: tuple[int, ...]

    @classmethod
    def of(cls, tokenizer) -> TokenKinds:
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        return cls(digit=tuple(i for i, t in enumerate(texts) if len(t) == 1 and t.isdigit()),
                   point=tuple(i for i, t in enumerate(texts) if t == "."),
                   close=tuple(i for i, t in enumerate(texts) if _CLOSE.fullmatch(t)))


class WatchConstraint:
    """A transformers logits processor: for each row inside a `watch(` argument, every token
    but the allowed ones gets probability zero."""

    def __init__(self, tokenizer, kinds: TokenKinds, prompt_width: int) -> None:
        self.tokenizer, self.kinds, self.prompt_width = tokenizer, kinds, prompt_width

    def __call__(self, input_ids, scores):
        import torch

        generated = self.tokenizer.batch_decode(input_ids[:, self.prompt_width:],
                                                skip_special_tokens=True)
        for row, text in enumerate(generated):
            kinds = allowed_next(text)
            if kinds is None:
                continue
            allowed = [i for kind in kinds for i in getattr(self.kinds, kind)]
            if not allowed:  # a vocabulary without such tokens: nothing to constrain with
                continue
            keep = torch.full_like(scores[row], float("-inf"))
            keep[allowed] = 0.0
            scores[row] = scores[row] + keep
        return scores


def watch_regex() -> str:
    """The same constraint as a regular expression over the whole answer, for engines whose
    structured outputs take one (vLLM's `structured_outputs.regex`): any text, in which every
    `watch(` is followed by a canonical number and `)`. Written without lookarounds, which
    guided decoders do not take: the states of matching "watch(" spelled out (after "w",
    "wa", ..., "watch"), each left on a letter that breaks the match."""
    number = rf"\d{{1,{MAX_INTEGER_DIGITS}}}\.\d\)"
    partial = ("", "a", "at", "atc", "atch")  # what follows "w" when the match is broken
    restart = "|".join(f"{p}w" for p in partial)  # a new "w" starts the match again
    breaks = "|".join(f"{p}[^w{OPEN[len(p) + 1]}]" for p in partial)
    inside = rf"(?:{restart})*(?:{breaks}|atch\({number})"
    tail = "(?:w(?:" + restart + ")*(?:a(?:t(?:c(?:h)?)?)?)?)?"
    return rf"(?:[^w]|w{inside})*{tail}"
