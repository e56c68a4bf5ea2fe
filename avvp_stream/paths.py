"""Where avvp-stream keeps downloaded weights and caches: ``$AVVP_STREAM_HOME`` or the
user's cache folder (``$XDG_CACHE_HOME/avvp-stream``, default ``~/.cache/avvp-stream``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def cache_home() -> Path:
    explicit = os.environ.get("AVVP_STREAM_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "avvp-stream"


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], suffix: str = ".tmp") -> Path:
    """``write(tmp_name)`` into a temporary file beside ``path``, then rename it into place:
    readers see the old file or the complete new one, never a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
