"""Labels drawn on a picture: a dark panel at the top left with one row per modality
(audio, visual, audio-visual) and one for the events open now; provisional labels in
grey and marked. The live window (``--show``) and the annotated video (``--annotate``)
draw with this one function, so that what a user sees live is what a file shows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..classes import CLASSES
from ..sources.camera import import_cv2
from ..events import MODALITIES, Event

ROW_NAMES = {"audio": "audio", "visual": "visual", "audio_visual": "audio-visual"}
COLOURS = {"audio": (90, 200, 255), "visual": (255, 120, 220), "audio_visual": (120, 255, 120)}  # RGB
PROVISIONAL = (170, 170, 170)
TEXT = (255, 255, 255)
FONT_SCALE = 0.5  # at 480 px of height; scaled with the picture, but not below 360 px's
PANEL_ALPHA = 0.6


def _names(mask) -> str:
    return ", ".join(CLASSES[c].replace("_", " ") for c, on in enumerate(mask) if on) or "-"


@dataclass
class LabelState:
    """What the picture shows now: the newest snippet's labels and the open events. Fed
    with the writer calls (``snippet``, ``event``)."""

    rows: dict[str, str] = field(default_factory=lambda: {m: "-" for m in MODALITIES})
    start: float | None = None
    final: bool = True
    open: dict[tuple[str, str], float] = field(default_factory=dict)

    def snippet(self, start: float, labels: dict, final: bool) -> None:
        if self.start is not None and start < self.start:
            return  # an older snippet made final: the picture keeps the newest
        self.rows = {m: _names(labels[m]) for m in MODALITIES}
        self.start, self.final = start, final

    def event(self, ev: Event) -> None:
        if ev.state == "end":
            self.open.pop((ev.modality, ev.label), None)
        else:
            self.open[(ev.modality, ev.label)] = ev.onset

    def lines(self) -> list[tuple[str, tuple[int, int, int]]]:
        """(text, RGB colour) per row, top to bottom."""
        mark = "" if self.final else " (provisional)"
        out = [(f"{ROW_NAMES[m]}: {self.rows[m]}{mark}", COLOURS[m] if self.final else PROVISIONAL)
               for m in MODALITIES]
        events = "; ".join(f"{label.replace('_', ' ')} ({ROW_NAMES[m]}) since {onset:g}s"
                           for (m, label), onset in sorted(self.open.items())) or "-"
        when = "" if self.start is None else f"{self.start:g}s  "
        out.append((f"{when}events: {events}", TEXT))
        return out


def layout(height: int) -> tuple[float, int, int]:
    """(font scale, row height, margin) for a picture ``height`` pixels high."""
    scale = FONT_SCALE * max(height, 360) / 480
    row = max(12, int(round(52 * scale)))  # 26 px at 480 px
    return scale, row, max(4, row // 3)


def row_box(height: int, width: int, i: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of row ``i``'s text band (tests read the pixels there)."""
    _, row, margin = layout(height)
    top = margin + i * row
    return top, min(height, top + row), margin, width - margin


def draw(rgb: np.ndarray, lines: list[tuple[str, tuple[int, int, int]]], cv2=None) -> np.ndarray:
    """A copy of ``rgb`` (H, W, 3) uint8 with ``lines`` drawn on a dark panel."""
    cv2 = cv2 or import_cv2("drawing labels")
    out = np.ascontiguousarray(rgb).copy()
    height, width = out.shape[:2]
    scale, row, margin = layout(height)
    thickness = max(1, int(round(scale * 2)))
    widths = [cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] for text, _ in lines]
    right = min(width, 2 * margin + max(widths, default=0))
    bottom = min(height, 2 * margin + row * len(lines))
    panel = out[:bottom, :right]
    panel[:] = (panel.astype(np.float32) * (1 - PANEL_ALPHA)).astype(np.uint8)
    for i, (text, colour) in enumerate(lines):
        baseline = margin + i * row + int(row * 0.75)
        cv2.putText(out, text, (margin, baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)
    return out
