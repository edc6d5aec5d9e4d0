"""The ``switchyard`` command. Run ``switchyard COMMAND --help`` for each command's options."""

import logging
import signal
import sys
from typing import Annotated

import typer

# typer vendors click: usage errors are its ClickException, which knows how to show itself.
from typer._click.exceptions import ClickException

from commands import dlq, inspect, kafka, operate, router, run, send
from commands.app import OPERATE, ROUTER, RUN, Globals, new_app
from commands.console import say
from schemas.errors import ConfigError, SwitchyardError

app = new_app("Switchyard routes LLM requests over Kafka. Each command has --help.")
for group in (run.app, send.app, inspect.app, operate.app):
    app.add_typer(group)  # no name: their commands join the root
app.add_typer(dlq.app, name="dlq", rich_help_panel=OPERATE)
app.add_typer(kafka.app, name="kafka", rich_help_panel=RUN)
app.add_typer(router.app, name="router", rich_help_panel=ROUTER)


@app.callback()
def options(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="log at info level")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = Globals(verbose=verbose)


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code.

    A usage error (unknown command or option, missing argument, bad choice,
    options that exclude each other) raises SystemExit(2), as argparse did.
    A SwitchyardError prints its message and returns its ``exit_code``;
    Ctrl-C returns 130.
    """
    # SIGTERM unwinds like Ctrl-C, so commands that own processes stop them
    # (workers replace this with their own graceful handlers).
    signal.signal(signal.SIGTERM, _exit_on_signal)
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="switchyard", standalone_mode=False)
    except ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except ConfigError as exc:
        say(f"invalid config {exc.source}:")
        for issue in exc.issues:
            say(f"  {issue}")
        return exc.exit_code
    except SwitchyardError as exc:
        say(f"switchyard: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
