"""One host clock for every live device, and the fit that maps a device's own sample
clock onto it.

A microphone counts samples on its own crystal, which runs some tens of ppm fast or slow
against the host; over an hour that is tenths of a second of audio-visual skew. Every
audio block and every camera frame is therefore stamped with ``time.monotonic`` as it
arrives, and the microphone's sample count is fitted against those stamps
(``n = a + r·t``), so that snippets are cut on host time for both modalities.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import numpy as np


class HostClock:
    """``now()`` is monotonic (never jumps with NTP); ``to_wall`` converts it to Unix time
    only for the records' ``captured_at`` / ``emitted_at``."""

    def __init__(self, now: Callable[[], float] = time.monotonic):
        self.now = now
        self._mono0 = now()
        self._wall0 = time.time()

    def to_wall(self, t: float) -> float:
        return self._wall0 + (t - self._mono0)


class DriftEstimator:
    """Least-squares fit of a device's sample count against host time.

    ``add(t, n)``: at host time ``t`` the device had produced ``n`` samples. Until the
    points span ``min_span`` seconds only the offset is fitted (nominal rate); after that
    the rate too, over the last ``history`` seconds. Callback jitter averages out; the
    input latency is taken out by the caller (PortAudio's ADC time)."""

    def __init__(self, nominal_rate: float, min_span: float = 4.0, history: float = 120.0):
        self.nominal_rate = float(nominal_rate)
        self.min_span = min_span
        self.history = history
        self._points: deque[tuple[float, float]] = deque()
        self._fit: tuple[float, float] | None = None  # (a, r)

    def add(self, t: float, n: float) -> None:
        self._points.append((t, n))
        while self._points and self._points[0][0] < t - self.history:
            self._points.popleft()
        self._fit = None

    def _solve(self) -> tuple[float, float]:
        if self._fit is None:
            pts = np.asarray(self._points, dtype=np.float64)
            t, n = pts[:, 0], pts[:, 1]
            t0 = t[0]  # centre for conditioning: monotonic seconds can be large
            if t[-1] - t0 >= self.min_span:
                rate, offset = np.polyfit(t - t0, n, 1)
            else:
                rate = self.nominal_rate
                offset = float(np.mean(n - rate * (t - t0)))
            self._fit = (offset - rate * t0, rate)
        return self._fit

    @property
    def ready(self) -> bool:
        return bool(self._points)

    @property
    def rate(self) -> float:
        """Samples per host second (the device's true rate, as the host sees it)."""
        return self._solve()[1] if self._points else self.nominal_rate

    @property
    def ppm(self) -> float:
        """How fast the device clock runs against the host, in parts per million."""
        return (self.rate / self.nominal_rate - 1.0) * 1e6

    def sample_at(self, t: np.ndarray | float) -> np.ndarray | float:
        """Device sample position (fractional) at host time ``t``."""
        a, r = self._solve()
        return a + r * np.asarray(t, dtype=np.float64)
