"""Where a run's time goes: seconds per stage, per snippet, and the real-time factor.

The parse loop runs the stages one after the other in one thread, so its stages
(waiting for input or decoding it, preparing the networks' inputs, each network, the
HAN head, writing) add up to the loop's wall time; the summary says what share they
account for (``accounted``). Work done beside the loop (a live camera's frame conversion, in its own
thread) is recorded as a background stage and not counted in that sum.

A batch's time is shared equally by its snippets, so per-snippet percentiles mean the
same for files (batches of 8) and live input (batches of 1). Only the last
``HISTORY`` snippets are kept for the percentiles: a week-long stream stays bounded.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager

HISTORY = 36_000  # snippets kept for percentiles (10 hours live)


class StageTimes:
    """``with times.stage(name):`` around each stage's work, ``snippets_done(n)`` after each
    batch of ``n`` snippets, ``start()`` / ``stop()`` around the loop."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter, sync: Callable[[], None] | None = None):
        self.clock = clock
        self.sync = sync  # waits for queued device work (a GPU) before a stage's clock stops
        self.order: list[str] = []
        self.background: set[str] = set()
        self.totals: dict[str, float] = {}
        self.per_snippet: dict[str, deque[float]] = {}
        self._pending: dict[str, float] = {}
        self._lock = threading.Lock()
        self.snippets = 0
        self.started: float | None = None
        self.stopped: float | None = None
        self.on_batch: Callable[[StageTimes], None] | None = None  # e.g. --verbose reports
        # background stages read at each batch: () -> (stage, seconds since the last read)
        self.background_sources: list[Callable[[], tuple[str, float]]] = []

    def _stage(self, name: str, background: bool) -> None:
        if name not in self.totals:
            self.order.append(name)
            self.totals[name] = 0.0
            self.per_snippet[name] = deque(maxlen=HISTORY)
            self._pending[name] = 0.0
            if background:
                self.background.add(name)

    def add(self, name: str, seconds: float, background: bool = False) -> None:
        with self._lock:
            self._stage(name, background)
            self.totals[name] += seconds
            self._pending[name] += seconds

    @contextmanager
    def stage(self, name: str):
        t = self.clock()
        try:
            yield
        finally:
            if self.sync is not None:
                self.sync()
            self.add(name, self.clock() - t)

    def start(self) -> None:
        self.started = self.clock()

    def stop(self) -> None:
        self.stopped = self.clock()

    def snippets_done(self, n: int) -> None:
        """``n`` snippets went through every stage since the last call: share the time."""
        if n <= 0:
            return
        for source in self.background_sources:
            self.add(*source(), background=True)
        with self._lock:
            for name, seconds in self._pending.items():
                self.per_snippet[name].extend([seconds / n] * n)
                self._pending[name] = 0.0
            self.snippets += n
        if self.on_batch is not None:
            self.on_batch(self)

    @property
    def wall(self) -> float:
        if self.started is None:
            return 0.0
        return (self.stopped if self.stopped is not None else self.clock()) - self.started

    def summary(self) -> dict:
        """The record for the closing summary: per stage the total seconds, its share of
        the loop's wall time and p50 / p99 per snippet (ms); the loop's wall time, the
        share the stages account for, and the real-time factor (working seconds, that is
        wall time less waiting for input, per second of input)."""
        import numpy as np

        wall = self.wall
        stages = {}
        for name in self.order:
            values = np.asarray(self.per_snippet[name], dtype=np.float64)
            p50, p99 = (np.percentile(values, [50, 99]) * 1e3) if values.size else (0.0, 0.0)
            stages[name] = {"total_s": round(self.totals[name], 4), "share": round(self.totals[name] / wall, 4) if wall else None,
                            "p50_ms": round(float(p50), 2), "p99_ms": round(float(p99), 2),
                            **({"background": True} if name in self.background else {})}
        counted = sum(self.totals[n] for n in self.order if n not in self.background)
        working = wall - self.totals.get("capture_wait", 0.0)
        return {"stages": stages, "wall_s": round(wall, 4), "accounted": round(counted / wall, 4) if wall else None,
                "snippets": self.snippets, "rtf": round(working / self.snippets, 4) if self.snippets else None}

    def lines(self) -> list[str]:
        """The summary as lines for a terminal."""
        s = self.summary()
        out = [f"time: {s['wall_s']:.2f} s for {s['snippets']} snippets"
               + (f", real-time factor {s['rtf']:.3f}" if s["rtf"] is not None else "")
               + (f"; stages account for {100 * s['accounted']:.0f}%" if s["accounted"] is not None else "")]
        for name, st in s["stages"].items():
            share = f"{100 * st['share']:5.1f}%" if st["share"] is not None else "     "
            where = " (beside the loop)" if st.get("background") else ""
            out.append(f"  {name:<14} {st['total_s']:9.3f} s {share}  p50 {st['p50_ms']:8.2f} ms  "
                       f"p99 {st['p99_ms']:8.2f} ms{where}")
        return out


def every(seconds: float, report: Callable[[StageTimes], None], clock: Callable[[], float] = time.monotonic):
    """An ``on_batch`` hook that calls ``report`` at most once per ``seconds``."""
    last = [clock()]

    def hook(times: StageTimes) -> None:
        now = clock()
        if now - last[0] >= seconds:
            last[0] = now
            report(times)

    return hook
