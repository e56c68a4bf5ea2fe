"""Progress bars on stderr (stdout stays clean for tables and JSON)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress_enabled() -> bool:
    return os.environ.get("AVVP_NO_PROGRESS", "") == "" and sys.stderr.isatty()


def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def progress_bar(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar when stderr is a terminal; silently otherwise."""
    if not progress_enabled():
        yield from items
        return
    from rich.progress import track

    yield from track(items, description=desc, total=total, console=stderr_console(), transient=True)
