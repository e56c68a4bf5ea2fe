"""``--plot``: the event timeline as a picture, laid out like Fig. 1 of the paper: an
audio, a visual and an audio-visual row, each with one lane per class that occurred."""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import AvvpError
from ..sources.camera import import_cv2
from ..events import MODALITIES, Event
from .base import Writer

COLOURS = {"audio": (40, 150, 220), "visual": (200, 60, 160), "audio_visual": (50, 170, 80)}  # RGB
TITLES = {"audio": "Audio events", "visual": "Visual events", "audio_visual": "Audio-visual events"}
LEFT, RIGHT, TOP, LANE, SECTION_GAP, AXIS = 190, 30, 40, 22, 30, 40
PLOT_SPAN = 3600.0  # seconds a plot keeps: an hour is 21600 px wide at the least scale
BACKGROUND, INK, GRID = (255, 255, 255), (30, 30, 30), (225, 225, 225)


def _cv2():
    return import_cv2("--plot")


def layout(events: list[Event]) -> list[tuple[str, list[str]]]:
    """(modality, classes with an event in it, in order of first onset) for each row."""
    rows = []
    for modality in MODALITIES:
        seen: dict[str, float] = {}
        for ev in events:
            if ev.modality == modality:
                seen[ev.label] = min(seen.get(ev.label, ev.onset), ev.onset)
        rows.append((modality, sorted(seen, key=lambda name: (seen[name], name))))
    return rows


def lane_box(duration: float, rows, modality: str, label: str, onset: float, offset: float,
             px_per_second: float) -> tuple[int, int, int, int]:
    """Pixel box (x0, y0, x1, y1) of an event: where ``draw_timeline`` paints it."""
    y = TOP
    for m, labels in rows:
        y += LANE  # the section title
        if m == modality:
            y += labels.index(label) * LANE
            return (LEFT + round(onset * px_per_second), y + 3, LEFT + round(offset * px_per_second), y + LANE - 3)
        y += max(1, len(labels)) * LANE + SECTION_GAP
    raise KeyError(modality)


def draw_timeline(events: list[Event], duration: float, title: str = "") -> tuple[np.ndarray, float]:
    """RGB image of the ended ``events`` over ``[0, duration]`` seconds, and its scale in
    pixels per second."""
    cv2 = _cv2()
    duration = max(duration, 1.0)
    px = float(np.clip(1200.0 / duration, 6.0, 80.0))
    rows = layout(events)
    height = TOP + sum(LANE + max(1, len(labels)) * LANE + SECTION_GAP for _, labels in rows) + AXIS
    width = LEFT + round(duration * px) + RIGHT
    img = np.full((height, width, 3), BACKGROUND, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    step = next(s for s in (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600) if s * px >= 40)
    for t in np.arange(0.0, duration + 1e-9, step):
        x = LEFT + round(t * px)
        cv2.line(img, (x, TOP), (x, height - AXIS), GRID, 1)
        cv2.putText(img, f"{t:g}", (x - 6, height - AXIS + 18), font, 0.4, INK, 1, cv2.LINE_AA)
    cv2.putText(img, title or "avvp-stream", (10, 25), font, 0.6, INK, 1, cv2.LINE_AA)
    cv2.putText(img, "time (s)", (width - RIGHT - 60, height - 6), font, 0.4, INK, 1, cv2.LINE_AA)
    y = TOP
    for modality, labels in rows:
        cv2.putText(img, TITLES[modality], (10, y + 16), font, 0.5, COLOURS[modality], 1, cv2.LINE_AA)
        y += LANE
        if not labels:
            cv2.putText(img, "none", (LEFT, y + 15), font, 0.4, INK, 1, cv2.LINE_AA)
        for label in labels:
            cv2.putText(img, label.replace("_", " "), (20, y + 15), font, 0.42, INK, 1, cv2.LINE_AA)
            y += LANE
        y += (0 if labels else LANE) + SECTION_GAP
    for ev in events:
        x0, y0, x1, y1 = lane_box(duration, rows, ev.modality, ev.label, ev.onset, ev.offset, px)
        cv2.rectangle(img, (x0, y0), (max(x0 + 1, x1 - 1), y1), COLOURS[ev.modality], thickness=-1)
    return img, px


class TimelinePlot(Writer):
    """Collects ended events while the run goes on; ``close`` draws and saves the PNG.
    A long live run keeps only the last ``span`` seconds (memory and picture width stay
    bounded on a stream that runs for days); the title then says where the plot starts."""

    def __init__(self, path: str | Path, title: str = "", span: float = PLOT_SPAN):
        self.path = Path(path)
        if self.path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            raise AvvpError(f"--plot {self.path}: give a .png (or .jpg) file name")
        if not self.path.parent.is_dir():
            raise AvvpError(f"--plot {self.path}: folder {self.path.parent} does not exist")
        _cv2()
        self.title = title
        self.span = span
        self.events: deque[Event] = deque()
        self.duration = 0.0

    @property
    def start(self) -> float:
        return max(0.0, self.duration - self.span)

    def snippet(self, index: int, start: float, labels: dict, final: bool, captured_at: float | None) -> None:
        self.duration = max(self.duration, start + 1.0)
        self._forget()

    def event(self, ev: Event) -> None:
        if ev.state == "end":
            self.events.append(ev)
            self.duration = max(self.duration, ev.offset)
            self._forget()

    def _forget(self) -> None:
        while self.events and self.events[0].offset <= self.start:
            self.events.popleft()

    def close(self) -> None:
        cv2 = _cv2()
        t0, title = self.start, self.title
        events = list(self.events)
        if t0 > 0:  # drawn from t0: shift, and say so
            events = [replace(ev, onset=max(ev.onset, t0) - t0, offset=ev.offset - t0) for ev in events]
            title = f"{title} (the last {self.span:g} s, from {t0:g} s)"
        img, _ = draw_timeline(events, self.duration - t0, title)
        if not cv2.imwrite(str(self.path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
            raise AvvpError(f"--plot {self.path}: could not write the image")
