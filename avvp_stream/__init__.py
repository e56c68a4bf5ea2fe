"""avvp-stream: audio-visual video parsing (what is heard, seen, or both, per second).

Heavy modules (torch) load on first use, so ``import avvp_stream`` stays cheap.
"""

from .classes import CLASSES, NUM_CLASSES
from .errors import AvvpError

__version__ = "0.1.0"

_LAZY = {
    "HAN": "model",
    "HANConfig": "model",
    "load_model": "checkpoint",
    "save_checkpoint": "checkpoint",
}

__all__ = ["CLASSES", "NUM_CLASSES", "AvvpError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'avvp_stream' has no attribute {name!r}")
