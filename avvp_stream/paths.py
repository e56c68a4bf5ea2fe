"""Where avvp-stream keeps downloaded weights and caches: ``$AVVP_STREAM_HOME`` or the
user's cache folder (``$XDG_CACHE_HOME/avvp-stream``, default ``~/.cache/avvp-stream``)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    explicit = os.environ.get("AVVP_STREAM_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "avvp-stream"
