"""Steady labels: probabilities to on/off with hysteresis and minimum durations, as
pyannote's ``Binarize`` forms events, but online (a snippet at a time, with a bounded
delay), so that live labels do not flicker when a probability hovers at the threshold.

Per modality (audio, visual) and class, a snippet's gated probability ``p`` moves a small
state machine:

- off: ``p >= onset`` starts a candidate;
- candidate: it stays while ``p >= offset``; once it has ``min_on`` snippets it is on, from
  its first snippet; if ``p`` falls below ``offset`` earlier it was a flicker, and all
  of it is off;
- on: it stays while ``p >= offset``; below, a gap starts;
- gap: ``p >= onset`` again fills the gap (it is on throughout); once the gap has
  ``min_off`` snippets the event ended where the gap began.

So a snippet's label is known at most ``max(min_on, min_off) - 1`` snippets later
(``delay``). Audio-visual is audio AND visual of the steady labels, as in the paper.
With ``onset == offset`` and both minimums 1 this is the plain threshold, exactly: files
keep the official protocol by default.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

OFF, CANDIDATE, ON, GAP = range(4)


@dataclass(frozen=True)
class Binarize:
    onset: float = 0.5
    offset: float | None = None  # None: the onset (no hysteresis)
    min_on: int = 1  # snippets an event lasts at least
    min_off: int = 1  # snippets a gap lasts at least (shorter ones are filled)

    def __post_init__(self) -> None:
        if self.min_on < 1 or self.min_off < 1:
            raise ValueError("minimum durations are at least one snippet")
        if not 0.0 <= self.low <= self.onset <= 1.0:
            raise ValueError("thresholds must satisfy 0 <= offset <= onset <= 1")

    @property
    def low(self) -> float:
        return self.onset if self.offset is None else self.offset

    @property
    def delay(self) -> int:
        return max(self.min_on, self.min_off) - 1

    @property
    def plain(self) -> bool:
        return self.low == self.onset and self.min_on == 1 and self.min_off == 1

    def __call__(self, prob: np.ndarray) -> np.ndarray:
        """Offline: ``prob`` (T, ...) -> (T, ...) bool, the labels the online form gives."""
        prob = np.asarray(prob)
        online = OnlineBinarize(self, prob.shape[1:])
        out = [labels for p in prob for labels in online.push(p)]
        out.extend(online.flush())
        return np.stack(out) if out else np.zeros(prob.shape, bool)

    def __str__(self) -> str:
        if self.plain:
            return f"threshold {self.onset:g}"
        return (f"onset {self.onset:g}, offset {self.low:g}, events >= {self.min_on} s, "
                f"gaps >= {self.min_off} s filled below")


class OnlineBinarize:
    """``push(p)`` one snippet's probabilities (any shape, one machine per entry); returns
    the labels of the snippets now decided, oldest first; ``flush`` decides the rest
    (end of stream: a candidate too short is off, an open gap ends its event)."""

    def __init__(self, rule: Binarize, shape: tuple[int, ...]):
        self.rule = rule
        self.shape = shape
        n = int(np.prod(shape, dtype=np.int64))
        self.state = np.full(n, OFF, np.int8)
        self.run = np.zeros(n, np.int64)  # snippets in the current candidate or gap
        self._labels: deque[np.ndarray] = deque()  # of pending snippets: 1 on, 0 off, -1 undecided
        self.emitted = 0
        self.pushed = 0

    def _set(self, mask: np.ndarray, back: np.ndarray, value: int) -> None:
        """Decide entries ``mask`` for the ``back`` snippets before this one."""
        for j in np.flatnonzero(mask):
            for i in range(2, int(back[j]) + 2):
                self._labels[-i][j] = value

    def push(self, prob: np.ndarray) -> list[np.ndarray]:
        r = self.rule
        p = np.asarray(prob, dtype=np.float64).reshape(-1)
        self._labels.append(np.full(p.shape, -1, np.int8))
        self.pushed += 1
        now, s, run = self._labels[-1], self.state, self.run
        high, keep = p >= r.onset, p >= r.low

        # candidate: below low it was a flicker (all off); else it grows
        cand = s == CANDIDATE
        dropped = cand & ~keep
        self._set(dropped, run, 0)
        s[dropped] = OFF
        run[cand & keep] += 1

        # gap: >= onset fills it (all on); else it grows
        gap = s == GAP
        refill = gap & high
        self._set(refill, run, 1)
        s[refill] = ON
        run[gap & ~high] += 1

        # on: stays while >= low (this snippet on); below, a gap starts
        on = (s == ON) & ~refill
        now[(on & keep) | refill] = 1
        leave = on & ~keep
        s[leave] = GAP
        run[leave] = 1

        # off: >= onset starts a candidate, else this snippet is off
        off = s == OFF
        start = off & high
        s[start] = CANDIDATE
        run[start] = 1
        now[off & ~high] = 0

        # decisions reached with this snippet (it counts in ``run``)
        confirm = (s == CANDIDATE) & (run >= r.min_on)
        self._set(confirm, run - 1, 1)
        now[confirm] = 1
        s[confirm] = ON
        close = (s == GAP) & (run >= r.min_off)
        self._set(close, run - 1, 0)
        now[close] = 0
        s[close] = OFF
        return self._ready()

    def _ready(self) -> list[np.ndarray]:
        out = []
        while self._labels and (self._labels[0] >= 0).all():
            out.append(self._labels.popleft().astype(bool).reshape(self.shape))
            self.emitted += 1
        return out

    def flush(self) -> list[np.ndarray]:
        """End of stream (or of a stretch: dropped snippets break it): candidates and gaps
        still open are off; the machines start again from off."""
        for labels in self._labels:
            labels[labels < 0] = 0
        self.state[:] = OFF
        self.run[:] = 0
        return self._ready()
