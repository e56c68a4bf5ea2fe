"""``--annotate out.mp4``: the input video with its labels burned in (like the paper's
demo video), its sound kept.

The labels are known only as the parse goes, so the video is written at the end, in one
pass over the input: every frame gets the labels of the snippet it falls in and the
events open at its time. A run stopped early (Ctrl-C, a damaged file) still gets the
video up to the last parsed second."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

from ..errors import AvvpError
from ..events import Event
from .base import Writer
from .overlay import LabelState, draw, import_cv2

TIME_BASE = Fraction(1, 1000)


class AnnotatedVideo(Writer):
    def __init__(self, media: Path, out: Path, note=print):
        self.cv2 = import_cv2("--annotate")
        self.media, self.out, self.note = Path(media), Path(out), note
        if self.out.resolve() == self.media.resolve():
            raise AvvpError(f"--annotate {out}: that is the input file")
        self.labels: dict[int, tuple[float, dict]] = {}  # final snippets: index -> (start, labels)
        self.events: list[Event] = []  # ended

    def snippet(self, index: int, start: float, labels: dict, final: bool, captured_at: float | None) -> None:
        if final:
            self.labels[index] = (start, labels)

    def event(self, ev: Event) -> None:
        if ev.state == "end":
            self.events.append(ev)

    def _state_at(self, t: float) -> LabelState:
        state = LabelState()
        k = int(math.floor(t))
        if k in self.labels:
            start, labels = self.labels[k]
            state.snippet(start, labels, True)
        for ev in self.events:
            if ev.onset <= t < ev.offset:
                state.open[(ev.modality, ev.label)] = ev.onset
        return state

    def close(self) -> None:
        if not self.labels:
            return
        end = max(start for start, _ in self.labels.values()) + 1.0
        try:
            frames = write_annotated(self.media, self.out, end, self._state_at, self.cv2)
        except Exception as exc:  # noqa: BLE001 - the parse's own outputs are written already; say why this one is not
            self.note(f"--annotate {self.out}: not written ({str(exc).splitlines()[0][:200]})")
            return
        self.note(f"annotated video: {self.out} ({frames} frames, {end:g} s)")


def write_annotated(media: Path, out: Path, end: float, state_at, cv2) -> int:
    """Re-encode ``media`` up to ``end`` seconds into ``out`` (H.264 + AAC, or MPEG-4 part 2
    where FFmpeg has no H.264 encoder), frames drawn with ``state_at(t)``. Returns the
    number of frames written. Written to a temporary name and renamed, so that ``out`` is
    either complete or absent."""
    import av

    tmp = out.with_name(out.name + ".part" + out.suffix)
    with av.open(str(media)) as src, av.open(str(tmp), "w") as dst:
        start = src.start_time / 1e6 if src.start_time is not None else 0.0
        vin = src.streams.video[0] if src.streams.video else None
        ain = src.streams.audio[0] if src.streams.audio else None
        if vin is None:
            raise ValueError("the input has no video stream")
        rate = vin.guessed_rate or vin.average_rate or 25
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        vout = dst.add_stream(codec, rate=rate)
        vout.width, vout.height = (vin.width // 2) * 2, (vin.height // 2) * 2
        vout.pix_fmt = "yuv420p"
        vout.codec_context.time_base = TIME_BASE
        if codec == "libx264":
            vout.options = {"crf": "18", "preset": "veryfast"}
        aout = resampler = None
        if ain is not None:
            aout = dst.add_stream("aac", rate=ain.rate or 48000)
            aout.layout = "stereo" if ain.layout and ain.layout.nb_channels >= 2 else "mono"
            resampler = av.AudioResampler(format="fltp", layout=aout.layout.name, rate=aout.rate)
        written = 0
        last_pts = -1
        streams = [s for s in (vin, ain) if s is not None]
        for packet in src.demux(*streams):
            for frame in packet.decode():
                if frame.time is None:
                    continue
                t = frame.time - start
                if t >= end:
                    continue
                if packet.stream is vin:
                    rgb = frame.to_ndarray(format="rgb24")[:vout.height, :vout.width]
                    image = draw(rgb, state_at(t).lines(), cv2)
                    pts = int(round(t / TIME_BASE))
                    if pts <= last_pts:
                        continue  # a repeated timestamp: keep the first
                    last_pts = pts
                    outf = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
                    outf.pts, outf.time_base = pts, TIME_BASE
                    dst.mux(vout.encode(outf))
                    written += 1
                else:
                    frame.pts = None
                    for part in resampler.resample(frame):
                        dst.mux(aout.encode(part))
        dst.mux(vout.encode(None))
        if aout is not None:
            for part in resampler.resample(None):
                dst.mux(aout.encode(part))
            dst.mux(aout.encode(None))
    tmp.replace(out)
    return written

