"""Media files made with PyAV whose content and timing are known.

Video frames are flat grey whose level encodes the frame's time (level = 20 * t, so
the picked frame of each 1/8 s slot can be checked); audio is a sine tone.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def level_at(t: float) -> int:
    return int(round(20 * t)) % 250


def make_media(path: Path, seconds: float = 2.0, *, video: bool = True, audio: bool = True, fps: float = 25,
               size=(64, 48), rate: int = 44100, layout: str = "stereo", tone_hz: float = 440.0,
               vfr: bool = False, video_codec: str = "libx264", audio_codec: str = "aac") -> Path:
    import av

    path = Path(path)
    with av.open(str(path), "w") as out:
        if video:
            vs = out.add_stream(video_codec, rate=int(fps))
            vs.width, vs.height = size
            vs.pix_fmt = "yuv420p"
            vs.time_base = Fraction(1, 1000)
            vs.codec_context.time_base = Fraction(1, 1000)  # millisecond pts: any frame rate, VFR too
        if audio:
            aus = out.add_stream(audio_codec, rate=rate, layout=layout)
        if video:
            rng = np.random.default_rng(0)
            t, i = 0.0, 0
            while t < seconds - 1e-9:
                img = np.full((size[1], size[0], 3), level_at(t), np.uint8)
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = int(round(t * 1000))
                frame.time_base = Fraction(1, 1000)
                for packet in vs.encode(frame):
                    out.mux(packet)
                step = (1 / fps) * (rng.uniform(0.3, 2.5) if vfr else 1.0)
                t, i = t + step, i + 1
            for packet in vs.encode(None):
                out.mux(packet)
        if audio:
            channels = {"mono": 1, "stereo": 2, "5.1": 6}[layout]
            n = int(seconds * rate)
            wave = (0.3 * np.sin(2 * np.pi * tone_hz * np.arange(n) / rate)).astype(np.float32)
            fmt = aus.codec_context.format.name if aus.codec_context.format else "fltp"
            chunk = aus.codec_context.frame_size or 1024
            for start in range(0, n, chunk):
                block = np.tile(wave[start:start + chunk], (channels, 1))
                if not fmt.endswith("p"):  # packed formats interleave the channels
                    block = block.T.reshape(1, -1)
                if fmt.startswith("s16"):
                    block = (block * 32767).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format=fmt, layout=layout)
                frame.sample_rate = rate
                frame.pts = start
                for packet in aus.encode(frame):
                    out.mux(packet)
            for packet in aus.encode(None):
                out.mux(packet)
    return path


def make_rotated(path: Path, rotation: int = 90, size=(64, 48), frames: int = 25) -> tuple[Path, np.ndarray]:
    """A file stored sideways, as phones store portrait video, with a display matrix that
    turns it upright. Returns the path and the upright picture (a white band on top)."""
    import av
    import pytest

    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip(f"writing a display matrix needs PyAV >= 18 (this is {av.__version__}; reading it needs 14.1)")
    width, height = size  # as stored
    shown = (width, height) if rotation % 180 else (height, width)  # a quarter turn shows it portrait
    upright = np.zeros((*shown, 3), np.uint8)
    upright[: shown[0] // 4] = 255
    stored = np.ascontiguousarray(np.rot90(upright, -rotation // 90))  # what a player must turn back
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = stored.shape[1], stored.shape[0], "yuv420p"
        vs.set_display_rotation(rotation)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            frame.pts = i
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
    return Path(path), upright


def cut_short(src: Path, dst: Path, fraction: float = 0.6) -> Path:
    """``src`` remuxed into Matroska and cut at ``fraction`` of its bytes: an interrupted
    download. The header still declares the whole duration."""
    import av

    full = src.with_name(src.stem + ".remuxed.mkv")  # beside the source, not among the outputs
    with av.open(str(src)) as inp, av.open(str(full), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams if s.type in ("audio", "video")}
        for packet in inp.demux():
            if packet.dts is None or packet.stream.index not in streams:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    data = full.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst
