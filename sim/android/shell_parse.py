"""Parse the shell language adb clients send into a small syntax tree.

The subset is what adbutils, the stock adb client and scrcpy put on a device's command line:
words with '...', "..." and backslash quoting, `$VAR`/`${VAR}`/`$?` expansions, `;`,
newlines, `&&`, `||`, `|`, `!`, `NAME=value` prefixes, `>`/`>>`/`<`/`N>&M` redirections and
`#` comments. Anything else (`&`, `(`, `$(...)` ...) is either a syntax error or, as in
`if`, simply a word the interpreter will not find.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bubblescope.sim.android.errors import ShellSyntaxError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPECIAL_VARS = "?$#!0123456789"
_OPERATORS = ("&&", "||", ">>", ">&", ";", "&", "|", ">", "<", "(", ")", "\n")
_REDIRECTS = (">", ">>", "<", ">&")


@dataclass(frozen=True)
class Part:
    """A piece of a word: literal text, or a variable name when `var` is set."""

    text: str
    quoted: bool = False
    var: bool = False


Word = tuple[Part, ...]


@dataclass(frozen=True)
class Op:
    text: str
    fd: int | None = None  # the N of `N>file` / `N>&M`


@dataclass
class Redirect:
    fd: int
    op: str  # one of _REDIRECTS
    target: Word


@dataclass
class Command:
    assignments: list[tuple[str, Word]] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Pipeline:
    commands: list[Command]
    negate: bool = False


@dataclass
class AndOr:
    first: Pipeline
    rest: list[tuple[str, Pipeline]] = field(default_factory=list)  # ("&&" | "||", pipeline)


Token = Word | Op


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.tokens: list[Token] = []
        self.parts: list[Part] | None = None  # the word being built, None between words

    def run(self) -> list[Token]:
        while self.i < len(self.text):
            self._step(self.text[self.i])
        self._end_word()
        return self.tokens

    def _step(self, char: str) -> None:
        if char in " \t":
            self._end_word()
            self.i += 1
        elif char == "#" and self.parts is None:
            end = self.text.find("\n", self.i)
            self.i = len(self.text) if end < 0 else end
        elif char in ";&|<>()\n":
            self._operator()
        elif char == "'":
            self._single_quoted()
        elif char == '"':
            self._double_quoted()
        elif char == "\\":
            self._escaped()
        elif char == "$":
            self._dollar(quoted=False)
        else:
            self._add(Part(char))
            self.i += 1

    def _add(self, part: Part) -> None:
        if self.parts is None:
            self.parts = []
        if self.parts and not part.var and not self.parts[-1].var \
                and self.parts[-1].quoted == part.quoted:
            self.parts[-1] = Part(self.parts[-1].text + part.text, part.quoted)
        else:
            self.parts.append(part)

    def _end_word(self) -> None:
        if self.parts is not None:
            self.tokens.append(tuple(self.parts))
            self.parts = None

    def _operator(self) -> None:
        fd = self._io_number() if self.text[self.i] in "<>" else None
        self._end_word()
        op = next(o for o in _OPERATORS if self.text.startswith(o, self.i))
        self.tokens.append(Op(op, fd))
        self.i += len(op)

    def _io_number(self) -> int | None:
        """`2>` makes the 2 a file descriptor, not a word (only when unquoted digits)."""
        parts = self.parts
        if parts and len(parts) == 1 and not parts[0].quoted and not parts[0].var \
                and parts[0].text.isdigit():
            self.parts = None
            return int(parts[0].text)
        return None

    def _single_quoted(self) -> None:
        end = self.text.find("'", self.i + 1)
        if end < 0:
            raise ShellSyntaxError("no closing quote")
        self._add(Part(self.text[self.i + 1:end], quoted=True))
        self.i = end + 1

    def _double_quoted(self) -> None:
        self.i += 1
        self._add(Part("", quoted=True))  # "" is an (empty) word of its own
        while self.i < len(self.text) and self.text[self.i] != '"':
            char = self.text[self.i]
            if char == "\\" and self.text[self.i + 1:self.i + 2] in ('$', '`', '"', "\\", "\n"):
                if self.text[self.i + 1] != "\n":
                    self._add(Part(self.text[self.i + 1], quoted=True))
                self.i += 2
            elif char == "$":
                self._dollar(quoted=True)
            else:
                self._add(Part(char, quoted=True))
                self.i += 1
        if self.i >= len(self.text):
            raise ShellSyntaxError("no closing quote")
        self.i += 1

    def _escaped(self) -> None:
        nxt = self.text[self.i + 1:self.i + 2]
        if nxt and nxt != "\n":  # backslash-newline is a line continuation
            self._add(Part(nxt, quoted=True))
        self.i += 2

    def _dollar(self, quoted: bool) -> None:
        rest = self.text[self.i + 1:]
        if rest[:1] and rest[0] in _SPECIAL_VARS:
            self._add(Part(rest[0], quoted, var=True))
            self.i += 2
        elif rest.startswith("{") and (close := rest.find("}")) > 1:
            self._add(Part(rest[1:close], quoted, var=True))
            self.i += close + 2
        elif match := _NAME.match(rest):
            self._add(Part(match.group(), quoted, var=True))
            self.i += 1 + match.end()
        else:
            self._add(Part("$", quoted))
            self.i += 1


def tokenize(text: str) -> list[Token]:
    return _Lexer(text).run()


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def peek_op(self) -> str | None:
        token = self.peek()
        return token.text if isinstance(token, Op) else None

    def script(self) -> list[AndOr]:
        items: list[AndOr] = []
        while self.peek() is not None:
            if self.peek_op() in (";", "\n"):
                self.i += 1
                continue
            items.append(self.and_or())
            if self.peek() is not None and self.peek_op() not in (";", "\n"):
                raise ShellSyntaxError(f"syntax error: '{_show(self.peek())}' unexpected")
        return items

    def and_or(self) -> AndOr:
        node = AndOr(self.pipeline())
        while (op := self.peek_op()) in ("&&", "||"):
            self.i += 1
            while self.peek_op() == "\n":
                self.i += 1
            node.rest.append((op, self.pipeline()))
        return node

    def pipeline(self) -> Pipeline:
        negate = self.peek() == (Part("!"),)
        if negate:
            self.i += 1
        commands = [self.command()]
        while self.peek_op() == "|":
            self.i += 1
            commands.append(self.command())
        return Pipeline(commands, negate)

    def command(self) -> Command:
        command = Command()
        while (token := self.peek()) is not None:
            if isinstance(token, Op):
                if token.text not in _REDIRECTS:
                    break
                command.redirects.append(self.redirect(token))
            elif not command.words and (assignment := _assignment(token)):
                command.assignments.append(assignment)
                self.i += 1
            else:
                command.words.append(token)
                self.i += 1
        if not (command.words or command.assignments or command.redirects):
            token = self.peek()
            raise ShellSyntaxError(f"syntax error: '{_show(token)}' unexpected")
        return command

    def redirect(self, op: Op) -> Redirect:
        self.i += 1
        target = self.peek()
        if not isinstance(target, tuple):
            raise ShellSyntaxError(f"syntax error: '{_show(target)}' unexpected")
        self.i += 1
        default_fd = 0 if op.text == "<" else 1
        return Redirect(default_fd if op.fd is None else op.fd, op.text, target)


def _assignment(word: Word) -> tuple[str, Word] | None:
    """`NAME=value` (NAME unquoted) as (NAME, value word); None for any other word."""
    head = word[0]
    if head.quoted or head.var or "=" not in head.text:
        return None
    name, _, value = head.text.partition("=")
    if not _NAME.fullmatch(name):
        return None
    return name, (Part(value), *word[1:])


def _show(token: Token | None) -> str:
    if token is None:
        return "newline"
    if isinstance(token, Op):
        return "newline" if token.text == "\n" else token.text
    return "".join(part.text for part in token)


def parse(text: str) -> list[AndOr]:
    """The command line as a list of and-or lists; ShellSyntaxError when it cannot parse."""
    return _Parser(tokenize(text)).script()
