"""The command lines end to end, as a user runs them: real subprocesses, real files."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import console_script, shared_file

TRAIN = console_script("avvp-train")
STREAM = console_script("avvp-stream")
EXPORT = console_script("avvp-export")


def run(cmd, *args, ok=True):
    proc = subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "error:" in lines[0], proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_console_scripts_are_installed():
    for name in ("avvp-train", "avvp-stream", "avvp-export"):
        assert "Usage" in run(console_script(name), "--help").stdout


def test_fit_then_eval_checkpoint(small_dataset, tmp_path):
    out = tmp_path / "run"
    proc = run(TRAIN, "fit", "--data", small_dataset, "--epochs", "2", "--out", out, "--json")
    metrics = json.loads(proc.stdout)
    assert set(metrics) == {"segment", "event"}
    assert set(metrics["segment"]) == {"audio", "visual", "audio_visual", "type_at_av", "event_at_av"}
    assert (out / "best.pt").is_file() and (out / "history.json").is_file()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test"] == metrics
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as pool:  # three independent commands on the checkpoint, side by side
        evaluated, tabled, described = pool.map(lambda args: run(TRAIN, *args), [
            ("eval", "--checkpoint", out / "best.pt", "--data", small_dataset, "--split", "test", "--json"),
            ("eval", "--checkpoint", out / "best.pt", "--data", small_dataset),
            ("info", out / "best.pt")])
    again = json.loads(evaluated.stdout)
    for level in ("segment", "event"):
        for key, value in metrics[level].items():
            assert again[level][key] == pytest.approx(value, abs=1e-9)
    table = tabled.stdout
    for row in ("Audio-Visual", "Type@AV", "Event@AV", "Segment-level", "Event-level"):
        assert row in table
    info = json.loads(described.stdout)
    assert info["config"]["temporal"] == "han" and info["official"] is False


def test_fit_with_separate_features_and_labels(small_dataset, tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    for csv in small_dataset.glob("*.csv"):
        shutil.copy(csv, labels)
    proc = run(TRAIN, "fit", "--labels", labels, "--features", small_dataset / "feats", "--epochs", "1",
               "--temporal", "gru", "--pooling", "max", "--loss", "wsl", "--noisy-labels", "bootstrap",
               "--out", tmp_path / "run", "--json")
    assert "type_at_av" in json.loads(proc.stdout)["segment"]


def test_eval_predictions_reproduces_golden(llp_dir):
    preds = shared_file("reference", "eval_golden_predictions.npz")
    expected = json.loads(shared_file("reference", "eval_golden_expected.json").read_text())
    got = json.loads(run(TRAIN, "eval", "--predictions", preds, "--labels", llp_dir, "--json").stdout)
    for level in expected:
        for key, value in expected[level].items():
            assert got[level][key] == pytest.approx(value, abs=1e-9)


def test_export_converts_the_official_checkpoint(tmp_path):
    golden = torch.load(shared_file("reference", "han_golden.pt"), weights_only=True)
    torch.save(golden["state_dict"], tmp_path / "MMIL_Net.pt")
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:  # the export, and the original read meanwhile
        original = pool.submit(run, TRAIN, "info", tmp_path / "MMIL_Net.pt")
        run(EXPORT, "checkpoint", tmp_path / "MMIL_Net.pt", tmp_path / "han.pt")
        info = json.loads(run(TRAIN, "info", tmp_path / "han.pt").stdout)
        assert json.loads(original.result().stdout)["official"] is True
    assert info["official"] is False and info["config"]["pooling"] == "attentive"


def test_bad_inputs_give_one_line_and_exit_2(small_dataset, tmp_path):
    """Each bad input its own copy of the data; the commands run side by side (each is
    mostly the interpreter and torch starting)."""
    from concurrent.futures import ThreadPoolExecutor

    def broken(name: str) -> Path:
        copy = tmp_path / name
        shutil.copytree(small_dataset, copy)
        return copy

    unknown_class, empty_split, missing, wrong_shape = (broken(n) for n in ("unknown", "empty", "missing", "shape"))
    lines = (unknown_class / "AVVP_val_pd.csv").read_text().splitlines()
    lines[3] = lines[3].split("\t")[0] + "\tSpeech,Kazoo"
    (unknown_class / "AVVP_val_pd.csv").write_text("\n".join(lines) + "\n")
    (empty_split / "AVVP_val_pd.csv").write_text("filename\tevent_labels\n")
    victim = (small_dataset / "AVVP_train.csv").read_text().splitlines()[5].split("\t")[0][:11]
    (missing / "feats" / "vggish" / f"{victim}.npy").unlink()
    np.save(wrong_shape / "feats" / "vggish" / f"{victim}.npy", np.zeros((10, 64), np.float32))
    junk = tmp_path / "junk.pt"
    junk.write_text("nope")
    bad_pred = tmp_path / "pred.npz"
    np.savez(bad_pred, filenames=np.array(["a"]), pred=np.zeros((1, 2, 25, 10)))
    cases = [
        (("fit", "--data", tmp_path / "nowhere"), ["labels folder not found"]),
        (("fit", "--epochs", "1"), ["--data"]),
        (("fit", "--data", small_dataset, "--pooling", "median"), ["pooling"]),
        (("fit", "--data", unknown_class, "--epochs", "1", "--out", tmp_path / "r1"), ["AVVP_val_pd.csv:4: unknown class 'Kazoo'"]),
        (("fit", "--data", empty_split, "--epochs", "1", "--out", tmp_path / "r2"), ["AVVP_val_pd.csv: the split has no videos"]),
        (("fit", "--data", missing, "--epochs", "1", "--out", tmp_path / "r3"), [f"vggish/{victim}.npy"]),
        (("fit", "--data", wrong_shape, "--epochs", "1", "--out", tmp_path / "r4"),
         [f"vggish/{victim}.npy: shape (10, 64), expected (10, 128)"]),
        (("eval", "--checkpoint", junk, "--data", small_dataset), ["junk.pt"]),
        (("eval", "--data", small_dataset), ["exactly one of"]),
        (("eval", "--predictions", bad_pred, "--data", small_dataset), ["no predictions for 12 videos"]),
        (("info", tmp_path / "missing.pt"), ["checkpoint not found"]),
        (("fit", "--data", small_dataset, "--device", "tpu"), ["unknown device 'tpu'"]),
    ]
    with ThreadPoolExecutor(3) as pool:
        procs = list(pool.map(lambda case: run(TRAIN, *case[0], ok=False), cases))
    for (args, fragments), proc in zip(cases, procs):
        assert_one_line_error(proc, *fragments)


@pytest.mark.parametrize("cmd, args, fragment", [
    (STREAM, ["--bogus"], "--bogus"),  # unknown option
    (STREAM, ["clip.mp4", "--window", "ten"], "--window"),  # bad value
    (TRAIN, ["fit", "--epochs", "abc"], "--epochs"),
    (TRAIN, ["info"], "CHECKPOINT"),  # missing argument
    (TRAIN, ["nonsense"], "nonsense"),  # unknown command
    (EXPORT, ["checkpoint"], "SOURCE"),
    (EXPORT, ["onnx", "out", "--extractors", "maybe"], "maybe"),
])
def test_usage_errors_are_typers_usage_message_and_exit_2(cmd, args, fragment):
    """Whichever typer is installed (older ones raise click's exceptions, newer ones their
    own vendored copies), a usage error is typer's usage message and exit 2."""
    proc = run(cmd, *args, ok=False)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "Usage:" in proc.stderr, proc.stderr
    assert fragment.lower() in proc.stderr.lower(), proc.stderr
