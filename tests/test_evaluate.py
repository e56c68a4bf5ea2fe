import json

import numpy as np
import pytest

from avvp_stream.train.evaluate import binarize, evaluate_predictions, runs, video_metrics
from avvp_stream.train.llp import Annotations, DenseEvent

from conftest import shared_file


def test_golden_predictions_reproduce_the_official_evaluator(llp_dir):
    ref = np.load(shared_file("reference", "eval_golden_predictions.npz"))
    expected = json.loads(shared_file("reference", "eval_golden_expected.json").read_text())
    ann = Annotations(llp_dir)
    filenames = [str(f) for f in ref["filenames"]]
    assert filenames == ann.split("test").filenames
    got = evaluate_predictions(filenames, ref["pred"], *ann.dense())
    for level in ("segment", "event"):
        assert set(got[level]) == set(expected[level])
        for key, value in expected[level].items():
            assert got[level][key] == pytest.approx(value, abs=1e-9), (level, key)


def test_runs_are_maximal_half_open_intervals():
    assert runs(np.array([1, 1, 0, 1, 0, 0, 1, 1, 1, 1])) == [(0, 2), (3, 4), (6, 10)]
    assert runs(np.zeros(10)) == []
    assert runs(np.ones(10)) == [(0, 10)]


def one_class(seq, c=3):
    m = np.zeros((25, 10), dtype=np.int64)
    m[c] = seq
    return m


def test_empty_video_counts_as_perfect():
    z = np.zeros((25, 10), dtype=np.int64)
    segment, event = video_metrics(z, z, z, z)
    assert segment == event == (1.0, 1.0, 1.0, 1.0)


def test_segment_and_event_f1_by_hand():
    gt = one_class([0, 0, 1, 1, 1, 1, 0, 0, 0, 0])
    pred = one_class([0, 0, 0, 1, 1, 1, 1, 0, 0, 0])
    z = np.zeros_like(gt)
    segment, event = video_metrics(pred, z, gt, z)
    # segments: TP 3, FP 1, FN 1 -> 6 / 8; event IoU 3/5 >= 0.5 -> TP 1
    assert segment[0] == pytest.approx(0.75)
    assert event[0] == 1.0
    assert segment[1] == 1.0 and segment[2] == 1.0  # nothing visual, nothing audio-visual
    # Event@AV pools audio and visual counts of the class
    assert segment[3] == pytest.approx(0.75)
    far = one_class([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    _, event = video_metrics(far, z, gt, z)  # IoU 1/9: one FP and one FN
    assert event[0] == 0.0


def test_audio_visual_is_audio_and_visual():
    a = one_class([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    v = one_class([0, 0, 1, 1, 1, 1, 0, 0, 0, 0])
    segment, _ = video_metrics(a, v, a, v)
    assert segment == (1.0, 1.0, 1.0, 1.0)
    wrong_v = one_class([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    segment, _ = video_metrics(a, wrong_v, a, v)
    assert segment[2] == 0.0  # predicted AV is empty, ground truth AV is 2 snippets


def test_binarize_applies_the_video_level_gate():
    video = np.array([[0.9, 0.2] + [0.0] * 23])
    snippets = np.zeros((1, 10, 2, 25))
    snippets[0, :, :, 0] = 0.7  # gated in
    snippets[0, :, :, 1] = 0.7  # gated out by the video-level prediction
    pred = binarize(video, snippets)
    assert pred.shape == (1, 2, 25, 10)
    assert pred[0, :, 0].all() and not pred[0, :, 1].any()


def test_evaluate_matches_dense_labels_by_full_filename():
    events = {"abcdefghijk_0_10": [DenseEvent(0, 10, 0)]}
    pred = np.zeros((2, 2, 25, 10), dtype=np.uint8)
    pred[:, 0, 0] = 1
    got = evaluate_predictions(["abcdefghijk_0_10", "abcdefghijk_0_100"], pred, events, {})
    # first video perfect, second has only false positives
    assert got["segment"]["audio"] == pytest.approx(50.0)
