"""Media files as a lazy stream of 1 s snippets (PyAV).

Audio and video are decoded side by side as far as the next snippet needs, so memory
stays constant on a two-hour file, and frames are reduced and turned upright as they are
decoded (``frames``), so it does not depend on the picture size either. Audio of any rate and layout is resampled by FFmpeg
to 16 kHz mono; frames are picked 8 per second by presentation time (the frame nearest
to t + k/8), so variable frame rate is safe. A missing stream is fed as silence or black
frames and said in ``notes``; damage mid-file ends the stream with what decoded and the
reason in ``stopped``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AvvpError
from ..features.timing import FRAMES_PER_SNIPPET, SAMPLE_RATE, NearestFramePicker, snippet_times
from .frames import MAX_SHORT_SIDE, decoded_rgb, frame_rotation, quarter_turns, reduced_size

BLACK_SIZE = (224, 224)
MIN_LAST_SNIPPET = 0.5  # a trailing partial second becomes a (padded) snippet if this long
TRUNCATED_BY = 1.0  # decoding ending this much before the declared duration means a cut file


@dataclass
class Snippet:
    """One second of media: what every source yields."""

    index: int
    start: float  # media time, seconds
    audio: np.ndarray  # (16000,) float32, 16 kHz mono
    frames: np.ndarray  # (8, H, W, 3) uint8 RGB
    captured_at: float  # host clock (time.time()) when the snippet was complete

    @property
    def nbytes(self) -> int:
        return self.audio.nbytes + self.frames.nbytes


def _av():
    try:
        import av
    except ImportError:
        raise AvvpError("decoding media needs PyAV (a dependency of avvp-stream): pip install av") from None
    return av


def open_media(path: Path):
    av = _av()
    if not path.is_file():
        raise AvvpError(f"{path}: file not found")
    try:
        return av.open(str(path))
    except av.error.FFmpegError as exc:
        raise AvvpError(f"{path}: not a readable media file ({exc.strerror or exc})") from None


def _display_turns(container) -> int:
    """Quarter turns that bring the video upright, from its first frame's display matrix
    (FFmpeg attaches the container's rotation to every decoded frame)."""
    av = _av()
    try:
        first = next(container.decode(video=0), None)
    except av.error.FFmpegError:
        return 0
    return quarter_turns(frame_rotation(first)) if first is not None else 0


class FileSource:
    """Iterate ``Snippet``s of a media file; ``notes`` and ``stopped`` say what was odd."""

    def __init__(self, path: str | Path, max_seconds: float | None = None,
                 max_short_side: int | None = MAX_SHORT_SIDE):
        self.path = Path(path)
        self.max_seconds = max_seconds
        self.max_short_side = max_short_side  # None: frames at full resolution
        with open_media(self.path) as probe:
            self.has_audio = bool(probe.streams.audio)
            self.has_video = bool(probe.streams.video)
            self.header_duration = probe.duration / 1e6 if probe.duration else None
            video = probe.streams.video[0] if probe.streams.video else None
            size = BLACK_SIZE
            if video is not None and video.width:
                size = reduced_size(video.height, video.width, max_short_side)
            self.turns = _display_turns(probe) if video is not None else 0
            if self.turns % 2:
                size = size[::-1]
        if not (self.has_audio or self.has_video):
            raise AvvpError(f"{self.path}: no audio or video stream")
        self.notes: list[str] = []
        if not self.has_audio:
            self.notes.append("no audio stream: fed as silence")
        if not self.has_video:
            self.notes.append("no video stream: fed as black frames")
        if self.turns:
            self.notes.append(f"display matrix: frames turned {90 * self.turns} degrees counter-clockwise")
        self.stopped: str | None = None
        self.decoded_seconds = 0.0
        self._black = np.zeros((FRAMES_PER_SNIPPET, *size, 3), np.uint8)  # stand-in frames

    def _audio_chunks(self) -> Iterator[np.ndarray]:
        av = _av()
        with open_media(self.path) as container:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            done = 0.0
            try:
                for frame in container.decode(audio=0):
                    for out in resampler.resample(frame):
                        done += out.samples / SAMPLE_RATE
                        yield out.to_ndarray().reshape(-1)
                for out in resampler.resample(None):
                    yield out.to_ndarray().reshape(-1)
            except av.error.FFmpegError as exc:
                self.stopped = f"audio is corrupt after {done:.2f} s ({exc.strerror or exc})"

    def _video_frames(self) -> Iterator[tuple[float, np.ndarray]]:
        av = _av()
        with open_media(self.path) as container:
            stream = container.streams.video[0]
            start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            step = 1.0 / float(stream.average_rate) if stream.average_rate else 0.04
            t = 0.0
            try:
                for frame in container.decode(video=0):
                    if frame.time is None:
                        continue
                    t = frame.time - start
                    self.video_end = t + step
                    yield t, decoded_rgb(frame, self.turns, self.max_short_side)
            except av.error.FFmpegError as exc:
                self.stopped = f"video is corrupt after {t:.2f} s ({exc.strerror or exc})"

    def __iter__(self) -> Iterator[Snippet]:
        audio_iter = self._audio_chunks() if self.has_audio else None
        picker = NearestFramePicker(self._video_frames()) if self.has_video else None
        self.video_end = 0.0
        pending = np.zeros(0, np.float32)  # decoded samples not yet in a snippet
        decoded = 0  # samples decoded so far
        k = 0
        while self.max_seconds is None or k < self.max_seconds:
            while audio_iter is not None and decoded < (k + 1) * SAMPLE_RATE:
                chunk = next(audio_iter, None)
                if chunk is None:
                    audio_iter = None
                    break
                pending = np.concatenate([pending, chunk])
                decoded += chunk.size
            frames = None
            if picker is not None:
                picked = [picker.pick(t) for t in snippet_times(k)]
                frames = None if picked[0] is None else np.stack(picked)
            covered = max(decoded / SAMPLE_RATE, self.video_end) - k
            streams_done = audio_iter is None and (picker is None or picker.ended)
            if streams_done and covered < MIN_LAST_SNIPPET:
                break  # nothing, or too little, left of this second
            audio = np.pad(pending[:SAMPLE_RATE], (0, max(0, SAMPLE_RATE - pending.size)))
            pending = pending[SAMPLE_RATE:]
            self.decoded_seconds = k + min(1.0, covered)
            yield Snippet(k, float(k), audio.astype(np.float32), self._black if frames is None else frames, time.time())
            k += 1
        self._check_complete(max(decoded / SAMPLE_RATE, self.video_end))

    def _check_complete(self, end: float) -> None:
        """A file that stops decoding well before its declared duration was cut short (a
        download interrupted, a recording still being written): say so in ``stopped``."""
        declared = self.header_duration
        if declared is None or self.stopped:
            return
        if self.max_seconds is not None:
            declared = min(declared, self.max_seconds)
        if end < declared - TRUNCATED_BY:
            self.stopped = f"ended at {end:.1f} s of {declared:.1f} s declared (file truncated?)"
