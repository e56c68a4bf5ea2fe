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
