"""Which video frames make a snippet: 8 per second, the frame nearest to ``t + k/8``.

This mirrors the official extraction (ffmpeg at 8 fps, 80 frames per 10 s clip) and only
uses presentation timestamps, so variable frame rate video is handled the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np

FRAMES_PER_SNIPPET = 8

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


def select_nearest(frames: Iterable[tuple[float, F]], targets: np.ndarray) -> Iterator[F]:
    """Streaming form of ``nearest_indices``: yields one frame per (sorted) target while
    holding at most two decoded frames. Targets past the last frame get the last frame."""
    targets = np.asarray(targets, dtype=np.float64)
    i, prev = 0, None
    for t, frame in frames:
        while i < len(targets) and t >= targets[i]:
            if prev is not None and targets[i] - prev[0] <= t - targets[i]:
                yield prev[1]
            else:
                yield frame
            i += 1
        if i == len(targets):
            return
        prev = (t, frame)
    if prev is not None:
        for _ in range(i, len(targets)):
            yield prev[1]
