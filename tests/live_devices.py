"""Live inputs for tests, made of real parts: a PortAudio-style input stream that drives
the microphone's own callback in real time, MJPEG videos whose frames encode their
number, and a loopback HTTP server that streams a video at camera pace (and can cut it)."""

from __future__ import annotations

import http.server
import socketserver
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np


class SignalInputStream:
    """Stands where ``sounddevice.InputStream`` stands: built with the same keywords, it
    calls ``callback(indata, frames, time_info, status)`` from its own thread as each
    block is "recorded". The device clock runs ``drift_ppm`` fast against the host;
    ``signal(t)`` gives the sound at host seconds since start; ``overflow_blocks`` get
    PortAudio's input-overflow flag."""

    def __init__(self, *, samplerate, channels, dtype, blocksize, device, callback,
                 signal=None, drift_ppm=0.0, overflow_blocks=()):
        self.rate = samplerate * (1 + drift_ppm * 1e-6)  # device samples per host second
        self.block = blocksize
        self.callback = callback
        self.channels = channels
        self.signal = signal or (lambda t: 0.1 * np.sin(2 * np.pi * 440 * t))
        self.overflow_blocks = set(overflow_blocks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.t0 = time.monotonic()
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2)

    def close(self):
        pass

    def _run(self):
        i = 0
        while not self._stop.is_set():
            done = self.t0 + (i + 1) * self.block / self.rate  # host time the block is complete
            delay = done - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t = (i * self.block + np.arange(self.block)) / self.rate
            data = np.repeat(self.signal(t).astype(np.float32)[:, None], self.channels, axis=1)
            now = time.monotonic()
            info = SimpleNamespace(inputBufferAdcTime=self.t0 + i * self.block / self.rate, currentTime=now)
            status = SimpleNamespace(input_overflow=i in self.overflow_blocks)
            self.callback(data, self.block, info, status)
            i += 1


def signal_stream(**options):
    """A ``stream_factory`` for ``MicrophoneCapture`` / ``LiveSource``."""
    return lambda **kw: SignalInputStream(**kw, **options)


def frame_level(i: int) -> int:
    return (i * 4) % 250


def make_mjpeg(path: Path, frames: int, fps: int = 10, size=(160, 120), still: bool = False) -> Path:
    """AVI of MJPEG frames, frame ``i`` flat grey at ``frame_level(i)`` (all the same if
    ``still``): OpenCV reads it from a file or over HTTP, as it would a network camera."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuvj420p"
        for i in range(frames):
            img = np.full((size[1], size[0], 3), frame_level(0 if still else i), np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


class CameraServer:
    """Serves one video over 127.0.0.1 at about ``fps`` frames per second (so OpenCV sees
    a live network camera). ``cut_after`` seconds: the connection is closed (an unplugged
    camera); with ``hang=True`` it stays open and sends nothing more (a frozen one)."""

    def __init__(self, path: Path, fps: float, cut_after: float | None = None, hang: bool = False):
        data = Path(path).read_bytes()
        frames = max(1, data.count(b"00dc"))  # AVI chunks of compressed video frames
        bytes_per_second = len(data) / frames * fps
        stop = self._stop = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "video/x-msvideo")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                start, sent, head = time.monotonic(), 0, 8192
                try:
                    self.wfile.write(data[:head])
                    sent = head
                    while sent < len(data) and not stop.is_set():
                        elapsed = time.monotonic() - start
                        if cut_after is not None and elapsed >= cut_after:
                            if hang:
                                stop.wait(60)
                            return
                        target = min(len(data), head + int(elapsed * bytes_per_second))
                        if target > sent:
                            self.wfile.write(data[sent:target])
                            self.wfile.flush()
                            sent = target
                        time.sleep(0.02)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{Path(path).name}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def wm_close(display: str, window: int) -> None:
    """What a window manager sends when the user closes a window (WM_DELETE_WINDOW), sent
    with Xlib through ctypes: Xvfb has no window manager, and xdotool 3.2016 cannot."""
    import ctypes

    x11 = ctypes.cdll.LoadLibrary("libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]

    class ClientMessage(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                    ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                    ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

    class XEvent(ctypes.Union):
        _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

    dpy = x11.XOpenDisplay(display.encode())
    if not dpy:
        raise OSError(f"cannot open display {display}")
    event = XEvent()
    event.xclient.type, event.xclient.window, event.xclient.format = 33, window, 32  # ClientMessage
    event.xclient.message_type = x11.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
    event.xclient.data[0] = x11.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
    x11.XSendEvent(dpy, window, 0, 0, ctypes.byref(event))
    x11.XFlush(dpy)
    x11.XCloseDisplay(dpy)
