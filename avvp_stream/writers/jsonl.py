"""JSON Lines, one object per emitted snippet and per event change, flushed at once so
that nothing already emitted is lost if the run dies.

Records (stable; class names as in the LLP files; times in seconds):
``{"kind": "snippet", "index": 3, "start": 3.0, "end": 4.0, "audio": [...], "visual": [...],
"audio_visual": [...], "final": true, "captured_at": <unix time>, "emitted_at": <unix time>}``
``{"kind": "event", "modality": "audio", "label": "Dog", "onset": 3.0, "offset": 6.0,
"state": "end", "emitted_at": <unix time>}`` (``offset`` null while the event is open).
A run ends with ``{"kind": "summary", "snippets": 30, ...}``: where the time went
(``time``: per stage, stages.py) and, for live input, what was dropped, filled with
silence or repeated frames, saved and measured.
"""

from __future__ import annotations

import json
import time
from typing import TextIO

from ..classes import CLASSES
from ..events import Event
from .base import Writer


class JsonlWriter(Writer):
    def __init__(self, out: TextIO, classes: tuple[str, ...] = CLASSES):
        self.out = out
        self.classes = classes

    def _write(self, record: dict) -> None:
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    def snippet(self, index: int, start: float, labels: dict, final: bool, captured_at: float | None) -> None:
        names = {m: [self.classes[c] for c, on in enumerate(v) if on] for m, v in labels.items()}
        self._write({"kind": "snippet", "index": index, "start": start, "end": start + 1.0, **names,
                     "final": final, "captured_at": captured_at, "emitted_at": time.time()})

    def summary(self, stats: dict) -> None:
        self._write({"kind": "summary", **stats, "emitted_at": time.time()})

    def event(self, ev: Event) -> None:
        self._write({"kind": "event", "modality": ev.modality, "label": ev.label, "onset": ev.onset,
                     "offset": ev.offset, "state": ev.state, "emitted_at": time.time()})
