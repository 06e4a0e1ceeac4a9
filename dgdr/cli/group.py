"""The root command group of `dgdr`: global options anywhere on the line, as kubectl's persistent
flags are, and plain metavars in `--help`.

`dgdr get -n team-a`, `dgdr cluster list -s URL` and `dgdr -n team-a get` mean the same: before
the arguments are parsed, `hoist_global_options` moves every global option (the root callback's:
`--server/-s`, `--namespace/-n`, `--context`, the credentials and TLS options) with its value to the
front. The command's own options are read with their values as they stand, so an option value that
looks like a global option (`apply -f -n`) is not taken for one; `--` ends the hoisting. A command
that defines an option of the same name as a global one keeps it after its verb (the global one
still works before the verb); no command does today.

`plain_metavars` replaces typer's `<str>`/`<int>` help labels (`make_metavar`) with click's TEXT, INTEGER, PATH...,
and argument names with upper-case ones (NAME), as kubectl and most CLIs write them; a command's
line in its group's `--help` is the first paragraph of its help, whole (click would cut it at the
first sentence or ~45 characters).

Help is click's plain layout (`rich_markup_mode=None` on the apps, `dgdr.cli.base`): typer's rich
layout imports rich, markdown-it, pygments and attrs, most of the start-up of `dgdr --help`.

Failure semantics: an option without its value at the end of the line is left at the front with
nothing after it, so the root's parser reports it (click's usage error, exit 2); anything else
malformed is left for click to report.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from typer import Context
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

Command = TyperCommand | TyperGroup

_TYPE_LABELS = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "FLOAT",
    "path": "PATH",
    "file": "FILE",
    "int range": "INTEGER RANGE",
    "float range": "FLOAT RANGE",
}


def _options_by_name(params: list[Any]) -> dict[str, TyperOption]:
    found: dict[str, TyperOption] = {}
    for param in params:
        if isinstance(param, TyperOption):
            for name in (*param.opts, *param.secondary_opts):
                found[name] = param
    return found


def _split(token: str, known: Mapping[str, TyperOption]) -> tuple[str, str | None]:
    """(option name, attached value or None): `--server=URL`, `-nteam-a`, or the token itself."""
    if token.startswith("--"):
        name, eq, value = token.partition("=")
        return name, value if eq else None
    if token.startswith("-") and len(token) > 2 and token[:2] in known:
        return token[:2], token[2:].removeprefix("=")
    return token, None


def hoist_global_options(root: Command, ctx: Context, args: list[str]) -> list[str]:
    """`args` with the root's options (and their values) moved before the command path."""
    globals_ = _options_by_name(root.params)
    front: list[str] = []
    rest: list[str] = []
    command: Command | None = root
    local: dict[str, TyperOption] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            rest.extend(args[i:])
            break
        name, attached = _split(token, {**globals_, **local})
        option = local.get(name) if command is not root else None
        if option is None and name in globals_:
            option = globals_[name]
            target = front
        else:
            target = rest
        if option is not None and not option.is_flag and not option.count and attached is None:
            if i + 1 == len(args):  # its parser says "Option '-n' requires an argument."
                return [*front, token] if target is front else [*front, *rest, token]
            target.extend(args[i : i + 2])  # the option and its value, whatever the value is
            i += 2
            continue
        target.append(token)
        if not token.startswith("-") and isinstance(command, TyperGroup):
            command = command.get_command(ctx, token)  # type: ignore[assignment]
            local = _options_by_name(command.params) if command is not None else {}
        i += 1
    return front + rest


def plain_metavars(command: Command) -> None:
    """TEXT, INTEGER, PATH... for typer's `<str>`, `<int>`, `<path>`; NAME for an argument `name`;
    none for a flag (and `--help`). Recurses into sub-groups."""
    help_option = command.get_help_option(Context(command))  # created once, then reused
    for param in [*command.params, *([help_option] if help_option else [])]:
        if isinstance(param, TyperArgument):
            param.metavar = param.metavar or _argument_metavar(param)
        elif isinstance(param, TyperOption) and param.metavar is None:
            if param.is_flag:
                param.metavar = ""
            else:
                label = param.make_metavar(Context(command)).strip("<>")
                param.metavar = _TYPE_LABELS.get(label, label if "|" in label else label.upper())
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            if sub.short_help is None and sub.help:
                sub.short_help = " ".join(inspect.cleandoc(sub.help).split("\n\n")[0].split())
            plain_metavars(sub)  # type: ignore[arg-type]


def _argument_metavar(argument: TyperArgument) -> str:
    """NAME; a repeatable one NAMES..., and [NAMES]... when it may be left out (typer writes a
    metavar as it stands when it starts with `[`, and wraps any other in braces in the usage)."""
    name = (argument.name or "").upper()
    if argument.nargs == 1:
        return name
    return f"{name}..." if argument.required else f"[{name}]..."


class DgdrGroup(TyperGroup):
    """The root group: global options anywhere, plain metavars."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        plain_metavars(self)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: typer's click Context
        return super().parse_args(ctx, hoist_global_options(self, ctx, args))
