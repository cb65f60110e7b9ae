"""The answer grammar: labels round-trip, and no model text can crash or run code in the parser."""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bubblescope.agent.action_grammar import (
    ACTION_FUNCTIONS_DOC,
    INPUT_LIMIT,
    RAW_LIMIT,
    TEXT_LIMIT,
    WATCH_DEFAULT_S,
    ParsedAction,
    format_action,
    format_seconds,
    parse_action,
)
from bubblescope.contracts import Action

EXAMPLE = """Video: a cat chasing a laser pointer
Category: Pets-Cat Daily

```python
watch(12.5)
like()
comment("so cute")
```"""

texts = st.text(max_size=TEXT_LIMIT)
tenths = st.integers(min_value=0, max_value=6000).map(lambda n: n / 10)
actions = st.builds(
    Action, watch_s=tenths, like=st.booleans(), comment=st.none() | texts, share=st.none() | texts
)


def parse(raw: str, **kwargs) -> ParsedAction:
    return parse_action(raw, fallback_watch_s=kwargs.pop("fallback_watch_s", 3.0), **kwargs)


def without_audit(action: Action) -> dict:
    return action.model_dump(exclude={"raw", "format_ok"})


def block(*lines: str) -> str:
    return "\n".join(["Video: x", "", "```python", *lines, "```"])


def test_the_papers_example_parses() -> None:
    parsed = parse(EXAMPLE)
    assert parsed.format_ok and parsed.problems == () and parsed.watch_source == "block"
    assert parsed.action == Action(watch_s=12.5, like=True, comment="so cute", raw=EXAMPLE)


def test_functions_doc_lists_the_four_calls() -> None:
    names = [line.split("(")[0] for line in ACTION_FUNCTIONS_DOC.splitlines()]
    assert names == ["watch", "like", "comment", "share"]


def test_canonical_formatting() -> None:
    action = Action(watch_s=7.25, like=True, comment='a "b"\nc\\', share="mom")
    assert format_action(action, description="two\nlines", category="Pets/Cat") == (
        'Video: two lines\nCategory: Pets/Cat\n\n```python\nwatch(7.2)\nlike()\n'
        'comment("a \\"b\\"\\nc\\\\")\nshare("mom")\n```'
    )
    assert format_action(Action(watch_s=12.0)) == "```python\nwatch(12.0)\n```"
    assert [format_seconds(s) for s in (0.0, -0.0, 7.3, 12.04, 600)] == ["0.0", "0.0", "7.3", "12.0", "600.0"]
    with pytest.raises(ValueError):
        format_seconds(math.inf)


@settings(max_examples=300, deadline=None)
@given(actions, st.none() | st.text(), st.none() | st.text())
def test_format_round_trips(action: Action, description: str | None, category: str | None) -> None:
    text = format_action(action, description=description, category=category)
    parsed = parse(text, fallback_watch_s=99.0)
    assert parsed.format_ok, parsed.problems
    assert without_audit(parsed.action) == without_audit(action)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=600))
def test_any_watch_time_round_trips_to_a_tenth(seconds: float) -> None:
    parsed = parse(format_action(Action(watch_s=seconds)))
    assert parsed.format_ok
    assert abs(parsed.action.watch_s - seconds) <= 0.05 + 1e-9


def test_long_texts_are_capped_the_same_both_ways() -> None:
    action = Action(watch_s=1, comment="c" * 900, share="s" * 900)
    parsed = parse(format_action(action))
    assert parsed.format_ok
    assert parsed.action.comment == "c" * TEXT_LIMIT and parsed.action.share == "s" * TEXT_LIMIT


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("watch(second=7)", {"watch_s": 7.0}),
        ("watch( second = 7.5 )  # why not", {"watch_s": 7.5}),
        ("watch(.5)", {"watch_s": 0.5}),
        ("watch(1e1)", {"watch_s": 10.0}),
        ("watch()", {"watch_s": WATCH_DEFAULT_S}),
        ("comment(text='it\\'s')", {"comment": "it's"}),
        ('share(who="a\\tb\\q")', {"share": "a\tb\\q"}),
        ("comment()", {"comment": ""}),
        ("share('')", {"share": ""}),
    ],
)
def test_accepted_call_forms(line: str, expected: dict) -> None:
    lines = [line] if line.startswith("watch") else ["watch(1)", line]
    parsed = parse(block(*lines))
    assert parsed.format_ok, parsed.problems
    assert {k: getattr(parsed.action, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("watch(-1)", "bad_number"),
        ("watch(nan)", "bad_number"),
        ("watch(second=inf)", "bad_number"),
        ("watch(1e999)", "bad_number"),
        ("watch('5')", "bad_call:watch"),
        ("watch(5, 6)", "bad_call:watch"),
        ("watch(seconds=5)", "bad_call:watch"),
        ("watch(__import__('os'))", "bad_call:watch"),
        ("watch(5); like()", "bad_call:watch"),
        ("watch(5).real", "bad_call:watch"),
    ],
)
def test_a_bad_watch_call_falls_back(line: str, problem: str) -> None:
    parsed = parse(block(line, "like()"), fallback_watch_s=4.0)
    assert not parsed.format_ok and not parsed.action.format_ok
    assert problem in parsed.problems and "no_watch" in parsed.problems
    assert parsed.action.watch_s == 4.0 and parsed.watch_source == "fallback"
    assert parsed.action.like  # the valid calls around a bad one still count


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("like(True)", "bad_call:like"),
        ("comment(42)", "bad_call:comment"),
        ('comment("a", "b")', "bad_call:comment"),
        ('share(to="mom")', "bad_call:share"),
        ('comment("abc', "unterminated_string"),
        ('comment("abc\\', "unterminated_string"),
        ("swipe()", "unknown_function:swipe"),
        ('__import__("os").system("rm -rf /")', "unknown_function:__import__"),
        ('exec("print(1)")', "unknown_function:exec"),
        ('eval("1")', "unknown_function:eval"),
        ("import os", "bad_line"),
        ("os.system('ls')", "bad_line"),
        ("x = 1", "bad_line"),
        ("like(", "bad_call:like"),
        ("like()", "duplicate_like"),
        ("watch(9)", "duplicate_watch"),
    ],
)
def test_other_bad_lines_fail_the_format_but_keep_the_rest(line: str, problem: str) -> None:
    parsed = parse(block("watch(2)", "like()", line))
    assert not parsed.format_ok and problem in parsed.problems
    assert parsed.action.watch_s == 2.0 and parsed.action.like  # first call wins


def test_comments_and_blank_lines_are_fine_and_order_is_free() -> None:
    parsed = parse(block("# the persona loves cats", "", "like()  # yes", "   watch(3)"))
    assert parsed.format_ok and parsed.action.like and parsed.action.watch_s == 3.0


def test_no_fence_salvages_only_the_watch_time() -> None:
    parsed = parse('I will watch(7.5) it, then like() and comment("x")', fallback_watch_s=1.0)
    assert not parsed.format_ok and parsed.problems == ("no_code_block",)
    assert parsed.watch_source == "salvage" and not parsed.has_block
    assert parsed.action == Action(watch_s=7.5, raw=parsed.action.raw, format_ok=False)


def test_no_fence_and_no_watch_uses_the_fallback() -> None:
    parsed = parse("watch(-3) stopwatch(4) like()", fallback_watch_s=1.5)
    assert parsed.action.watch_s == 1.5 and parsed.watch_source == "fallback"


@pytest.mark.parametrize("raw", ["", "   \n\t ", "\n\n"])
def test_empty_answers(raw: str) -> None:
    parsed = parse(raw, fallback_watch_s=2.0)
    assert parsed.problems == ("empty",) and parsed.action.watch_s == 2.0


def test_fences_first_python_block_wins_and_others_are_skipped() -> None:
    raw = "```json\n{\"watch\": 1}\n```\n```py\nwatch(4)\n```\n```python\nwatch(9)\nlike()\n```"
    parsed = parse(raw)
    assert parsed.format_ok and parsed.action.watch_s == 4.0 and not parsed.action.like


def test_unclosed_fence_is_read_but_flagged() -> None:
    parsed = parse('```python\nwatch(3)\nlike()\ncomment("abc')
    assert parsed.action.watch_s == 3.0 and parsed.action.like and parsed.action.comment is None
    assert set(parsed.problems) == {"unclosed_fence", "unterminated_string"}


def test_nested_fences_do_not_crash() -> None:
    parsed = parse("```python\n```python\nwatch(3)\n```\n```")
    assert not parsed.format_ok and "no_watch" in parsed.problems


def test_a_fence_inside_a_string_does_not_close_the_block() -> None:
    action = Action(watch_s=2, comment="```\nwatch(99)\n```", share="```python")
    parsed = parse(format_action(action))
    assert parsed.format_ok and without_audit(parsed.action) == without_audit(action)


def test_clipping_is_not_a_format_failure() -> None:
    parsed = parse(block("watch(900)"), max_watch_s=60.0)
    assert parsed.format_ok and parsed.action.watch_s == 60.0
    assert parse("", fallback_watch_s=90.0, max_watch_s=60.0).action.watch_s == 60.0


def test_invalid_caller_arguments_raise() -> None:
    with pytest.raises(ValueError):
        parse_action("", fallback_watch_s=math.nan)
    with pytest.raises(ValueError):
        parse_action("", fallback_watch_s=1.0, max_watch_s=-1.0)


def test_huge_input_is_cut_and_raw_is_truncated() -> None:
    raw = block("watch(5)", "like()") + "\n" + "x" * 1_000_000
    parsed = parse(raw)
    assert parsed.problems == ("too_long",) and not parsed.format_ok
    assert parsed.action.watch_s == 5.0 and parsed.action.like
    assert len(parsed.action.raw) == RAW_LIMIT and raw.startswith(parsed.action.raw)
    late = "y" * INPUT_LIMIT + block("watch(5)")
    assert "no_code_block" in parse(late).problems


@pytest.mark.parametrize(
    "raw",
    [
        "```python\n" + 'comment("' + "a" * 1_000_000,
        "```python\n" + "watch(" + "9" * 50_000 + ")\n```",
        "watch(" * 10_000,
        "```\n" * 10_000,
        "```python\n" + "like()\n" * 10_000 + "```",
        '```python\ncomment("' + "\\" * 30_001 + '")\n```',
        "```python\nwatch(3)\ncomment('\u2028\x85\x00\U0001f431')\n```",
        "```python\r\nwatch(3)\r\nlike()\r\n```\r\n",
    ],
)
def test_adversarial_inputs_never_raise(raw: str) -> None:
    parsed = parse(raw)
    assert isinstance(parsed.action, Action) and parsed.action.watch_s >= 0
    assert len(parsed.action.raw) <= RAW_LIMIT


def test_windows_line_endings_parse() -> None:
    parsed = parse("```python\r\nwatch(3)\r\nlike()\r\n```\r\n")
    assert parsed.format_ok and parsed.action.like and parsed.action.watch_s == 3.0


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(raw: str) -> None:
    parsed = parse(raw, max_watch_s=600.0)
    assert 0 <= parsed.action.watch_s <= 600 and parsed.action.format_ok == parsed.format_ok
    assert parsed.format_ok == (not parsed.problems)


call_lines = st.sampled_from(
    ["watch(3)", "like()", 'comment("hi")', "share('x')", "watch(", "```", "#", "exec(", '"', "\\"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(call_lines | st.text(max_size=20), max_size=12))
def test_arbitrary_lines_inside_a_block_never_raise(lines: list[str]) -> None:
    parsed = parse(block(*lines))
    assert parsed.action.watch_s >= 0


def test_parsing_never_executes_the_payload() -> None:
    marker = Path("/tmp") / f"pwned_{uuid.uuid4().hex}"
    payloads = [
        f'watch(1)\n__import__("os").system("touch {marker}")',
        f'```python\nwatch(1)\n__import__("os").system("touch {marker}")\n```',
        f"```python\nwatch(__import__('os').system('touch {marker}'))\n```",
        f"```python\nexec(\"open('{marker}', 'w')\")\ncomment(open('{marker}', 'w'))\n```",
    ]
    for raw in payloads:
        parsed = parse(raw)
        assert not parsed.format_ok
    assert not marker.exists()
