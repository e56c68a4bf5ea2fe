"""Where parsed snippets and events go. Each format is one module and one entry in
``FORMATS``; ``get_writer`` builds one by name."""

from __future__ import annotations

import importlib
from typing import TextIO

from .base import Writer, Writers

# format -> (module, class): the module is imported only when the format is used
FORMATS = {
    "table": ("table", "TableWriter"),
    "jsonl": ("jsonl", "JsonlWriter"),
    "tsv": ("timed_text", "TsvWriter"),
    "srt": ("timed_text", "SrtWriter"),
    "vtt": ("timed_text", "VttWriter"),
}


def get_writer(fmt: str, out: TextIO, name: str = "stream", title: str = "avvp-stream") -> Writer:
    """The writer of format ``fmt`` on ``out``; ``name`` is the filename column of tsv,
    ``title`` the live table's."""
    module, cls = FORMATS[fmt]
    writer = getattr(importlib.import_module(f".{module}", __name__), cls)
    if fmt == "table":
        return writer(title=title)
    if fmt == "jsonl":
        return writer(out)
    return writer(out, name=name)


__all__ = ["FORMATS", "Writer", "Writers", "get_writer"]
