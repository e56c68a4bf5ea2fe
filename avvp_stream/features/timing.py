"""Which video frames make a snippet: 8 per second, by one of two rules.

- Files (``avvp-train extract``, offline parsing): the official LLP rule. Its extraction
  ran ``ffmpeg -i VIDEO -r 8 %06d.jpg`` (ffmpeg's constant-frame-rate conversion, which
  drops and duplicates input frames by its own thresholds: 82 JPEGs for a 10 s clip),
  then took ``np.round(np.linspace(0, n - 1, 80))`` of the n JPEGs. ``FfmpegRate``
  reproduces the first step from the decoded frames' timestamps, ``clip_picks`` the
  second; a long file takes the converter's outputs 8 per second, in order.
- Live input (cameras): the frame nearest to ``t + k/8``, which needs no later frame
  (``NearestFramePicker``, ``nearest_indices``).

Both use presentation timestamps only, so variable frame rate is handled the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import numpy as np

FRAMES_PER_SNIPPET = 8
SAMPLE_RATE = 16000  # audio samples per second of a snippet (16 kHz mono, as VGGish reads it)

F = TypeVar("F")


def snippet_times(start: float, frames: int = FRAMES_PER_SNIPPET) -> np.ndarray:
    return start + np.arange(frames) / frames


def nearest_indices(timestamps: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Index of the frame nearest to each target (ties go to the earlier frame)."""
    timestamps = np.asarray(timestamps, dtype=np.float64)
    right = np.clip(np.searchsorted(timestamps, targets, side="left"), 0, len(timestamps) - 1)
    left = np.clip(right - 1, 0, len(timestamps) - 1)
    take_left = np.abs(targets - timestamps[left]) <= np.abs(timestamps[right] - targets)
    return np.where(take_left, left, right)


class NearestFramePicker:
    """Streaming form of ``nearest_indices``: the frame nearest to each (increasing) target
    time, decoding only as far as needed and holding two frames. Targets past the last
    frame get the last frame; ``None`` only when there is no frame at all."""

    def __init__(self, frames: Iterable[tuple[float, F]]):
        self._frames = iter(frames)
        self.prev: tuple[float, F] | None = None
        self.cur: tuple[float, F] | None = None
        self.ended = False

    def pick(self, target: float) -> F | None:
        while not self.ended and (self.cur is None or self.cur[0] < target):
            nxt = next(self._frames, None)
            if nxt is None:
                self.ended = True
                break
            self.prev, self.cur = self.cur, nxt
        if self.cur is None:
            return None
        if self.cur[0] >= target and self.prev is not None and target - self.prev[0] <= self.cur[0] - target:
            return self.prev[1]
        return self.cur[1]


class FfmpegRate:
    """ffmpeg's constant-frame-rate conversion of ``-r 8`` (fftools' video sync in CFR
    mode, ``video_sync_process``; ``do_video_out`` in ffmpeg 4), fed the decoded frames in
    presentation order: ``push`` returns the output frames an input frame makes (none,
    itself, or copies; with copies of the previous frame first when the input jumped).

    In output frame units: ``delta0`` is how far the frame's time is past the next output
    slot, ``delta = delta0 + duration``. ``delta < -1.1``: dropped; ``delta > 1.1``:
    ``round(delta)`` copies, of which ``round(delta0 - 0.6)`` repeat the previous frame
    (when ``delta0 > 1.1``); else one. Times count from the file's start.
    """

    def __init__(self, rate: float = FRAMES_PER_SNIPPET):
        self.rate = rate
        self.next_slot = 0  # output frames made so far
        self._previous = None

    def push(self, time: float, duration: float, frame: F) -> list[F]:
        """``time`` and ``duration`` of the input frame in seconds."""
        delta0 = time * self.rate - self.next_slot
        delta = delta0 + duration * self.rate
        count, repeat = 1, 0
        if delta < -1.1:
            count = 0
        elif delta > 1.1:
            count = _round_half_even(delta)
            if delta0 > 1.1:
                repeat = min(count, _round_half_even(delta0 - 0.6))
        previous = frame if self._previous is None else self._previous
        out = [previous] * repeat + [frame] * (count - repeat)
        self.next_slot += count
        self._previous = frame
        return out


def _round_half_even(x: float) -> int:
    """C's lrint under the default rounding mode (what ffmpeg calls)."""
    return int(np.rint(x))


def clip_picks(outputs: int, frames: int) -> np.ndarray:
    """The official second step: which of a clip's ``outputs`` 8 fps frames become its
    ``frames`` (80 for 10 s), spread evenly (numpy's round: half to even)."""
    if outputs < 1:
        raise ValueError("a clip needs at least one frame")
    return np.round(np.linspace(0, outputs - 1, frames)).astype(np.int64)


def pool_frames(video_2d, frames_per_snippet: int):
    """(..., k*T, D) frame features -> (..., T, D) snippet means; numpy arrays or torch
    tensors alike.

    The official model applies ``fc_v`` to every frame and then averages groups of k; since
    ``fc_v`` is affine, averaging first is the same function at 1/k of the cost and memory.
    """
    *lead, n, d = video_2d.shape
    return video_2d.reshape(*lead, n // frames_per_snippet, frames_per_snippet, d).mean(-2)
