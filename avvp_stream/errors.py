"""User-facing failures: one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import functools
import sys


class AvvpError(Exception):
    """An expected failure caused by the user's input or environment (bad file, missing
    dependency...). Its message is complete on its own and is shown as is."""


EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def run_cli(app, prog: str) -> None:
    """Entry point of a console script: notes (logging INFO) on stderr, then the app.

    typer runs in its standalone mode, so usage errors (unknown option, bad value, missing
    argument) get typer's own usage message and exit 2 whichever click typer uses (older
    releases depend on click, newer ones vendor a copy): nothing here names click. Our
    own failures are caught inside each command, where both kinds of typer agree."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for info in app.registered_commands:
        if not getattr(info.callback, "_avvp_guarded", False):
            info.callback = _guarded(info.callback, prog)
    app(prog_name=prog)


def _guarded(command, prog: str):
    """``command`` with AvvpError -> one line, exit 2, Ctrl-C -> exit 130 (older typer
    would print "Aborted!" and exit 1), and an int it returns -> that exit code."""

    @functools.wraps(command)
    def guarded(*args, **kwargs):
        try:
            rv = command(*args, **kwargs)
        except AvvpError as exc:
            print(f"{prog}: error: {exc}", file=sys.stderr, flush=True)
            sys.exit(EXIT_ERROR)
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr, flush=True)
            sys.exit(EXIT_INTERRUPTED)
        if isinstance(rv, int) and rv:  # a command's own exit code (e.g. 1: some files failed)
            sys.exit(rv)
        return rv

    guarded._avvp_guarded = True
    return guarded
