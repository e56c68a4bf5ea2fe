"""avvp-stream on files: real subprocesses, random-initialised networks, nothing downloads."""

import json
import subprocess

import numpy as np
import pytest

from avvp_stream.events import EventTracker

from conftest import console_script
from media import make_media

STREAM = console_script("avvp-stream")


def run(*args, **kw):
    return subprocess.run([*STREAM, *map(str, args)], capture_output=True, text=True, timeout=600, **kw)


def records(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_event_tracker_start_extend_end():
    t = EventTracker(classes=("Dog", "Cat"))
    on, off = np.array([True, False]), np.array([False, False])
    both = {"audio": on, "visual": off, "audio_visual": off}
    none = {"audio": off, "visual": off, "audio_visual": off}
    assert [(e.label, e.state, e.onset, e.offset) for e in t.update(3.0, both)] == [("Dog", "start", 3.0, None)]
    assert [(e.state, e.onset) for e in t.update(4.0, both)] == [("extend", 3.0)]
    assert [(e.state, e.onset, e.offset) for e in t.update(5.0, none)] == [("end", 3.0, 5.0)]
    t.update(6.0, both)
    assert [(e.state, e.onset, e.offset) for e in t.close()] == [("end", 6.0, 7.0)]


def test_real_llp_clip_gives_ten_final_snippets(llp_dir):
    proc = run(llp_dir / "BjCEufrlXm4.mp4", "--random-weights", "--device", "cpu", "--backend", "torch", "--resnet-frames", 1)
    assert proc.returncode == 0, proc.stderr
    recs = records(proc.stdout)
    snippets = [r for r in recs if r["kind"] == "snippet"]
    assert [r["start"] for r in snippets] == [float(i) for i in range(10)]
    assert all(r["final"] and r["end"] == r["start"] + 1 for r in snippets)
    for r in snippets:
        assert set(r["audio_visual"]) == set(r["audio"]) & set(r["visual"])
        assert r["emitted_at"] >= r["captured_at"]
    events = [r for r in recs if r["kind"] == "event"]
    ends = [e for e in events if e["state"] == "end"]
    starts = [e for e in events if e["state"] == "start"]
    assert len(ends) == len(starts) and all(e["offset"] > e["onset"] for e in ends)
    assert all(e["offset"] is None for e in events if e["state"] != "end")


def test_classes_filter_and_missing_audio(tmp_path):
    path = make_media(tmp_path / "silent.mkv", 2.0, audio=False, video_codec="mpeg4", size=(48, 32))
    proc = run(path, "--random-weights", "--device", "cpu", "--classes", "Dog,Speech", "--backend", "torch",
               "--resnet-frames", 1)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("no audio stream") == 1
    snippets = [r for r in records(proc.stdout) if r["kind"] == "snippet"]
    assert len(snippets) == 2
    assert all(set(r["audio"]) | set(r["visual"]) <= {"Dog", "Speech"} for r in snippets)


@pytest.mark.parametrize("args, fragment", [
    (["nope.mp4"], "file not found"),
    (["junk.mp4"], "not a readable media file"),
    (["ok.mp4", "--classes", "Kazoo"], "unknown class 'Kazoo'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, fragment):
    (tmp_path / "junk.mp4").write_bytes(b"junk" * 500)
    make_media(tmp_path / "ok.mp4", 1.0, size=(32, 32))
    proc = subprocess.run([*STREAM, *args, "--random-weights", "--device", "cpu"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert fragment in proc.stderr.strip().splitlines()[-1]


def test_ctrl_c_flushes_and_exits_130(tmp_path):
    import signal

    path = make_media(tmp_path / "long.mp4", 30.0, size=(32, 32))
    proc = subprocess.Popen([*STREAM, str(path), "--random-weights", "--device", "cpu", "--batch", "1",
                             "--resnet-frames", "1", "--lookahead", "0", "--backend", "torch"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # the first snippet is out: parsing is under way
    assert json.loads(first)["kind"] == "snippet"
    proc.send_signal(signal.SIGINT)
    # Drain stdout through the buffer readline used (communicate() would bypass it) while
    # the child finishes; its stderr is a few lines and cannot fill the pipe.
    rest = proc.stdout.read()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 130, (err, len(records(first + rest)), first[:80])
    assert "interrupted" in err and "Traceback" not in err
    recs = records(first + rest)
    snippets = [r for r in recs if r["kind"] == "snippet" and r["final"]]
    assert 1 <= len(snippets) < 30
    events = [r for r in recs if r["kind"] == "event"]
    opened = {(e["modality"], e["label"]) for e in events if e["state"] == "start"}
    closed = {(e["modality"], e["label"]) for e in events if e["state"] == "end"}
    assert opened == closed  # every open event was ended on the way out


def test_tsv_srt_vtt_outputs_agree_with_the_events(tmp_path):
    """One real run for the events; the tsv / srt / vtt writers are the CLI's, fed the same
    events (each format's own CLI run is exercised in test_bad_input... and the README)."""
    import io

    from avvp_stream.events import Event
    from avvp_stream.writers.timed_text import SrtWriter, TsvWriter, VttWriter

    path = make_media(tmp_path / "clip.mp4", 3.0, size=(32, 32))
    common = ["--random-weights", "--device", "cpu", "--resnet-frames", "1", "--backend", "torch"]
    events = [r for r in records(run(path, *common).stdout) if r["kind"] == "event" and r["state"] == "end"]
    assert events  # random weights switch many classes on
    outputs = {}
    for name, cls in (("tsv", TsvWriter), ("srt", SrtWriter), ("vtt", VttWriter)):
        buf = io.StringIO()
        writer = cls(buf, name="clip")
        for e in events:
            writer.event(Event(e["modality"], e["label"], e["onset"], e["offset"], "end"))
        outputs[name] = buf.getvalue()
    tsv = outputs["tsv"].splitlines()
    assert tsv[0] == "filename\tonset\toffset\tevent_labels\tmodality"
    rows = [line.split("\t") for line in tsv[1:]]
    assert sorted((float(r[1]), float(r[2]), r[3], r[4]) for r in rows) == \
        sorted((e["onset"], e["offset"], e["label"], e["modality"]) for e in events)
    assert all(r[0] == "clip" for r in rows)
    srt = outputs["srt"]
    assert srt.startswith("1\n00:00:0") and srt.count(" --> ") == len(events)
    vtt = outputs["vtt"]
    assert vtt.startswith("WEBVTT\n\n") and vtt.count(" --> ") == len(events) and "," not in vtt.split("\n")[2]
    tsv_cli = run(path, *common, "--format", "tsv").stdout.splitlines()  # and the CLI writes the same
    assert sorted(tsv_cli) == sorted(tsv)
