"""``--show``: a window (OpenCV HighGUI) with the live picture and the labels on it.

The window has its own thread: it redraws the newest camera frame about 30 times a second
and polls the keyboard, so the picture stays live while the networks run. ``q`` (or Esc)
or closing the window stops the run the way Ctrl-C does: the main thread gets SIGINT,
and everything parsed is flushed. A display that cannot be opened is found before the
models load, by opening a window in a child process (Qt ends the process it runs in
when the display is unreachable, so the check must not run here)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import numpy as np

from ..errors import AvvpError
from ..events import Event
from .base import Writer
from .overlay import LabelState, draw, import_cv2

TITLE = "avvp-stream"
REFRESH_MS = 33
QUIT_KEYS = {ord("q"), ord("Q"), 27}
_PROBE = "import cv2; cv2.namedWindow('avvp-probe'); cv2.waitKey(1); cv2.destroyAllWindows()"


def check_display() -> None:
    """One clear error when no window can be opened here; returns quietly when one can."""
    import_cv2("--show")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise AvvpError("--show needs a display, and none is set (DISPLAY); run it in a desktop session, "
                        "or use --format table in a terminal")
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise AvvpError("--show: opening a window did not finish in 30 s (is the display responding?)") from None
    if probe.returncode != 0:
        lines = [line for line in probe.stderr.splitlines() if line.strip()]
        why = lines[-1].strip()[:200] if lines else f"exit {probe.returncode}"
        raise AvvpError(f"--show: cannot open a window on display {os.environ.get('DISPLAY', '')!r} ({why})")


class LabelWindow(Writer):
    """A writer that shows the labels over the frames given to ``frame`` (from the camera's
    thread); ``quit`` says whether the user closed it."""

    def __init__(self, title: str = TITLE, size: tuple[int, int] = (480, 640)):
        self.cv2 = import_cv2("--show")
        self.title = title
        self.state = LabelState()
        self.quit = False
        self._frame = np.zeros((*size, 3), np.uint8)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._opened = threading.Event()
        self.error: str | None = None
        self.shown = 0  # frames drawn to the window
        self._thread = threading.Thread(target=self._run, name="avvp-window", daemon=True)
        self._thread.start()
        self._opened.wait(10.0)
        if self.error:
            raise AvvpError(f"--show: {self.error}")

    def frame(self, t: float, rgb: np.ndarray) -> None:
        with self._lock:
            self._frame = rgb

    def snippet(self, index: int, start: float, labels: dict, final: bool, captured_at: float | None) -> None:
        with self._lock:
            self.state.snippet(start, labels, final)

    def event(self, ev: Event) -> None:
        with self._lock:
            self.state.event(ev)

    def _run(self) -> None:
        cv2 = self.cv2
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)  # the picture only, no toolbar
        except cv2.error as exc:
            self.error = str(exc).strip().splitlines()[-1]
            self._opened.set()
            return
        self._opened.set()
        try:
            while not self._stop.is_set():
                with self._lock:
                    frame, lines = self._frame, self.state.lines()
                cv2.imshow(self.title, cv2.cvtColor(draw(frame, lines, cv2), cv2.COLOR_RGB2BGR))
                self.shown += 1
                key = cv2.waitKey(REFRESH_MS) & 0xFF
                if key in QUIT_KEYS or self._closed():
                    self.quit = True
                    os.kill(os.getpid(), signal.SIGINT)  # stop as Ctrl-C does: flush, end events
                    break
        finally:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass

    def _closed(self) -> bool:
        """Closed by the user: hidden, or (Qt) already destroyed, which the query raises on."""
        try:
            return self.cv2.getWindowProperty(self.title, self.cv2.WND_PROP_VISIBLE) < 1
        except self.cv2.error:
            return True

    def close(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
