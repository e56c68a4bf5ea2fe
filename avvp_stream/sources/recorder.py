"""``--save-capture session.mkv``: what a live run captured, kept losslessly for audit.

The camera's frames go in at their host-clock times (milliseconds from the session's
start, Matroska's resolution; the live assembler reads the same rounded times), FFV1;
the microphone's audio as the assembler put it on the host clock (16 kHz float, drift
corrected, gaps filled with silence), one second per snippet. So re-parsing the file
(``avvp-stream session.mkv``; the file says it is a capture, and is read with the live
frame rule) gives the live run's snippets, and also the ones live dropped for lack of
compute.

Capture never waits for the disk: ``frame`` and ``audio`` put into a bounded queue and
return; a writer thread encodes. If it falls behind, what does not fit is dropped and
counted (``dropped``). ``close`` drains the queue and closes the file properly, also
after Ctrl-C or a camera fault.
"""

from __future__ import annotations

import queue
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import AvvpError
from ..features.timing import SAMPLE_RATE

CAPTURE_TAG = "AVVP_CAPTURE"  # container metadata: "1" in files written here
QUEUE_ITEMS = 256  # about 8 s of 30 fps video and audio seconds
MS = Fraction(1, 1000)


class CaptureRecorder:
    def __init__(self, path: Path, *, video_size: tuple[int, int] | None, audio: bool, max_items: int = QUEUE_ITEMS):
        import av

        self.path = Path(path)
        if self.path.suffix.lower() not in (".mkv", ".mka"):
            raise AvvpError(f"--save-capture {path}: use a .mkv file (Matroska keeps the lossless streams)")
        if video_size is None and not audio:
            raise ValueError("nothing to record")
        try:
            self.container = av.open(str(self.path), "w", format="matroska")
        except (OSError, av.error.FFmpegError) as exc:
            raise AvvpError(f"--save-capture {path}: cannot write ({exc})") from None
        self.container.metadata[CAPTURE_TAG] = "1"
        self.video = self.audio_stream = None
        if video_size is not None:
            self.video = self.container.add_stream("ffv1", rate=1000)
            self.video.height, self.video.width = video_size
            self.video.pix_fmt = "bgr0"
            self.video.codec_context.time_base = MS
        if audio:
            self.audio_stream = self.container.add_stream("pcm_f32le", rate=SAMPLE_RATE, layout="mono")
        self.frames = self.seconds = 0  # written
        self.dropped_frames = self.dropped_seconds = 0
        self.error: str | None = None
        self._last_pts = -1
        self._queue: queue.Queue = queue.Queue(max_items)
        self._thread = threading.Thread(target=self._run, name="avvp-recorder", daemon=True)
        self._thread.start()
        self._closed = False

    def frame(self, t: float, rgb: np.ndarray) -> None:
        """A camera frame at ``t`` seconds from the session's start (never blocks)."""
        if self.video is not None and not self._offer(("v", t, rgb)):
            self.dropped_frames += 1

    def audio(self, index: int, samples: np.ndarray) -> None:
        """Second ``index`` of the host-clock audio, (16000,) float32 (never blocks)."""
        if self.audio_stream is not None and not self._offer(("a", index, samples)):
            self.dropped_seconds += 1

    def _offer(self, item) -> bool:
        """Queue ``item`` if there is room; False when it had to be dropped."""
        if self._closed:
            return True  # the run is over: nothing more is recorded, nothing is dropped
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    def _run(self) -> None:
        import av

        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error:
                continue  # the disk failed: keep draining so that capture never waits
            try:
                kind, when, data = item
                if kind == "v":
                    pts = int(round(when * 1000))
                    if pts <= self._last_pts:
                        continue  # two frames in one millisecond: the first is kept
                    self._last_pts = pts
                    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(data), format="rgb24").reformat(format="bgr0")
                    frame.pts, frame.time_base = pts, MS
                    self.container.mux(self.video.encode(frame))
                    self.frames += 1
                else:
                    while self.seconds < when:  # seconds dropped on the way: silence keeps the rest in place
                        self._write_audio(self.seconds, np.zeros(SAMPLE_RATE, np.float32))
                    self._write_audio(when, data)
            except (OSError, ValueError, av.error.FFmpegError) as exc:
                self.error = str(exc).splitlines()[0][:200]

    def _write_audio(self, index: int, samples: np.ndarray) -> None:
        import av

        frame = av.AudioFrame.from_ndarray(np.asarray(samples, np.float32)[None], format="flt", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts, frame.time_base = index * SAMPLE_RATE, Fraction(1, SAMPLE_RATE)
        self.container.mux(self.audio_stream.encode(frame))
        self.seconds = index + 1

    def close(self) -> None:
        """Write what is queued, then close the file (a valid Matroska file)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        try:
            for stream in (self.video, self.audio_stream):
                if stream is not None:
                    self.container.mux(stream.encode(None))
        except Exception as exc:  # noqa: BLE001 - the file is closed below whatever happened
            self.error = self.error or str(exc).splitlines()[0][:200]
        finally:
            self.container.close()

    def stats(self) -> dict:
        return {"path": str(self.path), "frames": self.frames, "audio_seconds": self.seconds,
                "dropped_frames": self.dropped_frames, "dropped_audio_seconds": self.dropped_seconds,
                "error": self.error}
