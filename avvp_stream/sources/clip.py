"""A media file as exactly N snippets, for batch feature extraction (LLP clips: 10).

Built on ``FileSource``: a clip shorter than N seconds is padded (silence, last frame
repeated), a longer one is cut, and damage mid-file is an error (a half-decoded clip
would silently shift every feature).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import AvvpError
from .file import SAMPLE_RATE, FileSource


@dataclass
class Clip:
    audio: np.ndarray  # (N * 16000,) float32
    frames: np.ndarray  # (N * 8, H, W, 3) uint8
    duration: float  # seconds of media
    notes: list[str] = field(default_factory=list)


def decode_clip(path: str | Path, seconds: int = 10, threads: int | None = None) -> Clip:
    path = Path(path)
    source = FileSource(path, max_seconds=seconds, clip=seconds, threads=threads)  # LLP's frames for a clip processed whole
    snippets = list(source)
    if source.stopped:
        raise AvvpError(f"{path}: {source.stopped}")
    if not snippets:
        raise AvvpError(f"{path}: shorter than half a second, nothing to extract")
    notes = list(source.notes)
    header = source.header_duration or 0.0
    duration = max(source.decoded_seconds, header)
    if duration < seconds - 0.05:
        notes.append(f"{duration:.2f} s long: padded to {seconds} s")
    elif duration > seconds + 0.05:
        notes.append(f"{duration:.2f} s long: the first {seconds} s used")
    audio = np.concatenate([s.audio for s in snippets])
    frames = np.concatenate([s.frames for s in snippets])
    missing = seconds - len(snippets)
    if missing:
        audio = np.pad(audio, (0, missing * SAMPLE_RATE))
        frames = np.concatenate([frames, np.repeat(frames[-1:], missing * len(snippets[0].frames), axis=0)])
    return Clip(audio=audio, frames=frames, duration=duration, notes=notes)
