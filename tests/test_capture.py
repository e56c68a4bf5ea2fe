"""``--save-capture``: the saved session re-parses into the live run's snippets (the ones
live dropped included), the recorder never blocks capture and counts what it drops."""

from __future__ import annotations

import threading
import time

import numpy as np

from avvp_stream.sources.file import FileSource
from avvp_stream.sources.live import LiveSource
from avvp_stream.sources.recorder import CaptureRecorder

from live_devices import make_mjpeg, signal_stream


def chirp(t):
    return (0.2 * np.sin(2 * np.pi * (200 + 300 * t) * t)).astype(np.float32)


def test_a_saved_capture_reparses_into_the_live_snippets(tmp_path):
    """Camera (a video played at camera pace) and microphone (a chirp through the real
    callback path) for 3 s; compute takes 2.2 s a snippet, so the skip policy drops some.
    Every snippet live parsed is, bit for bit, the saved file's snippet of the same index;
    the file also has the dropped ones."""
    src = LiveSource(camera=str(make_mjpeg(tmp_path / "cam.avi", 50, fps=10)), microphone=True,
                     stream_factory=signal_stream(signal=chirp), duration=3.0, policy="skip")
    recorder = CaptureRecorder(tmp_path / "session.mkv", video_size=src.camera.size, audio=True)
    src.frame_taps.append(recorder.frame)
    src.snippet_taps.append(lambda s: recorder.audio(s.index, s.audio))
    src.start()
    parsed = []
    for batch in src.batches(1):
        parsed.extend(batch)
        time.sleep(2.2)  # compute slower than real time
    src.stop()
    recorder.close()
    stats = recorder.stats()
    assert stats["dropped_frames"] == stats["dropped_audio_seconds"] == 0 and stats["error"] is None
    assert src.stats.dropped > 0 and len(parsed) + src.stats.dropped == src.stats.snippets == 3

    saved = FileSource(tmp_path / "session.mkv")
    assert saved.capture and saved.frame_rule == "nearest" and any("capture" in n for n in saved.notes)
    snippets = list(saved)
    assert [s.index for s in snippets] == list(range(3))  # the dropped ones are in the file
    for live in parsed:
        again = snippets[live.index]
        assert np.array_equal(again.frames, live.frames), live.index
        assert np.array_equal(again.audio, live.audio), live.index
    assert np.abs(np.concatenate([s.audio for s in snippets])).max() > 0.1  # the chirp, not silence


def test_the_recorder_never_blocks_and_counts_what_it_drops(tmp_path):
    """A queue of 4 and a writer held up: puts return at once, the overflow is counted, and
    the file is still a valid Matroska file with what was written; an audio second that
    was dropped is silence, so later seconds keep their place."""
    gate = threading.Event()

    class HeldUp(CaptureRecorder):  # a disk that stalls
        def _run(self):
            gate.wait(10)
            super()._run()

    recorder = HeldUp(tmp_path / "s.mkv", video_size=(48, 64), audio=True, max_items=4)
    frame = np.full((48, 64, 3), 120, np.uint8)
    t0 = time.perf_counter()
    for i in range(40):
        recorder.frame(i / 10, frame)
    recorder.audio(0, np.full(16000, 0.5, np.float32))
    assert time.perf_counter() - t0 < 0.5  # capture never waited for the writer
    gate.set()
    time.sleep(0.5)
    recorder.audio(3, np.full(16000, 0.25, np.float32))
    recorder.close()
    stats = recorder.stats()
    assert (stats["frames"], stats["dropped_frames"], stats["dropped_audio_seconds"]) == (4, 36, 1)
    saved = FileSource(tmp_path / "s.mkv")
    audio = np.concatenate([s.audio for s in saved])
    assert len(audio) == 64000 and np.allclose(audio[:48000], 0) and np.allclose(audio[48000:], 0.25)
