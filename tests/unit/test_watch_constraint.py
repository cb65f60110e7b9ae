"""Constrained decoding of watch(): only well-formed numbers can be written."""

from __future__ import annotations

import pytest
import torch

from bubblescope.agent.action_grammar import parse_action
from bubblescope.agent.watch_constraint import TokenKinds, WatchConstraint, allowed_next


@pytest.mark.parametrize(("generated", "expected"), [
    ("Category: Food/Drinks\n\n```python\n", None),
    ("```python\nwatch(", {"digit"}),
    ("```python\nwatch(12", {"digit", "point"}),
    ("```python\nwatch(1234", {"point"}),
    ("```python\nwatch(12.", {"digit"}),
    ("```python\nwatch(12.3", {"close"}),
    ("```python\nwatch(12.3)\nlike()", None),
    ("```python\nwatch(x", None),  # already malformed: left to the parser to count
    ("watch(1.0)\nwatch(", {"digit"}),  # the latest call is the one being written
])
def test_states_of_the_watch_argument(generated, expected):
    allowed = allowed_next(generated)
    assert (allowed if allowed is None else set(allowed)) == expected


def _kept_ids(tokenizer, kinds, prompt: str, generated: str) -> list[int]:
    """The token ids the constraint leaves possible after `generated`."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    ids = torch.tensor([prompt_ids + tokenizer(generated)["input_ids"]])
    scores = torch.zeros(1, len(tokenizer))
    kept = WatchConstraint(tokenizer, kinds, len(prompt_ids))(ids, scores)
    return torch.nonzero(kept[0] > float("-inf")).flatten().tolist()


def _constrained_step(tokenizer, kinds, prompt: str, generated: str) -> set[str]:
    return {tokenizer.decode([i]) for i in _kept_ids(tokenizer, kinds, prompt, generated)}


def test_only_well_formed_numbers_can_follow(tiny_vlm):
    from bubblescope.agent.vlm import load_processor

    tokenizer = load_processor(tiny_vlm).tokenizer
    kinds = TokenKinds.of(tokenizer)
    assert len(kinds.digit) == 10 and kinds.point and kinds.close
    prompt = "<|im_start|>assistant\n"
    assert _constrained_step(tokenizer, kinds, prompt, "watch(") == set("0123456789")
    assert _constrained_step(tokenizer, kinds, prompt, "watch(12") == set("0123456789.")
    after_tenths = _constrained_step(tokenizer, kinds, prompt, "watch(12.3")
    assert after_tenths and all(text.startswith(")") and not text[1:].strip()
                                for text in after_tenths)
    assert len(_kept_ids(tokenizer, kinds, prompt, "like(")) == len(tokenizer)


def test_a_random_model_writes_only_numbers_inside_watch(tiny_vlm):
    """The real generate loop with the constraint, on a model that knows nothing: whatever
    it samples after `watch(` is a well-formed number, closed once it has its tenths."""
    import re

    from bubblescope.agent.vlm import load_model, load_processor

    tokenizer = load_processor(tiny_vlm).tokenizer
    model = load_model(tiny_vlm).eval()
    start = tokenizer("<|im_start|>assistant\n")["input_ids"]
    ids = torch.tensor([start + tokenizer("watch(")["input_ids"]] * 8)
    constraint = WatchConstraint(tokenizer, TokenKinds.of(tokenizer), len(start))
    torch.manual_seed(0)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             max_new_tokens=7, do_sample=True, temperature=1.0,
                             logits_processor=[constraint],
                             pad_token_id=tokenizer.pad_token_id)
    for row in tokenizer.batch_decode(out[:, len(start):], skip_special_tokens=True):
        argument = row.removeprefix("watch(")
        assert re.fullmatch(r"\d{1,4}(\.(\d(\).*)?)?)?", argument, re.S), row
        if ")" in argument:
            call = row.split(")")[0] + ")"
            parsed = parse_action(f"```python\n{call}\n```", fallback_watch_s=0)
            assert parsed.action.format_ok


def test_engine_takes_the_constraint_from_the_generation_spec(tiny_vlm):
    from bubblescope.agent.prompt import Prompt
    from bubblescope.agent.spec import GenerationSpec
    from bubblescope.serve.engine import TransformersEngine

    engine = TransformersEngine(str(tiny_vlm))
    prompt = Prompt(messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    answers = engine.generate(["", ""], [prompt] * 2, GenerationSpec(
        max_new_tokens=8, temperature=1.0, constrain_watch=True))
    assert len(answers) == 2 and engine._token_kinds is not None
