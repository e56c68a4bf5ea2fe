"""Events: runs of positive final snippets per modality and class, reported as they
start, are extended, and end (offset is None while an event is open)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .classes import CLASSES

MODALITIES = ("audio", "visual", "audio_visual")


@dataclass(frozen=True)
class Event:
    modality: str
    label: str
    onset: float
    offset: float | None
    state: str  # "start" | "extend" | "end"


class EventTracker:
    """Feed final snippets in order with ``update``; ``close`` ends what is still open."""

    def __init__(self, classes: tuple[str, ...] = CLASSES, snippet_seconds: float = 1.0):
        self.classes = classes
        self.snippet_seconds = snippet_seconds
        self._open: dict[tuple[str, int], float] = {}  # (modality, class) -> onset
        self._end = 0.0

    def update(self, start: float, labels: dict[str, np.ndarray]) -> list[Event]:
        """``labels``: modality -> (C,) bool of one final snippet starting at ``start``."""
        events = []
        end = start + self.snippet_seconds
        if start > self._end + 1e-6 and self._open:  # snippets were dropped: nothing is known of the gap
            events.extend(self.close())
        for modality in MODALITIES:
            active = labels[modality]
            for c, name in enumerate(self.classes):
                key = (modality, c)
                if active[c]:
                    if key in self._open:
                        events.append(Event(modality, name, self._open[key], None, "extend"))
                    else:
                        self._open[key] = start
                        events.append(Event(modality, name, start, None, "start"))
                elif key in self._open:
                    events.append(Event(modality, name, self._open.pop(key), self._end, "end"))
        self._end = end
        return events

    def close(self) -> list[Event]:
        """End every open event at the end of the last snippet seen."""
        events = [Event(m, self.classes[c], onset, self._end, "end") for (m, c), onset in sorted(self._open.items())]
        self._open.clear()
        return events
