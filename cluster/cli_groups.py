"""A command group of the CLI (`bubblescope farm up|list|down`, ...) declared as a table."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def command_group(sub, name: str, helptext: str,
                  commands: Sequence[tuple[str, Handler, str]]) -> dict[str, argparse.ArgumentParser]:
    """`bubblescope NAME COMMAND`, one parser per (command, handler, help); returns them by
    command so the caller adds the arguments each takes."""
    group = sub.add_parser(name, help=helptext)
    group_sub = group.add_subparsers(dest=f"{name}_command", required=True)
    parsers = {}
    for command, handler, command_help in commands:
        parser = group_sub.add_parser(command, help=command_help)
        parser.set_defaults(func=handler)
        parsers[command] = parser
    return parsers
