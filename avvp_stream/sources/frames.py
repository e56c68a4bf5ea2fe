"""Frames as every source hands them on: upright, and no larger than the networks need.

A snippet's memory must not depend on the input's resolution: a 4K frame is 25 MB, and a
snippet holds eight. ResNet-152 reads the frame at 256 px on its shorter side and
R(2+1)D-18 at 112 x 112, so frames whose shorter side is over ``MAX_SHORT_SIDE`` are
reduced (area averaging) as they are decoded or captured. Frames up to 480p (every LLP
clip) pass untouched, so their features are exactly those of full-resolution
preprocessing; the deviation for larger inputs is measured in benchmarks/frame_reduction.py.

Phone videos are stored sideways with a display-matrix rotation; frames are turned the
way a player would show them before anything reads them.
"""

from __future__ import annotations

import numpy as np

MAX_SHORT_SIDE = 480


def reduced_size(height: int, width: int, max_short: int | None = MAX_SHORT_SIDE) -> tuple[int, int]:
    """(height, width) with the shorter side brought down to ``max_short`` (aspect kept,
    even sizes for the converters); unchanged when already that small, or when
    ``max_short`` is None (full resolution)."""
    short = min(height, width)
    if max_short is None or short <= max_short:
        return height, width
    scale = max_short / short
    even = lambda v: max(2, int(round(v * scale / 2)) * 2)  # noqa: E731
    return (max_short, even(width)) if height == short else (even(height), max_short)


def quarter_turns(rotation: float | None) -> int:
    """Counter-clockwise quarter turns that bring a frame upright, from the display
    matrix's rotation (degrees counter-clockwise, as FFmpeg and PyAV report it)."""
    return int(round((rotation or 0) / 90)) % 4


def upright(rgb: np.ndarray, turns: int) -> np.ndarray:
    return rgb if turns == 0 else np.ascontiguousarray(np.rot90(rgb, turns))


def decoded_rgb(frame, turns: int = 0, max_short: int | None = MAX_SHORT_SIDE) -> np.ndarray:
    """A PyAV video frame -> uint8 RGB (H, W, 3), reduced by swscale while converting
    (the full-size RGB image is never made) and turned upright. ``max_short=None`` keeps
    the full resolution (for measuring what the reduction changes)."""
    height, width = reduced_size(frame.height, frame.width, max_short)
    if (height, width) == (frame.height, frame.width):
        rgb = frame.to_ndarray(format="rgb24")
    else:
        rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA").to_ndarray()
    return upright(rgb, turns)


def captured_rgb(bgr: np.ndarray, cv2) -> np.ndarray:
    """An OpenCV BGR frame -> uint8 RGB, reduced the same way (OpenCV has already turned
    it upright: ``CAP_PROP_ORIENTATION_AUTO``)."""
    height, width = reduced_size(*bgr.shape[:2])
    if (height, width) != bgr.shape[:2]:
        bgr = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def frame_rotation(frame) -> float:
    """Degrees counter-clockwise from the frame's display matrix (0 without one)."""
    return float(getattr(frame, "rotation", 0) or 0)
