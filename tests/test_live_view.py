"""Labels on the picture: ``--show`` in a real X window (Xvfb, screenshot read by pixels,
``q`` to stop), its one-line refusal without a display, and ``--annotate`` (the frames of
the written video carry the labels of their second, the sound is kept)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from avvp_stream.events import Event
from avvp_stream.writers.overlay import LabelState, draw, row_box

from live_devices import frame_level, make_mjpeg
from media import make_media
from test_stream import STREAM, records, run

CLASSES = "Speech,Dog,Cat"
FAST = ("--random-weights", "--device", "cpu", "--backend", "torch", "--classes", CLASSES)


@pytest.fixture(scope="module")
def xvfb():
    """A virtual X display (Debian's xvfb), for the life of the module."""
    binary = shutil.which("Xvfb")
    if binary is None:
        pytest.skip("Xvfb is not installed (Debian: apt-get install xvfb)")
    number = next(n for n in range(91, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    proc = subprocess.Popen([binary, f":{number}", "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.skip("Xvfb did not start")
        time.sleep(0.05)
    yield f":{number}"
    proc.terminate()
    proc.wait(timeout=10)


def colour_counts(band: np.ndarray) -> dict[str, int]:
    """Pixels of each row's text colour (RGB), anti-aliasing on the dark panel allowed for."""
    r, g, b = (band[..., i].astype(int) for i in range(3))
    return {"audio": int(np.count_nonzero((b > 150) & (b > r + 60) & (g > r + 30))),
            "visual": int(np.count_nonzero((r > 150) & (r > g + 60) & (b > g + 30))),
            "audio_visual": int(np.count_nonzero((g > 150) & (g > r + 60) & (g > b + 60))),
            "events": int(np.count_nonzero((r > 170) & (g > 170) & (b > 170) & (abs(r - b) < 40)))}


def test_show_draws_the_labels_on_the_live_picture_and_q_stops(tmp_path, xvfb):
    xdotool = shutil.which("xdotool")
    if xdotool is None:
        pytest.skip("xdotool is not installed (Debian: apt-get install xdotool)")
    pytest.importorskip("PIL.ImageGrab")
    from PIL import ImageGrab

    env = {**os.environ, "DISPLAY": xvfb}
    video = make_mjpeg(tmp_path / "cam.avi", 400, fps=10, size=(320, 240))
    capture = tmp_path / "session.mkv"
    proc = subprocess.Popen([*STREAM, "--source", "camera", "--camera", str(video), "--show", *FAST,
                             "--resnet-frames", "1", "--save-capture", str(capture)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline()  # a snippet is labelled: the window is drawing labels
        assert first, proc.stderr.read()
        time.sleep(0.5)
        geometry = subprocess.run([xdotool, "search", "--name", "^avvp-stream$", "getwindowgeometry", "--shell"],
                                  capture_output=True, text=True, env=env, timeout=30).stdout
        g = dict(line.split("=") for line in geometry.split() if "=" in line)
        x, y, width, height = (int(g[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
        assert (width, height) == (320, 240)  # the picture, no toolbar
        shot = np.asarray(ImageGrab.grab(xdisplay=xvfb).convert("RGB"))[y:y + height, x:x + width]
        subprocess.run([xdotool, "search", "--name", "^avvp-stream$", "key", "q"], env=env, timeout=30)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "window closed: stopped" in err and "Traceback" not in err, err

    # each row's text is where the layout puts it, in its colour; the picture below is the camera's
    names = ["audio", "visual", "audio_visual", "events"]
    for i, name in enumerate(names):
        top, bottom, left, right = row_box(240, 320, i)
        counts = colour_counts(shot[top:bottom, left:right])
        assert counts[name] >= 15, (name, counts)
        assert counts[name] > 3 * max(v for k, v in counts.items() if k != name), (name, counts)
    below = shot[row_box(240, 320, 5)[0]:, :]
    level = int(np.median(below))
    assert below.std() < 3 and any(abs(level - frame_level(i)) <= 4 for i in range(400))

    recs = records(first + out)
    assert recs[-1]["kind"] == "summary" and recs[-1]["capture"]["frames"] > 0
    import av  # the capture is a valid file after the stop

    with av.open(str(capture)) as saved:
        frames = sum(1 for _ in saved.decode(video=0))
    assert frames == recs[-1]["capture"]["frames"]


def test_show_without_a_display_is_one_line(tmp_path):
    video = make_mjpeg(tmp_path / "cam.avi", 20, fps=10)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    for extra, fragment in (({}, "--show needs a display"), ({"DISPLAY": ":187"}, "--show: cannot open a window")):
        proc = run("--source", "camera", "--camera", video, "--show", "--random-weights", env={**env, **extra})
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert fragment in proc.stderr.strip().splitlines()[-1]


def expected_frame(frame: np.ndarray, t: float, snippets: dict, ended: list[Event]) -> np.ndarray:
    state = LabelState()
    k = int(t)
    if k in snippets:
        state.snippet(float(k), snippets[k], True)
    for ev in ended:
        if ev.onset <= t < ev.offset:
            state.open[(ev.modality, ev.label)] = ev.onset
    return draw(frame, state.lines())


def test_annotate_burns_each_seconds_labels_in_and_keeps_the_sound(tmp_path):
    """Every frame of the written video shows the labels of its own second (compared by
    pixels with the drawing of that second's JSON record, and against the second
    before); the sound is there; the closing summary has the stage timings."""
    import av

    from avvp_stream.classes import CLASS_INDEX, CLASSES as ALL

    clip = make_media(tmp_path / "clip.mp4", 3.0, size=(320, 240))
    out = tmp_path / "annotated.mp4"
    proc = run(clip, *FAST, "--resnet-frames", 1, "--annotate", out)
    assert proc.returncode == 0, proc.stderr
    recs = records(proc.stdout)
    snippets = {}
    for r in recs:
        if r["kind"] == "snippet" and r["final"]:
            snippets[r["index"]] = {m: np.isin(np.arange(len(ALL)), [CLASS_INDEX[c] for c in r[m]])
                                    for m in ("audio", "visual", "audio_visual")}
    ended = [Event(r["modality"], r["label"], r["onset"], r["offset"], "end") for r in recs
             if r["kind"] == "event" and r["state"] == "end"]
    assert sorted(snippets) == [0, 1, 2]

    with av.open(str(clip)) as src:
        inputs = [(f.time, f.to_ndarray(format="rgb24")) for f in src.decode(video=0)]
    with av.open(str(out)) as written:
        assert written.streams.audio and written.streams.audio[0].codec_context.name == "aac"
        audio_seconds = sum(f.samples / f.sample_rate for f in written.decode(audio=0))
        written.seek(0)
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in written.decode(video=0)]
    assert abs(audio_seconds - 3.0) < 0.1 and len(frames) == len(inputs)
    top, bottom = row_box(240, 320, 0)[0], row_box(240, 320, 3)[1]
    for (t, got), (_, source) in zip(frames, inputs):
        if int(t) == 0:
            continue
        right = expected_frame(source, t, snippets, ended)[top:bottom].astype(int)
        wrong = expected_frame(source, t - 1, snippets, ended)[top:bottom].astype(int)
        panel = got[top:bottom].astype(int)
        assert np.abs(panel - right).mean() < 6, t
        differ = np.abs(right - wrong).max(axis=-1) > 40  # where this second's text and the last one's differ
        assert differ.sum() > 20  # the time at least
        assert np.abs(panel - right)[differ].mean() < 0.3 * np.abs(panel - wrong)[differ].mean(), t

    summary = recs[-1]
    assert summary["kind"] == "summary"
    stages = summary["time"]["stages"]
    assert {"decode", "prepare", "vggish", "resnet152", "r2plus1d_18", "head", "write"} <= set(stages)
    assert 0.9 <= summary["time"]["accounted"] <= 1.1
    assert all(s["p50_ms"] <= s["p99_ms"] for s in stages.values()) and summary["time"]["rtf"] > 0
    assert "real-time factor" in proc.stderr and "annotated video" in proc.stderr


def test_closing_the_window_stops_like_ctrl_c(xvfb):
    """Closing the window (WM_DELETE_WINDOW, as a window manager sends it) sends the
    process SIGINT: the same stop as Ctrl-C and q. In a child process, since Qt binds to
    the display it first meets."""
    import sys

    xdotool = shutil.which("xdotool")
    if xdotool is None:
        pytest.skip("xdotool is not installed (Debian: apt-get install xdotool)")
    tests = Path(__file__).parent
    script = f"""
import signal, subprocess, sys, time
sys.path.insert(0, {str(tests)!r})
from live_devices import wm_close
got = []
signal.signal(signal.SIGINT, lambda *a: got.append("SIGINT"))
from avvp_stream.writers.window import LabelWindow
window = LabelWindow(size=(120, 160))
time.sleep(0.5)
found = subprocess.run([{xdotool!r}, "search", "--name", "^avvp-stream$"], capture_output=True, text=True)
wm_close({xvfb!r}, int(found.stdout.split()[0]))
deadline = time.monotonic() + 10
while not got and time.monotonic() < deadline:
    time.sleep(0.05)
window.close()
print(got, window.quit, window.shown > 0)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DISPLAY": xvfb})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "['SIGINT'] True True"


def test_provisional_labels_are_grey_and_marked():
    from avvp_stream.writers.overlay import COLOURS, PROVISIONAL

    state = LabelState()
    dog = np.zeros(25, bool)
    dog[3] = True
    state.snippet(4.0, {"audio": dog, "visual": dog, "audio_visual": dog}, final=False)
    lines = state.lines()
    assert all(text.endswith("(provisional)") and colour == PROVISIONAL for text, colour in lines[:3])
    state.snippet(4.0, {"audio": dog, "visual": ~dog, "audio_visual": dog}, final=True)  # the same second, final
    assert [colour for _, colour in state.lines()[:3]] == [COLOURS[m] for m in ("audio", "visual", "audio_visual")]
    state.snippet(3.0, {"audio": ~dog, "visual": ~dog, "audio_visual": ~dog}, final=True)  # older: not shown
    assert state.start == 4.0
    image = draw(np.full((240, 320, 3), 200, np.uint8), LabelState(final=False).lines())
    top, bottom, left, right = row_box(240, 320, 0)
    band = image[top:bottom, left:right].astype(int)
    assert (np.abs(band - PROVISIONAL[0]).max(axis=-1) < 20).sum() > 15  # grey text on the dark panel
