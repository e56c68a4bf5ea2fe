"""Media files as a lazy stream of 1 s snippets (PyAV).

Audio and video are decoded side by side as far as the next snippet needs, so memory
stays constant on a two-hour file, and frames are reduced and turned upright as they are
decoded (``frames``), so it does not depend on the picture size either. Audio of any
rate and layout is resampled by FFmpeg to 16 kHz mono. Frames are picked 8 per second by
presentation time, as LLP's extraction picked them (``features/timing.py``): ffmpeg's
8 fps conversion, then, for a clip processed whole, the official even spread over the
clip; only the frames picked are converted to RGB. A missing stream is fed as silence or
black frames and said in ``notes``; damage mid-file ends the stream with what decoded and
the reason in ``stopped``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AvvpError
from ..features.timing import (FRAMES_PER_SNIPPET, SAMPLE_RATE, FfmpegRate, NearestFramePicker, clip_picks,
                               snippet_times)
from .recorder import CAPTURE_TAG
from .frames import MAX_SHORT_SIDE, decoded_rgb, frame_rotation, quarter_turns, reduced_size

BLACK_SIZE = (224, 224)
MIN_LAST_SNIPPET = 0.5  # a trailing partial second becomes a (padded) snippet if this long
TRUNCATED_BY = 1.0  # decoding ending this much before the declared duration means a cut file
FRAME_RULES = ("official", "nearest")  # features/timing.py


def frame_duration(frame, default: float) -> float:
    """A decoded frame's duration in seconds (``default``, one frame at the stream's rate,
    where PyAV before 14.3 or the file does not say)."""
    duration = getattr(frame, "duration", None)
    return float(duration * frame.time_base) if duration and frame.time_base else default


def whole_snippets(seconds: float) -> int:
    """Snippets ``seconds`` of media make: whole seconds, and a last partial one of at least
    ``MIN_LAST_SNIPPET``."""
    whole = int(seconds)
    return whole + (seconds - whole >= MIN_LAST_SNIPPET)


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


class _Decoded:
    """A decoded frame, converted to upright RGB only if it is picked (ffmpeg's rule drops
    most frames of 25-30 fps video), and once however often it is picked."""

    __slots__ = ("frame", "turns", "max_short_side", "_rgb")

    def __init__(self, frame, turns: int, max_short_side: int | None):
        self.frame, self.turns, self.max_short_side, self._rgb = frame, turns, max_short_side, None

    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            self._rgb = decoded_rgb(self.frame, self.turns, self.max_short_side)
            self.frame = None
        return self._rgb


class FileSource:
    """Iterate ``Snippet``s of a media file; ``notes`` and ``stopped`` say what was odd.

    ``frame_rule``: ``"official"`` (LLP's: ffmpeg's 8 fps conversion, snippet k gets
    outputs 8k..8k+7), or ``"nearest"`` (the live rule, for comparisons); default the
    official one, or the live one for a capture saved by ``--save-capture``. ``clip``: a file
    whose video lasts at most that many seconds is a clip processed whole: its 8 fps
    outputs are spread over the seconds it covers as the official extraction spread them
    (``clip_picks``), so a 10 s LLP clip gets exactly LLP's 80 frames."""

    def __init__(self, path: str | Path, max_seconds: float | None = None,
                 max_short_side: int | None = MAX_SHORT_SIDE, frame_rule: str | None = None,
                 clip: float | None = None, threads: int | None = None):
        if frame_rule is not None and frame_rule not in FRAME_RULES:
            raise ValueError(f"frame_rule must be one of {FRAME_RULES}")
        self.path = Path(path)
        self.max_seconds = max_seconds
        self.max_short_side = max_short_side  # None: frames at full resolution
        self.threads = threads  # video decoder threads (None: FFmpeg's default, one per core)
        with open_media(self.path) as probe:
            # a live session saved by --save-capture: times count from the session's start, and
            # its snippets are the live ones only with the live frame rule
            self.capture = probe.metadata.get(CAPTURE_TAG) == "1"
            self.frame_rule = frame_rule or ("nearest" if self.capture else "official")
            self.has_audio = bool(probe.streams.audio)
            self.has_video = bool(probe.streams.video)
            self.header_duration = probe.duration / 1e6 if probe.duration else None
            self.start = probe.start_time / 1e6 if probe.start_time is not None else 0.0  # ffmpeg's zero
            if self.capture:
                self.start = 0.0
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
        if self.capture:
            self.notes.append("a capture saved by avvp-stream: frames picked as live input picks them")
        if self.turns:
            self.notes.append(f"display matrix: frames turned {90 * self.turns} degrees counter-clockwise")
        self.stopped: str | None = None
        self.decoded_seconds = 0.0
        # processed whole: the header says it is no longer than ``clip`` (or it is cut there)
        self.clip = clip if (clip is not None and self.frame_rule == "official" and (
            (max_seconds is not None and max_seconds <= clip)
            or (self.header_duration is not None and self.header_duration <= clip + MIN_LAST_SNIPPET))) else None
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

    def _video_frames(self) -> Iterator[tuple[float, float, _Decoded]]:
        """(time from the file's start, duration, frame) in presentation order."""
        av = _av()
        with open_media(self.path) as container:
            stream = container.streams.video[0]
            if self.threads:  # beside torch or other decoders, one thread per core oversubscribes
                stream.codec_context.thread_count = self.threads
            rate = stream.guessed_rate or stream.average_rate
            step = 1.0 / float(rate) if rate else 0.04
            t = 0.0
            try:
                for frame in container.decode(video=0):
                    if frame.time is None:
                        continue
                    t = frame.time - self.start
                    duration = frame_duration(frame, step)
                    self.video_end = t + duration
                    yield t, duration, _Decoded(frame, self.turns, self.max_short_side)
            except av.error.FFmpegError as exc:
                self.stopped = f"video is corrupt after {t:.2f} s ({exc.strerror or exc})"

    def _video(self) -> Iterator[list | None]:
        """Each snippet's 8 frames (``_Decoded``), or None when there is no frame at all."""
        frames = self._video_frames()
        if self.frame_rule == "nearest":
            yield from self._nearest(frames)
        elif self.clip is not None:
            yield from self._whole_clip(frames)
        else:
            yield from self._per_second(frames)

    def _nearest(self, frames) -> Iterator[list | None]:
        picker = NearestFramePicker((t, f) for t, _, f in frames)
        for k in itertools.count():
            picked = [picker.pick(t) for t in snippet_times(k)]
            self._video_done = picker.ended
            yield None if picked[0] is None else picked

    def _converted(self, frames, limit: float | None) -> Iterator[_Decoded]:
        """ffmpeg's 8 fps frames, from the input frames before ``limit`` seconds."""
        rate = FfmpegRate()
        for t, duration, frame in frames:
            if limit is not None and t >= limit:
                break
            yield from rate.push(t, duration, frame)

    def _per_second(self, frames) -> Iterator[list | None]:
        """Snippet k: the 8 fps outputs 8k..8k+7 (a short last second repeats its last)."""
        outputs = self._converted(frames, self.max_seconds)
        last = None
        for k in itertools.count():
            part = list(itertools.islice(outputs, FRAMES_PER_SNIPPET))
            self._video_done = len(part) < FRAMES_PER_SNIPPET
            last = part[-1] if part else last
            yield None if last is None else part + [last] * (FRAMES_PER_SNIPPET - len(part))

    def _whole_clip(self, frames) -> Iterator[list | None]:
        """All 8 fps outputs first, then spread over the seconds the video covers."""
        outputs = []
        for frame in self._converted(frames, self.clip):
            frame.rgb()  # reduced now: a clip of 4K frames is not held at 4K
            outputs.append(frame)
        self._video_done = True
        covered = min(int(self.clip), whole_snippets(self.video_end)) if outputs else 0
        spread = [outputs[i] for i in clip_picks(len(outputs), FRAMES_PER_SNIPPET * covered)] if covered else []
        last = outputs[-1:] * FRAMES_PER_SNIPPET or None
        for k in itertools.count():
            part = spread[FRAMES_PER_SNIPPET * k:FRAMES_PER_SNIPPET * (k + 1)]
            yield part or last

    def __iter__(self) -> Iterator[Snippet]:
        audio_iter = self._audio_chunks() if self.has_audio else None
        video = self._video() if self.has_video else None
        self._video_done = video is None
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
            picked = next(video) if video is not None else None
            frames = None if picked is None else np.stack([f.rgb() for f in picked])
            covered = max(decoded / SAMPLE_RATE, self.video_end) - k
            streams_done = audio_iter is None and self._video_done
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
