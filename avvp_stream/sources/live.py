"""Live input (camera and/or microphone) as 1 s snippets on one host clock.

``SnippetAssembler`` is the pure part: blocks of audio and frames go in with their host
stamps, snippets come out once their second is over. Snippet ``k`` covers host time
``[t0 + k, t0 + k + 1)`` for both modalities: audio is read at the positions the drift
fit (``clock.DriftEstimator``) gives for those times, which corrects a microphone that
runs fast or slow against the host, and frames are the ones nearest ``t0 + k + j/8``.
What did not arrive in time is filled (silence, the nearest older frame) and counted.

``LiveSource`` runs the captures and a ticker thread that moves finished snippets into a
``pacing.SnippetQueue``; the parser reads that queue at its own pace.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..clock import DriftEstimator, HostClock
from ..features.timing import FRAMES_PER_SNIPPET, nearest_indices, snippet_times
from ..pacing import SnippetQueue
from .camera import CameraCapture
from .file import BLACK_SIZE, MIN_LAST_SNIPPET, SAMPLE_RATE, Snippet
from .microphone import MicrophoneCapture

SETTLE = 0.05  # wait this long after a second ends for its last block and frame
GAP_WAIT = 0.5  # give up on late input this long after a second ends, and fill the gap
LOST_AUDIO = 0.1  # audio arriving this much later than its sample count says: samples were lost
MAX_FRAME_GAP = 0.25  # a frame further than this from its target time counts as missing


@dataclass
class LiveStats:
    snippets: int = 0  # assembled
    dropped: int = 0  # assembled but dropped because compute was behind
    audio_gaps: int = 0  # stretches of lost or late audio filled with silence
    audio_gap_seconds: float = 0.0
    frame_gaps: int = 0  # frames filled from a neighbour further than MAX_FRAME_GAP away
    overflows: int = 0  # microphone blocks PortAudio reported as overflowed
    mic_ppm: float | None = None  # microphone clock against the host
    camera_fps: float | None = None


class SnippetAssembler:
    def __init__(self, t0: float, *, has_audio: bool, has_video: bool, audio_rate: int = SAMPLE_RATE,
                 frame_size: tuple[int, int] = BLACK_SIZE, to_wall: Callable[[float], float] = lambda t: t,
                 drift: DriftEstimator | None = None):
        self.t0 = t0
        self.has_audio = has_audio
        self.has_video = has_video
        self.audio_rate = audio_rate
        self.to_wall = to_wall
        self.drift = drift or DriftEstimator(audio_rate)
        self.stats = LiveStats()
        self.next_index = 0
        self._audio = np.zeros(0, np.float32)
        self._audio_base = 0  # device sample number of self._audio[0]
        self._received = 0  # device samples received
        self._frames: deque[tuple[float, np.ndarray]] = deque()
        self._black = np.zeros((FRAMES_PER_SNIPPET, *frame_size, 3), np.uint8)

    def push_audio(self, t_end: float, samples: np.ndarray) -> None:
        if self.drift.ready:  # blocks lost on the way (driver glitch): keep the count on time
            lost = int(np.rint(self.drift.sample_at(t_end) - len(samples) - self._received))
            if lost > self.audio_rate * LOST_AUDIO:
                self._received += lost
                self._audio = np.concatenate([self._audio, np.zeros(lost, np.float32)])
                self.stats.audio_gaps += 1
                self.stats.audio_gap_seconds += lost / self.audio_rate
        self._received += len(samples)
        self.drift.add(t_end, self._received)
        self._audio = np.concatenate([self._audio, samples.astype(np.float32, copy=False)])

    def session_time(self, t: float) -> float:
        """Host time ``t`` as seconds from the session's start, to the millisecond: the
        frames' times here and in a saved capture (Matroska counts milliseconds), so that
        both pick the same frames, ties included."""
        return round(t - self.t0, 3)

    def push_frame(self, t: float, frame: np.ndarray) -> float:
        """Keep a frame that arrived at host time ``t``; returns its session time."""
        when = self.session_time(t)
        self._frames.append((when, frame))
        return when

    def _audio_covered(self, end: float) -> bool:
        return self.drift.ready and self._received >= self.drift.sample_at(end)

    def _video_covered(self, end: float) -> bool:
        return bool(self._frames) and self._frames[-1][0] >= end - self.t0 - 0.5 / FRAMES_PER_SNIPPET

    def pop_ready(self, now: float) -> list[Snippet]:
        out = []
        while True:
            start = self.t0 + self.next_index
            end = start + 1.0
            if now < end + SETTLE:
                break
            waited = now >= end + GAP_WAIT
            if not waited and ((self.has_audio and not self._audio_covered(end))
                               or (self.has_video and not self._video_covered(end))):
                break
            out.append(self._build(start, end))
        return out

    def _build(self, start: float, end: float) -> Snippet:
        k = self.next_index
        self.next_index += 1
        self.stats.snippets += 1
        audio = np.zeros(SAMPLE_RATE, np.float32)
        if self.has_audio and self.drift.ready:
            # Output sample j is the host time start + j/16000, read from the device clock.
            pos = self.drift.sample_at(start + np.arange(SAMPLE_RATE) / SAMPLE_RATE) - self._audio_base
            audio = np.interp(pos, np.arange(len(self._audio)), self._audio, left=0.0, right=0.0).astype(np.float32)
            missing = int(np.count_nonzero((pos < 0) | (pos > len(self._audio) - 1)))
            if missing > SAMPLE_RATE // 100:
                self.stats.audio_gaps += 1
                self.stats.audio_gap_seconds += missing / SAMPLE_RATE
            keep_from = int(self.drift.sample_at(end)) - self.audio_rate // 10 - self._audio_base
            if keep_from > 0:
                self._audio = self._audio[keep_from:]
                self._audio_base += keep_from
        elif self.has_audio:
            self.stats.audio_gaps += 1
            self.stats.audio_gap_seconds += 1.0
        frames = self._black
        if self.has_video and self._frames:
            times = np.array([t for t, _ in self._frames])
            targets = snippet_times(float(k))
            idx = nearest_indices(times, targets)
            self.stats.frame_gaps += int(np.count_nonzero(np.abs(times[idx] - targets) > MAX_FRAME_GAP))
            frames = np.stack([self._frames[i][1] for i in idx])
            while len(self._frames) > 1 and self._frames[1][0] <= k + 1:  # keep one frame before the next second
                self._frames.popleft()
        elif self.has_video:
            self.stats.frame_gaps += FRAMES_PER_SNIPPET
        return Snippet(k, float(k), audio, frames, self.to_wall(end))


class LiveSource:
    """Camera and/or microphone as snippets: ``start``, iterate ``batches``, ``stop``.

    ``fault`` says why the input stopped early (a camera unplugged or frozen); ``notes``
    what was fed as silence or blank frames; ``stats`` what was dropped, filled and
    measured."""

    def __init__(self, *, camera: str | int | None = None, microphone: bool = False, mic_device=None,
                 duration: float | None = None, policy: str = "skip", queue_size: int | None = None,
                 stream_factory=None, freeze_seconds: float | None = None, stall_seconds: float = 2.0,
                 clock: HostClock | None = None):
        if camera is None and not microphone:
            raise ValueError("a live source needs a camera, a microphone, or both")
        self.clock = clock or HostClock()
        self.duration = duration
        self.stall_seconds = stall_seconds
        self.queue: SnippetQueue[Snippet] = SnippetQueue(policy, queue_size)
        self._lock = threading.Lock()
        self.fault: str | None = None
        self.notes: list[str] = []
        self.camera = self.microphone = None
        if camera is not None:
            extra = {} if freeze_seconds is None else {"freeze_seconds": freeze_seconds}
            self.camera = CameraCapture(camera, self.clock.now, self._on_frame, **extra)
        else:
            self.notes.append("no camera: fed as black frames")
        if microphone:
            self.microphone = MicrophoneCapture(self.clock.now, self._on_audio, device=mic_device,
                                                stream_factory=stream_factory)
        else:
            self.notes.append("no microphone: fed as silence")
        self.assembler: SnippetAssembler | None = None
        # also given every frame (session time, RGB) and every snippet as captured, dropped or not:
        # the --show window, the --save-capture recorder
        self.frame_taps: list[Callable[[float, np.ndarray], None]] = []
        self.snippet_taps: list[Callable[[Snippet], None]] = []
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="avvp-snippets", daemon=True)

    @property
    def stats(self) -> LiveStats:
        stats = self.assembler.stats if self.assembler else LiveStats()
        stats.dropped = self.queue.dropped
        if self.microphone is not None:
            stats.overflows = self.microphone.overflows
            if self.assembler and self.assembler.drift.ready:
                stats.mic_ppm = self.assembler.drift.ppm
        if self.camera is not None:
            stats.camera_fps = self.camera.measured_fps
        return stats

    def _on_audio(self, t_end: float, samples: np.ndarray) -> None:
        with self._lock:
            if self.assembler is not None:
                self.assembler.push_audio(t_end, samples)

    def _on_frame(self, t: float, frame: np.ndarray) -> None:
        with self._lock:
            if self.assembler is None:
                return
            when = self.assembler.push_frame(t, frame)
        for tap in self.frame_taps:
            tap(when, frame)

    def start(self) -> None:
        t0 = self.clock.now()
        size = self.camera.size if self.camera is not None else BLACK_SIZE
        self.assembler = SnippetAssembler(t0, has_audio=self.microphone is not None,
                                          has_video=self.camera is not None, frame_size=size,
                                          to_wall=self.clock.to_wall)
        if self.microphone is not None:
            self.microphone.start()
        if self.camera is not None:
            self.camera.start()
        self._ticker.start()

    def _input_end(self) -> float | None:
        """Host time at which the input ends: --duration, or a file camera's last frame."""
        ends = []
        if self.duration is not None:
            ends.append(self.assembler.t0 + self.duration)
        if self.camera is not None and self.camera.ended:
            ends.append((self.camera.last_frame_at or self.assembler.t0) + 1.0 / (self.camera.fps or 25.0))
        return min(ends) if ends else None

    def _tick(self) -> None:
        try:
            while not self._stop.wait(0.02):
                now = self.clock.now()
                with self._lock:
                    end = self._input_end()
                    for snippet in self.assembler.pop_ready(now):
                        if end is not None and self.assembler.t0 + snippet.start > end - MIN_LAST_SNIPPET:
                            break  # past the end of input (a last part second counts if long enough)
                        for tap in self.snippet_taps:
                            tap(snippet)
                        self.queue.put(snippet)
                    if end is not None and self.assembler.t0 + self.assembler.next_index > end - MIN_LAST_SNIPPET:
                        break
                    self.fault = self._check_devices(now)
                if self.fault:
                    break
        finally:
            self.queue.close()
            self._stop_devices()

    def _check_devices(self, now: float) -> str | None:
        """Why the input cannot go on, if it cannot: the camera failed, froze or stalled."""
        cam = self.camera
        if cam is not None:
            if cam.fault:
                return cam.fault
            last = cam.last_frame_at or cam.started_at
            if not cam.ended and now - last > self.stall_seconds:
                return f"{cam.name}: no frame for {now - last:.1f} s (unplugged or frozen)"
        return None

    def _stop_devices(self) -> None:
        if self.camera is not None:
            self.camera.stop()
        if self.microphone is not None:
            self.microphone.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join(timeout=2.0)
        else:
            self._stop_devices()

    def batches(self, max_items: int) -> Iterator[list[Snippet]]:
        """Snippets as they become ready; several at once when compute is behind."""
        while True:
            batch = self.queue.get_batch(max_items)
            if batch is None:
                return
            if batch:
                yield batch
