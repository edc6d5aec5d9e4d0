"""Building blocks every command module uses to declare its typer commands.

The command line keeps argparse's contract, which scripts and tests rely on: an
unknown command is an ``invalid choice``, options that exclude each other are
refused with argparse's messages, and ``--data FILE FILE ...`` takes several
values after one flag. Every usage error exits 2 (``commands.cli.main``).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from schemas.errors import InvalidOption

JsonFlag = Annotated[bool, typer.Option("--json", help="print one JSON object")]

# The help panels ``switchyard --help`` groups the commands in.
RUN, SEND, INSPECT, ROUTER, OPERATE = "Run", "Send", "Inspect", "Router", "Operate"


class ArgparseGroup(TyperGroup):
    """A command group that names an unknown command as argparse did."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and not args[0].startswith("-") and self.get_command(ctx, args[0]) is None:
            known = ", ".join(repr(name) for name in self.list_commands(ctx))
            ctx.fail(f"argument command: invalid choice: {args[0]!r} (choose from {known})")
        return super().resolve_command(ctx, args)


class ManyValuesCommand(TyperCommand):
    """A command whose ``--data`` takes every value up to the next option, like nargs='+'."""

    many_values = ("--data",)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, spread_values(args, self.many_values))


def spread_values(args: Sequence[str], options: Sequence[str]) -> list[str]:
    """``--data a b`` as ``--data a --data b``; a bare ``--data`` is left for the parser."""
    out: list[str] = []
    current: str | None = None
    taken = 0
    for arg in args:
        if arg in options:
            current, taken = arg, 0
        elif current is not None and not arg.startswith("-"):
            if taken:
                out.append(current)
            taken += 1
        else:
            current = None
        out.append(arg)
    return out


def new_app(help: str) -> typer.Typer:
    """A typer app (the root or a sub-app) with argparse's error messages."""
    return typer.Typer(
        cls=ArgparseGroup, help=help, add_completion=False, pretty_exceptions_enable=False
    )


@dataclass(frozen=True)
class Globals:
    """Options given before the command (``switchyard -v worker router``)."""

    verbose: bool = False


def verbose(ctx: typer.Context) -> bool:
    found = ctx.find_object(Globals)
    return found is not None and found.verbose


def exclusive(ctx: typer.Context, given: Mapping[str, object], required: bool = True) -> str | None:
    """The one option of ``given`` (flag -> value) that is set; usage error if two are.

    An option is set unless its value is None, False or an empty list. With ``required``,
    none set is a usage error too; the messages are argparse's.
    """
    # ``is``, not ``in``: 0 (``--lambda 0``) equals False but is set.
    chosen = [
        flag
        for flag, value in given.items()
        if not (value is None or value is False or value == [])
    ]
    if len(chosen) > 1:
        ctx.fail(f"argument {chosen[1]}: not allowed with argument {chosen[0]}")
    if not chosen and required:
        ctx.fail(f"one of the arguments {' '.join(given)} is required")
    return chosen[0] if chosen else None


def at_least(option: str, value: float | None, least: float) -> None:
    """Refuse an option's value below ``least`` (exit 1, as these checks always did)."""
    if value is not None and value < least:
        raise InvalidOption(f"{option} must be at least {least:g}")


def one_of(choices: Sequence[str]) -> Callable[[str], str]:
    """A parameter callback that accepts only ``choices`` (a set known at run time)."""

    def check(value: str) -> str:
        if value not in choices:
            known = ", ".join(repr(c) for c in choices)
            raise typer.BadParameter(f"invalid choice: {value!r} (choose from {known})")
        return value

    return check
