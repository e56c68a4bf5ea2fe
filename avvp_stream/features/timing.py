"""Which video frames make a snippet: 8 per second, the frame nearest to ``t + k/8``.

This mirrors the official extraction (ffmpeg at 8 fps, 80 frames per 10 s clip) and only
uses presentation timestamps, so variable frame rate video is handled the same way.
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


def pool_frames(video_2d, frames_per_snippet: int):
    """(..., k*T, D) frame features -> (..., T, D) snippet means; numpy arrays or torch
    tensors alike.

    The official model applies ``fc_v`` to every frame and then averages groups of k; since
    ``fc_v`` is affine, averaging first is the same function at 1/k of the cost and memory.
    """
    *lead, n, d = video_2d.shape
    return video_2d.reshape(*lead, n // frames_per_snippet, frames_per_snippet, d).mean(-2)
