"""``avvp-stream --source ...`` end to end (real subprocesses, OpenCV cameras on files and
on a loopback network camera, random-initialised networks), the pacing policies, the
live table on a terminal and the timeline plot."""

import json
import os
import pty
import subprocess
import time

import numpy as np
import pytest

from avvp_stream.events import Event, EventTracker
from avvp_stream.sources.live import LiveSource

from live_devices import CameraServer, make_mjpeg
from media import make_media
from test_stream import STREAM, records, run


def test_camera_file_live_run_counts_every_snippet(tmp_path):
    """A 6 s video played as a camera for --duration 4, full ResNet profile: on this CPU
    compute is slower than real time, so the skip policy drops; whatever happens, every
    captured snippet is either emitted or counted as dropped."""
    video = make_mjpeg(tmp_path / "cam.avi", 60, fps=10)
    plot = tmp_path / "timeline.png"
    proc = run("--source", "camera", "--camera", video, "--random-weights", "--device", "cpu", "--resnet-frames", 8,
               "--lookahead", 1, "--duration", 4, "--plot", plot)
    assert proc.returncode == 0, proc.stderr
    recs = records(proc.stdout)
    summary = recs[-1]
    assert summary["kind"] == "summary" and summary["snippets"] == 4 and summary["camera_fps"] == pytest.approx(10, rel=0.1)
    final = [r for r in recs if r["kind"] == "snippet" and r["final"]]
    assert len(final) + summary["dropped"] == 4
    starts = [r["start"] for r in final]
    assert starts == sorted(set(starts)) and set(starts) <= {0.0, 1.0, 2.0, 3.0}
    assert all(r["emitted_at"] >= r["captured_at"] for r in final)
    assert "no microphone: fed as silence" in proc.stderr
    assert f"{summary['dropped']} dropped (compute behind, --policy skip)" in proc.stderr
    # where the time went: every stage of the loop, which add up to its wall time
    time_ = summary["time"]
    assert {"capture_wait", "prepare", "vggish", "resnet152", "r2plus1d_18", "head", "write"} <= set(time_["stages"])
    assert time_["stages"]["decode"]["background"] and 0.9 <= time_["accounted"] <= 1.1
    assert time_["snippets"] == len(final) and time_["rtf"] > 0
    assert "real-time factor" in proc.stderr and "capture_wait" in proc.stderr
    cv2 = pytest.importorskip("cv2")
    img = cv2.imread(str(plot))
    assert img is not None and img.shape[1] > 400


@pytest.mark.parametrize("policy", ["skip", "lag"])
def test_pacing_policy_when_compute_falls_behind(tmp_path, policy):
    """The consumer takes 1.7 s per snippet of a 5 s camera: skip (one waiting snippet)
    keeps labels near real time by dropping, and counting, the oldest; lag keeps them all."""
    src = LiveSource(camera=str(make_mjpeg(tmp_path / "cam.avi", 50, fps=10)), policy=policy,
                     queue_size=1 if policy == "skip" else None)
    src.start()
    got = []
    for batch in src.batches(1):
        got.extend(s.index for s in batch)
        time.sleep(1.7)
    src.stop()
    dropped = list(src.queue.recent_drops)
    assert src.stats.dropped == len(dropped) and src.stats.snippets == 5 and sorted(got + dropped) == list(range(5))
    if policy == "skip":
        assert dropped and got[-1] == 4  # the newest second is always parsed
    else:
        assert dropped == [] and got == list(range(5))


def test_event_tracker_ends_events_at_a_dropped_snippet():
    t = EventTracker(classes=("Dog",))
    on = {"audio": np.array([True]), "visual": np.array([False]), "audio_visual": np.array([False])}
    t.update(0.0, on)
    t.update(1.0, on)
    ended = t.update(3.0, on)  # 2.0 was dropped
    assert [(e.state, e.onset, e.offset) for e in ended] == [("end", 0.0, 2.0), ("start", 3.0, None)]


def test_unplugged_camera_keeps_what_was_emitted(tmp_path):
    server = CameraServer(make_mjpeg(tmp_path / "net.avi", 100, fps=10), fps=10, cut_after=3.5)
    capture = tmp_path / "session.mkv"
    try:
        proc = run("--source", "camera", "--camera", server.url, "--random-weights", "--device", "cpu", "--backend", "torch",
                   "--save-capture", capture)
    finally:
        server.close()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "read failed" in last and "stopped after" in last
    recs = records(proc.stdout)
    assert [r for r in recs if r["kind"] == "snippet"] and recs[-1]["kind"] == "summary"
    saved = recs[-1]["capture"]  # the capture is closed properly after the fault: every frame decodes
    import av

    with av.open(str(capture)) as f:
        assert sum(1 for _ in f.decode(video=0)) == saved["frames"] >= 15 and saved["dropped_frames"] == 0
    assert all(r["offset"] is not None for r in recs if r["kind"] == "event" and r["state"] == "end")


@pytest.mark.parametrize("args, fragment", [
    (["--source", "webcam", "--camera", "7"], "camera 7: not found"),
    (["--source", "camera", "--camera", "clip.mp4", "clip.mp4"], "give a video file to play as a camera with --camera"),
    (["clip.mp4", "--backend", "tensorrt", "--device", "cpu"], "--backend tensorrt: tensorrt needs a CUDA GPU"),
    (["clip.mp4", "--plot", "out.pdf"], "give a .png"),
    ([], "give a media FILE, or --source webcam|camera|mic"),
])
def test_live_bad_input_is_one_line(tmp_path, args, fragment):
    make_media(tmp_path / "clip.mp4", 1.0, size=(32, 32))
    proc = run(*args, "--random-weights", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert fragment in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("option, value, choices", [
    ("--source", "tv", ["file", "webcam", "camera", "mic"]),
    ("--policy", "fast", ["skip", "lag"]),
    ("--backend", "jax", ["auto", "torch", "onnxruntime", "cuda-graph", "tensorrt", "tensorrt-fp16"]),
    ("--format", "docx", ["auto", "table", "jsonl", "tsv", "srt", "vtt"]),
])
def test_choices_are_listed_in_help_and_checked_by_typer(option, value, choices):
    """Every option with choices lists them in --help, and a bad one is a usage error."""
    helptext = run("--help", env={**os.environ, "COLUMNS": "200"}).stdout
    line = next(line for line in helptext.splitlines() if line.strip("│ ").startswith(f"{option} "))
    assert "|".join(choices) in line, line
    proc = run("clip.mp4", option, value)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "Usage:" in proc.stderr
    assert value in proc.stderr and all(c in proc.stderr for c in choices), proc.stderr


def test_python_m_avvp_stream_is_the_same_command():
    import sys

    proc = subprocess.run([sys.executable, "-m", "avvp_stream", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Usage: avvp-stream" in " ".join(proc.stdout.split())


def test_microphone_without_portaudio_or_device_is_one_line():
    """Which line depends on the machine: without the PortAudio library it names the
    package to install; with it (and no sound card, as on CI) it says there is no input."""
    import ctypes.util

    proc = run("--source", "mic", "--random-weights", "--duration", "1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    if ctypes.util.find_library("portaudio") is None:
        assert "PortAudio library, which is missing" in last and "libportaudio2" in last
    else:
        import sounddevice

        if any(d["max_input_channels"] > 0 for d in sounddevice.query_devices()):
            pytest.skip("this machine has a real microphone")
        assert "no such input device" in last


def test_live_table_on_a_terminal(tmp_path):
    video = make_media(tmp_path / "clip.mp4", 2.0, size=(64, 48))
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*STREAM, str(video), "--random-weights", "--device", "cpu", "--backend", "torch"], stdout=follower,
                            stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "160"})
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=600)
    os.close(leader)
    assert proc.returncode == 0, proc.stderr.read()
    text = out.decode(errors="replace")
    for heading in ("audio-visual", "latency", "open events"):
        assert heading in text
    assert "final" in text and '"kind"' not in text  # a table, not JSON


def test_timeline_plot_paints_each_event_where_it_belongs(tmp_path):
    from avvp_stream.writers.timeline import COLOURS, draw_timeline, lane_box, layout

    events = [Event("audio", "Dog", 1.0, 4.0, "end"), Event("visual", "Dog", 2.0, 3.0, "end"),
              Event("audio", "Speech", 0.0, 10.0, "end"), Event("audio_visual", "Dog", 2.0, 3.0, "end")]
    img, px = draw_timeline(events, 10.0, "test")
    rows = layout(events)
    assert rows[0] == ("audio", ["Speech", "Dog"])
    for ev in events:
        x0, y0, x1, y1 = lane_box(10.0, rows, ev.modality, ev.label, ev.onset, ev.offset, px)
        assert tuple(img[(y0 + y1) // 2, (x0 + x1) // 2]) == COLOURS[ev.modality]
        assert tuple(img[(y0 + y1) // 2, x1 + 3]) != COLOURS[ev.modality]  # the bar ends at the offset
    x0, y0, x1, y1 = lane_box(10.0, rows, "visual", "Dog", 0.0, 2.0, px)  # visual Dog before its onset
    assert tuple(img[(y0 + y1) // 2, (x0 + x1) // 2]) != COLOURS["visual"]


def test_ctrl_c_on_live_input_flushes_and_exits_130(tmp_path):
    import signal

    video = make_mjpeg(tmp_path / "cam.avi", 200, fps=10)
    capture = tmp_path / "session.mkv"
    proc = subprocess.Popen([*STREAM, "--source", "camera", "--camera", str(video), "--random-weights", "--device", "cpu",
                             "--backend", "torch", "--save-capture", str(capture), "--verbose", "--verbose-every", "0.5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # the first snippet is out: capture and parsing are under way
    assert json.loads(first)["kind"] == "snippet"
    while True:  # and a second batch: the first one's --verbose report is out too
        line = proc.stdout.readline()
        first += line
        rec = json.loads(line)
        if rec["kind"] == "snippet" and rec["index"] >= 1:
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.stdout.read()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err and "live: " in err
    recs = records(first + rest)
    assert recs[-1]["kind"] == "summary" and recs[-1]["snippets"] < 20
    events = [r for r in recs if r["kind"] == "event"]
    opened = {(e["modality"], e["label"]) for e in events if e["state"] == "start"}
    assert opened == {(e["modality"], e["label"]) for e in events if e["state"] == "end"}
    # --verbose reported the stages while it ran (before the closing summary), the capture is valid after Ctrl-C
    assert err.count("real-time factor") >= 2 and "capture saved to" in err
    import av

    with av.open(str(capture)) as f:
        assert sum(1 for _ in f.decode(video=0)) == recs[-1]["capture"]["frames"] > 0
