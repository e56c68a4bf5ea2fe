"""Live input: the host clock and drift fit, snippet assembly, the pacing queue, the
microphone through an injected PortAudio-style stream, the camera through OpenCV on
files and on a loopback network camera."""

import time

import numpy as np
import pytest

from avvp_stream.clock import DriftEstimator
from avvp_stream.errors import AvvpError
from avvp_stream.pacing import SnippetQueue
from avvp_stream.sources.live import GAP_WAIT, LiveSource, SnippetAssembler

from live_devices import CameraServer, frame_level, make_mjpeg, signal_stream

RATE = 16000
BLOCK = 512


def feed_microphone(asm, seconds, drift_ppm, signal, jitter=0.004, skip=(), seed=0):
    """Blocks of a device whose clock runs ``drift_ppm`` fast, stamped late by up to
    ``jitter`` s (callback scheduling); blocks recorded in the host-time ranges ``skip``
    never arrive."""
    rng = np.random.default_rng(seed)
    rate = RATE * (1 + drift_ppm * 1e-6)
    for i in range(int(seconds * rate / BLOCK)):
        n = i * BLOCK + np.arange(BLOCK)
        t_end = (i + 1) * BLOCK / rate
        if any(a <= t_end < b for a, b in skip):
            continue
        asm.push_audio(t_end + rng.uniform(0, jitter), signal(n / rate).astype(np.float32))


def collect(src: LiveSource) -> list:
    """Start a live source, take every snippet until it ends, stop it."""
    src.start()
    snippets = [s for batch in src.batches(8) for s in batch]
    src.stop()
    return snippets


def clicks(t):
    """A click at host time k + 0.5 of every second."""
    phase = np.mod(t, 1.0)
    return np.where(np.abs(phase - 0.5) < 0.5 / RATE, 1.0, 0.0)


def test_drift_fit_measures_ppm_through_jitter():
    est = DriftEstimator(RATE)
    rng = np.random.default_rng(1)
    rate = RATE * (1 + 120e-6)
    for i in range(1, 60 * RATE // BLOCK):
        est.add(1000.0 + i * BLOCK / rate + rng.uniform(0, 0.003), i * BLOCK)
    assert est.ppm == pytest.approx(120, abs=15)


def test_assembler_corrects_microphone_drift():
    """A device 2% fast: read at its nominal rate the clicks would slide 0.4 s over 20 s;
    cut on host time through the fit they stay at the middle of each snippet."""
    asm = SnippetAssembler(0.0, has_audio=True, has_video=False)
    feed_microphone(asm, 21, 20000, clicks)
    snippets = asm.pop_ready(21.0)
    assert [s.index for s in snippets] == list(range(20))
    assert asm.drift.ppm == pytest.approx(20000, rel=0.02)
    positions = [int(np.argmax(s.audio)) for s in snippets[8:]]  # after the fit has a span to work with
    assert all(abs(p - RATE // 2) < 80 for p in positions), positions
    assert asm.stats.audio_gaps == 0
    nominal_slide = 0.02 * 20 * RATE  # where the last click would be without the correction
    assert nominal_slide > 50 * 80


def test_assembler_picks_frames_by_host_time_and_fills_gaps():
    asm = SnippetAssembler(0.0, has_audio=True, has_video=True)
    feed_microphone(asm, 4, 0, lambda t: np.full_like(t, 0.25), skip=[(1.0, 2.0)])
    for i in range(4 * 30):  # 30 fps camera; frames of second 2 never arrive
        t = i / 30
        if not 2.0 <= t < 3.0:
            asm.push_frame(t + 0.002, np.full((4, 4, 3), i, np.uint8))
    first = asm.pop_ready(1.0 + GAP_WAIT / 2)
    assert [s.index for s in first] == [0]  # second 1 has nothing yet: wait for it
    snippets = first + asm.pop_ready(4.0 + GAP_WAIT)
    assert [s.start for s in snippets] == [0.0, 1.0, 2.0, 3.0]
    picked = snippets[0].frames[:, 0, 0, 0]
    assert picked.tolist() == [int(np.argmin(np.abs(np.arange(120) / 30 + 0.002 - j / 8))) for j in range(8)]
    # the stream starts at t0 and the first lost block holds the last 128 samples of second 0
    assert np.allclose(snippets[0].audio[100:-200], 0.25) and np.allclose(snippets[2].audio[100:], 0.25)
    assert (snippets[1].audio == 0).mean() > 0.95  # silence filled (the block ending at 2.0 s starts before it)
    assert asm.stats.audio_gaps == 1 and asm.stats.audio_gap_seconds == pytest.approx(1.0, abs=0.06)
    assert asm.stats.frame_gaps >= 4  # second 2: the frames of 1.9 s / 3.0 s repeated
    assert set(snippets[2].frames[:, 0, 0, 0].tolist()) <= {59, 60, 90}


class Item:
    def __init__(self, index: int, nbytes: int = 0):
        self.index, self.nbytes = index, nbytes

    def __eq__(self, other):
        return self.index == other


@pytest.mark.parametrize("policy, kept, dropped", [("skip", [3, 4], [0, 1, 2]), ("lag", [0, 1, 2, 3, 4], [])])
def test_queue_policy_drops_oldest_and_counts(policy, kept, dropped):
    q = SnippetQueue(policy, maxsize=2 if policy == "skip" else None)
    start = time.monotonic()
    for i in range(5):
        q.put(Item(i))
    assert time.monotonic() - start < 0.05  # capture never waits on compute
    assert q.get_batch(10) == kept and q.dropped == len(dropped) and list(q.recent_drops) == dropped
    q.close()
    assert q.get_batch(10) is None


@pytest.mark.parametrize("policy", ["skip", "lag"])
def test_queue_holds_counts_not_dropped_snippets(policy):
    """1000 puts of 1 MB snippets with nobody reading: the queue holds at most maxsize of
    them (and at most max_bytes), and the counts add up."""
    q = SnippetQueue(policy, maxsize=5 if policy == "skip" else 50, max_bytes=20 << 20)
    for i in range(1000):
        q.put(Item(i, 1 << 20))
        assert len(q) <= q.maxsize and q.bytes <= q.max_bytes
    held = min(q.maxsize, 20)
    assert len(q) == held and q.bytes == held << 20
    assert q.dropped == 1000 - held and q.dropped_bytes == (1000 - held) << 20
    assert len(q.recent_drops) <= 32 and q.recent_drops[-1] == 1000 - held - 1
    assert [i.index for i in q.get_batch(1000)] == list(range(1000 - held, 1000)) and q.bytes == 0


def test_queue_keeps_the_newest_even_when_it_alone_is_over_the_byte_bound():
    q = SnippetQueue("lag", max_bytes=10)
    q.put(Item(0, 8))
    q.put(Item(1, 100))
    assert q.get_batch(5) == [1] and q.dropped == 1


def test_microphone_through_injected_stream():
    """The microphone's own callback, driven in real time: a tone burst at 1.5-2.5 s lands
    in the second half of snippet 1 and the first half of snippet 2; overflow flags are
    counted; the device's 3000 ppm are measured."""
    burst = lambda t: np.where((t >= 1.5) & (t < 2.5), 0.5 * np.sin(2 * np.pi * 500 * t), 0.0)  # noqa: E731
    src = LiveSource(microphone=True, duration=5,
                     stream_factory=signal_stream(signal=burst, drift_ppm=3000, overflow_blocks=(7, 40)))
    assert src.notes == ["no camera: fed as black frames"]
    snippets = collect(src)
    assert [s.start for s in snippets] == [0.0, 1.0, 2.0, 3.0, 4.0]
    rms = lambda x: float(np.sqrt(np.mean(x ** 2)))  # noqa: E731
    one, two = snippets[1].audio, snippets[2].audio
    assert rms(one[:RATE // 2 - 1600]) < 0.01 and rms(one[RATE // 2 + 1600:]) > 0.3
    assert rms(two[:RATE // 2 - 1600]) > 0.3 and rms(two[RATE // 2 + 1600:]) < 0.01
    assert all(s.frames.max() == 0 for s in snippets)
    stats = src.stats
    assert stats.overflows == 2 and stats.dropped == 0
    assert stats.mic_ppm == pytest.approx(3000, abs=1000)


def test_camera_file_and_microphone_share_one_clock(tmp_path):
    """Webcam + microphone: an MJPEG file played as a camera at 10 fps and the injected
    microphone; frame levels and the tone line up with host time, and the file's end
    ends the input."""
    video = make_mjpeg(tmp_path / "cam.avi", 35, fps=10)
    src = LiveSource(camera=str(video), microphone=True, stream_factory=signal_stream())
    assert src.notes == []
    snippets = collect(src)
    assert [s.start for s in snippets] == [0.0, 1.0, 2.0, 3.0]  # 3.5 s of video: the half second counts
    for s in snippets[:3]:
        levels = s.frames[:, 0, 0, 0].astype(int)
        expected = [frame_level(round((s.start + j / 8) * 10)) for j in range(8)]
        assert np.all(np.abs(levels - expected) <= 6), (s.start, levels, expected)  # one frame of slack
        assert np.sqrt(np.mean(s.audio ** 2)) > 0.05
    assert src.stats.camera_fps == pytest.approx(10, rel=0.1) and src.fault is None


def network_camera(video, server_options: dict, **source_options):
    """``video`` served as a loopback network camera at 10 fps, read live until it stops:
    the source (for its fault) and its snippets."""
    server = CameraServer(video, fps=10, **server_options)
    try:
        src = LiveSource(camera=server.url, **source_options)
        return src, collect(src)
    finally:
        server.close()


def test_unplugged_network_camera_is_a_fault(tmp_path):
    src, snippets = network_camera(make_mjpeg(tmp_path / "net.avi", 100, fps=10), {"cut_after": 2.5})
    assert 1 <= len(snippets) <= 3
    assert "read failed" in src.fault and "unplugged" in src.fault


def test_hanging_camera_stalls_into_a_fault(tmp_path):
    src, snippets = network_camera(make_mjpeg(tmp_path / "net.avi", 100, fps=10), {"cut_after": 1.5, "hang": True},
                                   stall_seconds=1.0)
    assert len(snippets) >= 1 and "no frame for" in src.fault


def test_frozen_camera_is_a_fault(tmp_path):
    src, snippets = network_camera(make_mjpeg(tmp_path / "still.avi", 100, fps=10, still=True), {}, freeze_seconds=1.5)
    assert len(snippets) <= 2 and "frozen" in src.fault


@pytest.mark.parametrize("camera, fragment", [(7, "not found (no /dev/video7)"), ("missing.avi", "not found"),
                                              ("junk.avi", "camera junk.avi: ")])
def test_camera_that_cannot_open(tmp_path, monkeypatch, camera, fragment):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.avi").write_bytes(b"junk" * 100)
    with pytest.raises(AvvpError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        LiveSource(camera=camera)
