"""Decode a media file into a fixed number of 1 s snippets (PyAV).

Audio: every stream layout and rate is resampled by FFmpeg to 16 kHz mono float.
Video: 8 frames per second picked by presentation time (``features.timing``), RGB.
A missing stream becomes silence or black frames, reported in ``notes``; a clip shorter
than asked is padded (silence, last frame repeated) and longer is cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import AvvpError
from ..features.timing import FRAMES_PER_SNIPPET, select_nearest

SAMPLE_RATE = 16000
BLACK_SIZE = (224, 224)


@dataclass
class Clip:
    audio: np.ndarray  # (snippets * 16000,) float32
    frames: np.ndarray  # (snippets * 8, H, W, 3) uint8
    duration: float  # seconds of media actually decoded (longest stream)
    notes: list[str] = field(default_factory=list)


def _av():
    try:
        import av
    except ImportError:
        raise AvvpError("decoding media needs PyAV (a dependency of avvp-stream): pip install av") from None
    return av


def _open(path: Path):
    av = _av()
    if not path.is_file():
        raise AvvpError(f"{path}: file not found")
    try:
        return av.open(str(path))
    except av.error.FFmpegError as exc:
        raise AvvpError(f"{path}: not a readable media file ({exc.strerror or exc})") from None


def _decode_audio(path: Path, seconds: int) -> tuple[np.ndarray | None, float]:
    av = _av()
    with _open(path) as container:
        if not container.streams.audio:
            return None, 0.0
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks, total, limit = [], 0, seconds * SAMPLE_RATE
        try:
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    total += chunks[-1].size
                if total >= limit:
                    break
            else:
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise AvvpError(f"{path}: audio is corrupt after {total / SAMPLE_RATE:.2f} s ({exc.strerror or exc})") from None
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return audio, audio.size / SAMPLE_RATE


def _decode_video(path: Path, seconds: int) -> tuple[np.ndarray | None, float]:
    av = _av()
    targets = np.arange(seconds * FRAMES_PER_SNIPPET) / FRAMES_PER_SNIPPET
    with _open(path) as container:
        if not container.streams.video:
            return None, 0.0
        stream = container.streams.video[0]
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        last, ended = [0.0], [False]

        def timed_frames():
            try:
                for frame in container.decode(video=0):
                    if frame.time is None:
                        continue
                    last[0] = frame.time - start
                    yield last[0], frame
            except av.error.FFmpegError as exc:
                raise AvvpError(f"{path}: video is corrupt after {last[0]:.2f} s ({exc.strerror or exc})") from None
            ended[0] = True

        picked = [f.to_ndarray(format="rgb24") for f in select_nearest(timed_frames(), targets)]
    if not picked:
        raise AvvpError(f"{path}: the video stream has no decodable frame")
    if not ended[0]:  # stopped early: the stream covers every target
        return np.stack(picked), float(seconds)
    fps_guess = float(stream.average_rate) if stream.average_rate else 25.0
    return np.stack(picked), last[0] + 1.0 / fps_guess


def decode_clip(path: str | Path, seconds: int = 10) -> Clip:
    """Exactly ``seconds`` snippets of audio and frames from a media file."""
    path = Path(path)
    audio, audio_len = _decode_audio(path, seconds)
    frames, video_len = _decode_video(path, seconds)
    notes = []
    if audio is None and frames is None:
        raise AvvpError(f"{path}: no audio or video stream")
    if audio is None:
        notes.append("no audio stream: fed as silence")
        audio = np.zeros(seconds * SAMPLE_RATE, np.float32)
    if frames is None:
        notes.append("no video stream: fed as black frames")
        frames = np.zeros((seconds * FRAMES_PER_SNIPPET, *BLACK_SIZE, 3), np.uint8)
    decoded = max(audio_len, video_len)
    with _open(path) as container:  # decoding stops at `seconds`; the header knows the rest
        header = container.duration / 1e6 if container.duration else decoded
    if decoded < seconds - 0.05:
        stopped = f" (the header says {header:.2f} s: truncated?)" if header > decoded + 0.5 else ""
        notes.append(f"{decoded:.2f} s decoded{stopped}: padded to {seconds} s")
    elif header > seconds + 0.05:
        notes.append(f"{header:.2f} s long: the first {seconds} s used")
    duration = max(decoded, header) if decoded >= seconds - 0.05 else decoded
    want = seconds * SAMPLE_RATE
    audio = np.pad(audio[:want], (0, max(0, want - audio.size)))
    return Clip(audio=audio, frames=frames, duration=duration, notes=notes)
