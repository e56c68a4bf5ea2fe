"""The paper's evaluation protocol, computed exactly as the official evaluator.

Per video: binary (C, T) predictions for audio and visual (audio-visual = audio AND
visual) against the dense ground truth. Segment-level F1 counts snippets; event-level F1
matches runs of positive snippets at IoU >= 0.5. Within a video, F1 is averaged over the
classes that occur in the prediction or the ground truth (a video with none scores 1.0);
the per-video scores are then averaged. Type@AV is the mean of the audio, visual and
audio-visual scores; Event@AV pools audio and visual counts per class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from avvp_stream.classes import AUDIO, VISUAL

from .llp import DenseEvent, dense_matrix

METRIC_NAMES = ("audio", "visual", "audio_visual", "type_at_av", "event_at_av")
THRESHOLD = 0.5


def _mean_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    """Average of per-class F1 over classes present in prediction or ground truth; 1.0 if none."""
    scores = [2 * tp[c] / (2 * tp[c] + (fn + fp)[c]) for c in range(len(tp)) if (tp + fp)[c] != 0 or (tp + fn)[c] != 0]
    return sum(scores) / len(scores) if scores else 1.0


def _segment_counts(pred: np.ndarray, gt: np.ndarray):
    return (np.sum(pred * gt, axis=1), np.sum(pred * (1 - gt), axis=1), np.sum((1 - pred) * gt, axis=1))


def runs(seq: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of ones as half-open [start, end) intervals."""
    out, start = [], None
    for i, x in enumerate(seq):
        if x == 1 and start is None:
            start = i
        elif x != 1 and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(seq)))
    return out


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / ((a[1] - a[0]) + (b[1] - b[0]) - inter)


def _event_counts(pred: np.ndarray, gt: np.ndarray):
    """Per class: a predicted event is a TP if it overlaps some GT event at IoU >= 0.5, else
    a FP; a GT event overlapped by no predicted event is a FN (the official matching, which
    lets one GT event confirm several predictions)."""
    n = pred.shape[0]
    tp, fp, fn = np.zeros(n), np.zeros(n), np.zeros(n)
    for c in range(n):
        p_events, g_events = runs(pred[c]), runs(gt[c])
        for p in p_events:
            if any(_iou(p, g) >= 0.5 for g in g_events):
                tp[c] += 1
            else:
                fp[c] += 1
        for g in g_events:
            if not any(_iou(g, p) >= 0.5 for p in p_events):
                fn[c] += 1
    return tp, fp, fn


def _video_scores(counts) -> tuple[float, float, float, float]:
    """(audio, visual, audio-visual, audio+visual pooled) F1 of one video."""
    (tp_a, fp_a, fn_a), (tp_v, fp_v, fn_v), (tp_av, fp_av, fn_av) = counts
    return (
        _mean_f1(tp_a, fp_a, fn_a),
        _mean_f1(tp_v, fp_v, fn_v),
        _mean_f1(tp_av, fp_av, fn_av),
        _mean_f1(tp_a + tp_v, fp_a + fp_v, fn_a + fn_v),
    )


def video_metrics(pred_a: np.ndarray, pred_v: np.ndarray, gt_a: np.ndarray, gt_v: np.ndarray):
    """Segment- and event-level (audio, visual, audio-visual, pooled) F1 of one video; all
    arrays (C, T) binary."""
    pred_av, gt_av = pred_a * pred_v, gt_a * gt_v
    pairs = ((pred_a, gt_a), (pred_v, gt_v), (pred_av, gt_av))
    segment = _video_scores([_segment_counts(p, g) for p, g in pairs])
    event = _video_scores([_event_counts(p, g) for p, g in pairs])
    return segment, event


def evaluate_predictions(
    filenames: Sequence[str],
    pred: np.ndarray,
    dense_audio: dict[str, list[DenseEvent]],
    dense_visual: dict[str, list[DenseEvent]],
) -> dict[str, dict[str, float]]:
    """Score binary snippet predictions ``pred`` (N, 2, C, T) (index 0 audio, 1 visual).

    Returns ``{"segment": {...}, "event": {...}}`` with the keys of ``METRIC_NAMES``, in
    percent, as the official evaluator prints them.
    """
    pred = np.asarray(pred)
    if pred.ndim != 4 or pred.shape[0] != len(filenames) or pred.shape[1] != 2:
        raise ValueError(f"pred must be (N={len(filenames)}, 2, C, T), got {pred.shape}")
    t = pred.shape[3]
    seg, evt = [], []
    for i, name in enumerate(filenames):
        s, e = video_metrics(
            pred[i, AUDIO].astype(np.int64), pred[i, VISUAL].astype(np.int64),
            dense_matrix(dense_audio.get(name), t), dense_matrix(dense_visual.get(name), t),
        )
        seg.append(s)
        evt.append(e)
    return {"segment": _summarise(np.array(seg)), "event": _summarise(np.array(evt))}


def _summarise(scores: np.ndarray) -> dict[str, float]:
    a, v, av, pooled = (float(100 * np.mean(scores[:, j])) for j in range(4))
    return {"audio": a, "visual": v, "audio_visual": av, "type_at_av": (av + a + v) / 3.0, "event_at_av": pooled}


def binarize(video_prob: np.ndarray, snippet_prob: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Official decision rule: snippet probability >= threshold, gated by the video-level
    prediction >= threshold. (N, C) and (N, T, 2, C) -> (N, 2, C, T) uint8."""
    gate = (video_prob >= threshold)[:, None, None, :]
    positive = (snippet_prob >= threshold) & gate
    return positive.transpose(0, 2, 3, 1).astype(np.uint8)
