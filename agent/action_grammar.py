"""The agent's answer format: the one place that writes and reads action code blocks.

The policy model (Qwen2.5-VL, PersonaAct's answer format) answers each video with a short
free-text preamble and then one fenced Python block that calls four functions (see
`ACTION_FUNCTIONS_DOC`). Training labels are written by `format_action` and model answers are
read back by `parse_action`, so the two must agree: `format_action` output always parses back
to the same action (watch time rounded to 0.1 s, texts capped at `TEXT_LIMIT`).

Model output is untrusted text. It is PARSED by a small hand-written scanner for exactly this
grammar and NEVER EXECUTED: no eval, exec, compile or ast here, so a payload such as
`__import__("os").system(...)` is merely an unknown function.

The documented fallback (how `parse_action` treats imperfect answers):

1. Input longer than `INPUT_LIMIT` characters is cut to that length before scanning; the prefix
   is still parsed, but the answer is flagged `too_long` and `format_ok` is False.
   `Action.raw` keeps at most `RAW_LIMIT` characters of the input.
2. Only the FIRST fenced block whose info string is empty, `python`, `py` or `python3` is read;
   other fenced blocks before it are skipped. A block with no closing fence (output cut at the
   token limit) is read to the end of the text and flagged `unclosed_fence`.
3. Strict fencing: with no such block the answer fails (`no_code_block`, or `empty` for blank
   input) and only the watch time is salvaged from the first valid `watch(<number>)` anywhere in
   the text; likes, comments and shares outside a block are ignored.
4. Inside the block every non-blank line that is not a `#` comment must be exactly one call of a
   known function, positional or by keyword: `watch(7)`/`watch(second=7)`, `like()`,
   `comment("..")`/`comment(text="..")`, `share("..")`/`share(who="..")`, optionally followed by
   a `#` comment. Strings use single or double quotes with backslash escapes (\\n \\r \\t \\\\
   \\' \\"; other escapes are kept literally). Omitted arguments take the signature defaults
   (`watch()` is 5 s, `comment()`/`share()` are ""). Call order is free.
5. Any other line fails the format (`bad_line`, `unknown_function:<name>`, `bad_call:<name>`,
   `unterminated_string`, `bad_number`) but the valid calls around it still count. A repeated
   call fails the format (`duplicate_<name>`) and the first one wins.
6. Exactly one valid watch call is required: without one (`no_watch`; a NaN, infinite or
   negative number is `bad_number`) watch_s is the caller's `fallback_watch_s`.
7. watch_s is clipped to [0, max_watch_s] when max_watch_s is given, and comment/share texts
   are cut to `TEXT_LIMIT` characters; neither is a format failure.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from bubblescope.contracts import Action

INPUT_LIMIT = 20_000
RAW_LIMIT = 4_000
TEXT_LIMIT = 500
WATCH_DEFAULT_S = 5.0
_NAME_LIMIT = 40  # keeps problem strings short whatever identifier the model invents

ACTION_FUNCTIONS_DOC = """\
watch(second: float = 5.0)  # keep watching the video for that many seconds
like()                      # like the video
comment(text: str = "")     # comment on the video
share(who: str = "")        # share the video with someone"""

WatchSource = Literal["block", "salvage", "fallback"]

_FENCE = "```"
_PYTHON_INFO = frozenset({"", "python", "py", "python3"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(
    r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|(?:inf(?:inity)?|nan)(?![A-Za-z0-9_]))",
    re.IGNORECASE,
)
_STRING = {
    '"': re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL),
    "'": re.compile(r"'((?:[^'\\]|\\.)*)'", re.DOTALL),
}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_UNESCAPED = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "'": "'", '"': '"'}
_SALVAGE = re.compile(r"(?<![A-Za-z0-9_.])watch\s*\(")
# function name -> (keyword name, argument kind, default when omitted)
_SIGNATURES: dict[str, tuple[str, str, float | str | None]] = {
    "watch": ("second", "number", WATCH_DEFAULT_S),
    "like": ("", "none", None),
    "comment": ("text", "string", ""),
    "share": ("who", "string", ""),
}


@dataclass(frozen=True)
class ParsedAction:
    """A parsed answer: always a valid Action, plus why the answer's format failed, if it did."""

    action: Action
    format_ok: bool
    problems: tuple[str, ...] = ()
    watch_source: WatchSource = "block"

    @property
    def has_block(self) -> bool:
        """Whether a code block was found, i.e. the engagement calls were actually read."""
        return not {"no_code_block", "empty"} & set(self.problems)


@dataclass(frozen=True)
class _Call:
    name: str
    value: float | str | None


class _ScanError(Exception):
    """A line that is not a valid call; `args[0]` is the problem code."""


# --- formatting ---------------------------------------------------------------------------


def format_seconds(seconds: float) -> str:
    """Canonical watch time: always one decimal (7.3 -> "7.3", 12 -> "12.0"). One shape for
    every number makes the answer easier to learn: a model trained from scratch that sees both
    "12" and "12.3" learns neither where a number ends nor how many digits follow the point."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"watch time must be finite and >= 0, got {seconds!r}")
    return f"{seconds + 0.0:.1f}"  # + 0.0 turns -0.0 into 0.0


def quote(text: str) -> str:
    """A double-quoted literal; newlines are escaped because the parser reads line by line."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r") + '"'


def _one_line(text: str) -> str:
    return " ".join(text.split())


def format_action(
    action: Action, *, description: str | None = None, category: str | None = None
) -> str:
    """The canonical answer text for `action`, used as the training label."""
    lines = []
    if description is not None:
        lines.append(f"Video: {_one_line(description)}")
    if category is not None:
        lines.append(f"Category: {_one_line(category)}")
    if lines:
        lines.append("")
    lines += [_FENCE + "python", f"watch({format_seconds(action.watch_s)})"]
    if action.like:
        lines.append("like()")
    if action.comment is not None:
        lines.append(f"comment({quote(action.comment[:TEXT_LIMIT])})")
    if action.share is not None:
        lines.append(f"share({quote(action.share[:TEXT_LIMIT])})")
    lines.append(_FENCE)
    return "\n".join(lines)


# --- scanning one line ---------------------------------------------------------------------


class _Cursor:
    """A read position in one line."""

    def __init__(self, text: str, pos: int = 0) -> None:
        self.text = text
        self.pos = pos

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def take(self, char: str) -> bool:
        self.skip_space()
        if self.peek() != char:
            return False
        self.pos += 1
        return True

    def match(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        self.skip_space()
        found = pattern.match(self.text, self.pos)
        if found:
            self.pos = found.end()
        return found

    def at_line_end(self) -> bool:
        self.skip_space()
        return self.pos == len(self.text) or self.peek() == "#"


def _unescape(body: str) -> str:
    return _ESCAPE.sub(lambda m: _UNESCAPED.get(m.group(1), m.group(0)), body)


def _read_string(cursor: _Cursor, name: str) -> str:
    cursor.skip_space()
    pattern = _STRING.get(cursor.peek())
    if pattern is None:
        raise _ScanError(f"bad_call:{name}")
    found = cursor.match(pattern)
    if found is None:
        raise _ScanError("unterminated_string")
    return _unescape(found.group(1))


def _read_number(cursor: _Cursor, name: str) -> float:
    found = cursor.match(_NUMBER)
    if found is None:
        raise _ScanError(f"bad_call:{name}")
    value = float(found.group(0))
    if not math.isfinite(value) or value < 0:
        raise _ScanError("bad_number")
    return value + 0.0


def _skip_keyword(cursor: _Cursor, name: str, keyword: str) -> None:
    """Consume `keyword=` when present; a different keyword is a bad call."""
    start = cursor.pos
    found = cursor.match(_IDENTIFIER)
    if found is None:
        return
    if cursor.take("=") and cursor.peek() != "=":
        if found.group(0) != keyword:
            raise _ScanError(f"bad_call:{name}")
        return
    cursor.pos = start  # a bare word such as `nan` is the value itself


def _read_argument(cursor: _Cursor, name: str) -> float | str | None:
    keyword, kind, default = _SIGNATURES[name]
    cursor.skip_space()
    if cursor.peek() == ")":
        return default
    if kind == "none":
        raise _ScanError(f"bad_call:{name}")
    _skip_keyword(cursor, name, keyword)
    if kind == "number":
        return _read_number(cursor, name)
    return _read_string(cursor, name)


def _read_call(cursor: _Cursor) -> _Call:
    """One call at the cursor: a known name, its argument, and the closing parenthesis."""
    found = cursor.match(_IDENTIFIER)
    if found is None or not cursor.take("("):
        raise _ScanError("bad_line")
    name = found.group(0)
    if name not in _SIGNATURES:
        raise _ScanError(f"unknown_function:{name[:_NAME_LIMIT]}")
    value = _read_argument(cursor, name)
    if not cursor.take(")"):
        raise _ScanError(f"bad_call:{name}")
    return _Call(name, value)


def _parse_line(line: str) -> _Call:
    cursor = _Cursor(line)
    call = _read_call(cursor)
    if not cursor.at_line_end():
        raise _ScanError(f"bad_call:{call.name}")
    return call


# --- the block and the answer --------------------------------------------------------------


def _is_fence(line: str) -> bool:
    return line.lstrip().startswith(_FENCE)


def _first_block(lines: list[str]) -> tuple[list[str], bool] | None:
    """The first Python fenced block's lines, and whether its closing fence was found."""
    index = 0
    while index < len(lines):
        if not _is_fence(lines[index]):
            index += 1
            continue
        info = lines[index].strip()[len(_FENCE) :].strip().lower()
        end = next((j for j in range(index + 1, len(lines)) if _is_fence(lines[j])), None)
        if info in _PYTHON_INFO:
            return lines[index + 1 : end], end is not None
        if end is None:
            return None
        index = end + 1
    return None


def _scan_block(lines: list[str]) -> tuple[list[_Call], list[str]]:
    calls: list[_Call] = []
    problems: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            calls.append(_parse_line(stripped))
        except _ScanError as error:
            problems.append(str(error.args[0]))
    return calls, problems


def _first_calls(calls: list[_Call], problems: list[str]) -> dict[str, float | str | None]:
    """The first call of each function; repeats are format problems."""
    chosen: dict[str, float | str | None] = {}
    for call in calls:
        if call.name in chosen:
            problems.append(f"duplicate_{call.name}")
        else:
            chosen[call.name] = call.value
    return chosen


def _salvage_watch(text: str) -> float | None:
    for found in _SALVAGE.finditer(text):
        cursor = _Cursor(text, found.end())
        try:
            value = _read_argument(cursor, "watch")
        except _ScanError:
            continue
        if isinstance(value, float) and cursor.take(")"):
            return value
    return None


def _capped(value: float | str | None) -> str | None:
    return None if value is None else str(value)[:TEXT_LIMIT]


def _check_seconds(label: str, seconds: float) -> None:
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{label} must be finite and >= 0, got {seconds!r}")


def _clip(seconds: float, max_watch_s: float | None) -> float:
    return seconds if max_watch_s is None else min(seconds, max_watch_s)


def _read_answer(
    text: str, problems: list[str]
) -> tuple[dict[str, float | str | None], WatchSource]:
    """The calls found in `text` and where the watch time came from."""
    if not text.strip():
        problems.append("empty")
        return {}, "fallback"
    block = _first_block(text.split("\n"))
    if block is None:
        problems.append("no_code_block")
        watch = _salvage_watch(text)
        return ({}, "fallback") if watch is None else ({"watch": watch}, "salvage")
    lines, closed = block
    if not closed:
        problems.append("unclosed_fence")
    calls, line_problems = _scan_block(lines)
    problems += line_problems
    chosen = _first_calls(calls, problems)
    if "watch" not in chosen:
        problems.append("no_watch")
    return chosen, "block" if "watch" in chosen else "fallback"


def parse_action(
    raw: str, *, fallback_watch_s: float, max_watch_s: float | None = None
) -> ParsedAction:
    """Read a model answer into an Action following the documented fallback.

    Never raises on any `raw` text; only invalid caller arguments (a negative or non-finite
    fallback or limit) raise ValueError.
    """
    _check_seconds("fallback_watch_s", fallback_watch_s)
    if max_watch_s is not None:
        _check_seconds("max_watch_s", max_watch_s)
    problems: list[str] = []
    text = raw
    if len(raw) > INPUT_LIMIT:
        text = raw[:INPUT_LIMIT]
        problems.append("too_long")
    chosen, source = _read_answer(text, problems)
    watch = chosen.get("watch")
    format_ok = not problems
    action = Action(
        watch_s=_clip(fallback_watch_s if watch is None else float(watch), max_watch_s),
        like="like" in chosen,
        comment=_capped(chosen.get("comment")),
        share=_capped(chosen.get("share")),
        raw=raw[:RAW_LIMIT],
        format_ok=format_ok,
    )
    unique = tuple(dict.fromkeys(problems))
    return ParsedAction(action, format_ok, unique, source)

