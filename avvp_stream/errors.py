"""User-facing failures: one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import sys


class AvvpError(Exception):
    """An expected failure caused by the user's input or environment (bad file, missing
    dependency...). Its message is complete on its own and is shown as is."""


EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def run_cli(app, prog: str) -> None:
    """Entry point of a console script: notes (logging INFO) on stderr, then the app."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    _run(app, prog)


def _run(app, prog: str) -> None:
    """Run a typer app so that AvvpError and Ctrl-C end in one line and an exit code
    (2 and 130) instead of a traceback; usage errors keep click's own message."""
    import click
    import typer.main

    command = typer.main.get_command(app)
    try:
        rv = command.main(prog_name=prog, standalone_mode=False)
    except AvvpError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    except (KeyboardInterrupt, click.exceptions.Abort):
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    if rv == EXIT_INTERRUPTED:  # typer turns Ctrl-C into a returned 130 when not standalone
        print(f"{prog}: interrupted", file=sys.stderr)
    sys.exit(rv if isinstance(rv, int) else 0)
