"""Camera capture with OpenCV: a thread reads frames as the camera delivers them and
stamps each on the host clock. A video file opened as a camera is played at its own
frame rate, as a camera would deliver it; a URL or device runs at the sender's pace."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import AvvpError
from .frames import captured_rgb, reduced_size

FREEZE_SECONDS = 5.0  # identical frames this long from a live camera = frozen


def import_cv2(purpose: str = "the camera"):
    """OpenCV, or one line: what needs it and the extra that installs it (the camera,
    --plot, --show, --annotate all import it here)."""
    try:
        import cv2
    except ImportError:
        raise AvvpError(f"{purpose} needs OpenCV: pip install 'avvp-stream[live]'") from None
    return cv2


def check_camera(spec: int | str) -> None:
    """What can be said without opening the camera (a run checks this before loading models)."""
    import_cv2()
    if isinstance(spec, int) and sys.platform.startswith("linux") and not Path(f"/dev/video{spec}").exists():
        raise AvvpError(f"camera {spec}: not found (no /dev/video{spec})")
    if isinstance(spec, str) and "://" not in spec and not Path(spec).exists():
        raise AvvpError(f"camera {spec}: not found")


class CameraCapture:
    """``on_frame(t, rgb)`` for every frame. ``fault`` is set (and the thread ends) when a
    live camera stops delivering or freezes; ``ended`` when a file camera reaches its end."""

    def __init__(self, spec: int | str, clock: Callable[[], float], on_frame: Callable[[float, np.ndarray], None], *,
                 freeze_seconds: float = FREEZE_SECONDS):
        cv2 = import_cv2()
        self.clock = clock
        self.on_frame = on_frame
        self.freeze_seconds = freeze_seconds
        self.name = f"camera {spec}"
        self.is_file = isinstance(spec, str) and Path(spec).is_file()
        check_camera(spec)
        self.cap = cv2.VideoCapture(spec)
        if hasattr(cv2, "CAP_PROP_ORIENTATION_AUTO"):  # a file or stream with a display matrix, upright
            self.cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        if not self.cap.isOpened():
            raise AvvpError(f"{self.name}: cannot open (busy in another program, or not a camera or video)")
        ok, first = self.cap.read()
        if not ok:
            self.cap.release()
            raise AvvpError(f"{self.name}: opened but delivers no frames (busy, or not a camera or video)")
        self._first = first
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.size = reduced_size(*first.shape[:2])
        self.frames = 0
        self._decode_seconds = 0.0  # converting frames (and reading them, for a file): see take_decode_seconds
        self.last_frame_at: float | None = None
        self.fault: str | None = None
        self.ended = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="avvp-camera", daemon=True)

    def start(self) -> None:
        self.started_at = self.clock()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
        if not self._thread.is_alive():  # a read stuck in the driver keeps the handle; the process exit frees it
            self.cap.release()

    def _run(self) -> None:
        cv2 = import_cv2()
        bgr: np.ndarray | None = self._first
        frame_step = 1.0 / self.fps if self.is_file and self.fps > 0 else 0.0
        same_since: float | None = None
        previous: np.ndarray | None = None
        while not self._stop.is_set():
            if bgr is None:
                began = time.perf_counter()
                ok, bgr = self.cap.read()
                if self.is_file:  # a file's read is decoding; a camera's is mostly waiting for the sensor
                    self._decode_seconds += time.perf_counter() - began
                if not ok:
                    elapsed = self.clock() - self.started_at
                    if self.is_file:
                        self.ended = True
                    else:
                        self.fault = f"{self.name}: read failed after {elapsed:.1f} s (unplugged, or the stream ended)"
                    return
            if frame_step:  # a file plays at its frame rate, like a camera
                delay = self.started_at + self.frames * frame_step - self.clock()
                if delay > 0:
                    time.sleep(delay)
            now = self.clock()
            self.frames += 1
            self.last_frame_at = now
            if not self.is_file:
                probe = bgr[::8, ::8]
                if previous is not None and np.array_equal(probe, previous):
                    same_since = same_since or now
                    if now - same_since >= self.freeze_seconds:
                        self.fault = f"{self.name}: frozen, the same frame for {now - same_since:.1f} s"
                        return
                else:
                    same_since = None
                previous = probe.copy()
            began = time.perf_counter()
            rgb = captured_rgb(bgr, cv2)
            self._decode_seconds += time.perf_counter() - began
            self.on_frame(now, rgb)
            bgr = None

    def take_decode_seconds(self) -> float:
        """Seconds spent decoding and converting frames since the last call."""
        seconds, self._decode_seconds = self._decode_seconds, 0.0
        return seconds

    @property
    def measured_fps(self) -> float | None:
        if self.frames < 2 or self.last_frame_at is None:
            return None
        return (self.frames - 1) / max(self.last_frame_at - self.started_at, 1e-9)
