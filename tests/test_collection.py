"""Whole collections: ``avvp-stream batch`` and ``avvp-train extract`` in this process and on
a local Ray cluster the tests start (and stop): same outputs, reruns skip, failures
listed, a killed worker retried without writing twice, Ctrl-C keeps what was written,
and the local Ray instance listens on loopback only."""

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from avvp_stream.collection import ExtractStages, FeatureFolders, list_inputs, parse_collection, run_collection
from avvp_stream.errors import AvvpError
from conftest import console_script
from media import make_media

CLOCK = {"captured_at", "emitted_at"}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """Five small videos: one silent, one corrupt, one long enough to travel in pieces."""
    folder = tmp_path_factory.mktemp("collection") / "videos"
    folder.mkdir()
    make_media(folder / "a.mp4", 2.0, size=(32, 24))
    make_media(folder / "b_long.mp4", 3.0, size=(32, 24), tone_hz=800.0)
    make_media(folder / "c_silent.mkv", 1.0, audio=False, video_codec="mpeg4", size=(32, 24))
    make_media(folder / "d_sound_only.wav", 1.0, video=False, audio_codec="pcm_s16le", rate=22050)
    (folder / "e_corrupt.mp4").write_bytes(b"not a video at all" * 64)
    return folder


def records(path: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in CLOCK} for line in path.read_text().splitlines()]


def test_inputs_are_a_folder_a_glob_or_a_list(videos, tmp_path):
    assert [p.name for p in list_inputs(videos)] == sorted(p.name for p in videos.iterdir())
    assert [p.name for p in list_inputs(str(videos / "*.mp4"))] == ["a.mp4", "b_long.mp4", "e_corrupt.mp4"]
    listing = tmp_path / "list.txt"
    listing.write_text(f"# my videos\n{videos / 'a.mp4'}\n\n{videos / 'c_silent.mkv'}\n")
    assert [p.name for p in list_inputs(listing)] == ["a.mp4", "c_silent.mkv"]
    with pytest.raises(AvvpError, match="no such"):
        list_inputs(tmp_path / "nowhere")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.mp4").write_bytes(b"")
    listing.write_text(f"{videos / 'a.mp4'}\n{tmp_path / 'x' / 'a.mp4'}\n")
    with pytest.raises(AvvpError, match="same output"):
        list_inputs(listing)


@pytest.fixture(scope="module")
def local_run(videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out"
    summary = parse_collection(str(videos), out, random_weights=True, device="cpu", backend="torch", batch=3, chunk=2)
    return out, summary


def test_batch_parses_like_avvp_stream_file(local_run, videos, capsys):
    """Locally: one output per video, equal (clock fields aside) to ``avvp-stream FILE``;
    the long one went through the networks in pieces."""
    out, summary = local_run
    assert sorted(Path(p).name for p in summary.done) == ["a.mp4", "b_long.mp4", "c_silent.mkv", "d_sound_only.wav"]
    assert [Path(p).name for p in summary.failed] == ["e_corrupt.mp4"]
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [Path(f["path"]).name for f in failures] == ["e_corrupt.mp4"] and "not a readable" in failures[0]["reason"]
    from avvp_stream.runner import RunConfig, run

    run(RunConfig(media=videos / "b_long.mp4", random_weights=True, backend="torch", device="cpu", output_format="jsonl"))
    single = [{k: v for k, v in json.loads(line).items() if k not in CLOCK} for line in capsys.readouterr().out.splitlines()]
    assert single[-1]["kind"] == "summary" and single[-1]["snippets"] == len([r for r in single if r["kind"] == "snippet"])
    single = single[:-1]  # the timings of this run; a collection's outputs have the records only
    assert records(out / "b_long.jsonl") == single  # what avvp-stream FILE writes
    table = (out / "events.tsv").read_text().splitlines()
    assert table[0] == "filename\tonset\toffset\tevent_labels\tmodality"
    assert {row.split("\t")[0] for row in table[1:]} <= {"a.mp4", "b_long.mp4", "c_silent.mkv", "d_sound_only.wav"}


@pytest.fixture(scope="module")
def ray_runs(videos, local_run, tmp_path_factory):
    """One local Ray instance for the module's runs (started by the first, stopped after)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:  # not imported here: connect() sets Ray up first
        pytest.skip("Ray is not installed (pip install 'avvp-stream[ray]')")
    from avvp_stream.cluster import connect

    ray_mod, _ = connect("local", cpus=2)
    yield tmp_path_factory.mktemp("ray")
    ray_mod.shutdown()


def test_on_ray_the_outputs_equal_the_local_ones_and_a_rerun_skips(ray_runs, videos, local_run, monkeypatch):
    """The run's first feature actor dies on its first batch (a test hook: a worker killed
    mid-run); Ray restarts it and retries the batch. Every video is written exactly once,
    and the outputs equal the local run's."""
    from avvp_stream import collection

    marker = ray_runs / "killed"
    monkeypatch.setenv("AVVP_TEST_KILL_ACTOR_ONCE", str(marker))
    writes = []
    original = collection.ParseOutputs.write
    monkeypatch.setattr(collection.ParseOutputs, "write",
                        lambda self, path, parts: writes.append(path) or original(self, path, parts))
    out = ray_runs / "parse"
    summary = parse_collection(str(videos), out, random_weights=True, device="cpu", backend="torch", batch=3, chunk=2,
                               ray_address="local")
    assert marker.is_file()  # an actor did die
    assert sorted(writes) == sorted(summary.done) and len(writes) == 4
    monkeypatch.delenv("AVVP_TEST_KILL_ACTOR_ONCE")
    local_out, local_summary = local_run
    assert sorted(summary.done) == sorted(local_summary.done) and list(summary.failed) == list(local_summary.failed)
    for name in ("a", "b_long", "c_silent", "d_sound_only"):
        assert records(out / f"{name}.jsonl") == records(local_out / f"{name}.jsonl"), name
    assert (out / "events.tsv").read_text() == (local_out / "events.tsv").read_text()
    done = ray_runs / "done.txt"  # the finished videos again (a list input): all skipped, nothing loads
    done.write_text("\n".join(summary.done) + "\n")
    again = parse_collection(str(done), out, random_weights=True, device="cpu", backend="torch", batch=3, chunk=2,
                             ray_address="local")
    assert len(again.skipped) == 4 and not again.done and not again.failed and again.wall_seconds < 2


def test_extraction_on_ray_writes_the_local_folders(ray_runs, videos):
    from avvp_stream.features.extractor import FeatureExtractor
    from avvp_stream.features.spec import specs
    from avvp_stream.train.extract import extract_folder

    local = ray_runs / "extract_local"  # clips of 1 s: every kind of video, little compute
    extract_folder(videos, local, FeatureExtractor(device="cpu", random_weights=True), seconds=1, batch=2)
    remote = ray_runs / "extract_ray"
    summary = run_collection(ExtractStages(1), FeatureFolders(remote, specs()), sorted(videos.iterdir()), remote,
                             extractor_kwargs={"device": "cpu", "random_weights": True}, backend="torch", batch=2,
                             ray_address="local")
    assert len(summary.done) == 4 and [Path(p).name for p in summary.failed] == ["e_corrupt.mp4"]
    failures = [json.loads(line) for line in (remote / "failures.jsonl").read_text().splitlines()]
    assert [Path(f["path"]).name for f in failures] == ["e_corrupt.mp4"]
    for folder in ("vggish", "res152", "r2plus1d_18"):
        for f in sorted((local / folder).glob("*.npy")):
            np.testing.assert_allclose(np.load(remote / folder / f.name), np.load(f), atol=1e-5, err_msg=str(f))


def test_the_local_ray_instance_listens_on_loopback_only(ray_runs):
    """Every socket a process of the local instance (all children of this one) listens on
    is a loopback address."""
    import os

    def descendants(pid: int) -> set[int]:
        out = set()
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid == pid:
                    out |= {int(d)} | descendants(int(d))
        return out

    inodes = set()
    for pid in descendants(os.getpid()) | {os.getpid()}:  # the driver (this process) listens too
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            pass
    listening = [f[1] for table in ("/proc/net/tcp", "/proc/net/tcp6")
                 for f in (line.split() for line in Path(table).read_text().splitlines()[1:])
                 if f[3] == "0A" and f[9] in inodes]
    assert len(listening) >= 3, "the GCS, the raylet and a worker should be listening"
    loopback = ("0100007F:", "0000000000000000FFFF00000100007F:", "00000000000000000000000001000000:")
    assert all(addr.startswith(loopback) for addr in listening), listening  # 127.0.0.1, ::ffff:127.0.0.1, ::1


def test_ctrl_c_keeps_what_was_written_and_exits_130(videos, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([*console_script("avvp-stream"), "batch", str(videos), "--out", str(out), "--random-weights",
                             "--backend", "torch", "--device", "cpu", "--batch", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not list(out.glob("*.jsonl")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    written = list(out.glob("*.jsonl"))
    assert written and not list(out.glob("*.tmp*")) and not list(out.glob(".*"))
    for f in written:  # whole files only
        records(f)


def test_the_actor_pool_leaves_decoding_a_cpu():
    """A 2-CPU machine gets one 1-CPU actor (the other CPU decodes); bigger CPU nodes get
    2-CPU actors on half the CPUs; GPU nodes one actor per GPU."""
    from avvp_stream.collection import pool_size

    assert pool_size({"CPU": 2}, gpu=False) == (1, 1, 0.0)
    assert pool_size({"CPU": 1}, gpu=False) == (1, 0.5, 0.0)
    actors, cpus, _ = pool_size({"CPU": 16}, gpu=False)
    assert actors * cpus <= 15 and actors * cpus >= 8
    assert pool_size({"CPU": 16, "GPU": 8}, gpu=True) == (8, 1, 1.0)
    assert pool_size({"CPU": 16}, gpu=True) == pool_size({"CPU": 16}, gpu=False)  # no GPU there after all
