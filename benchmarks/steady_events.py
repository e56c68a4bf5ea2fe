"""Steady labels (hysteresis and minimum durations) on the generated test split: what they
do to the official event-level F1 and to how many events a minute come out, against the
ground truth's.

Two ways to get each test video's gated snippet probabilities:
- offline: HAN over the whole 10 s video (how files are parsed; the official protocol);
- live: the online parser with lookahead 0 (how live input is parsed: each snippet final
  as soon as it arrives, from windows that end with it, partial at the start).
Each rule turns them into labels per snippet; the official evaluator scores them. Events
per minute count every run of a class in audio, visual and audio-visual.

    python benchmarks/steady_events.py --data data/synth --checkpoint runs/synth/best.pt [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from avvp_stream.binarize import Binarize
from avvp_stream.checkpoint import load_model
from avvp_stream.parser import CommitPolicy, OnlineParser
from avvp_stream.train.dataset import DatasetLayout
from avvp_stream.train.evaluate import evaluate_predictions, runs
from avvp_stream.train.fit import TensorSplit, predict
from avvp_stream.train.llp import dense_matrix

RULES = [Binarize(0.5)] + [Binarize(0.5, off, on, gap) for off in (0.5, 0.4, 0.3, 0.2)
                            for on in (1, 2, 3) for gap in (1, 2, 3) if (off, on, gap) != (0.5, 1, 1)]


def offline_prob(model, split) -> np.ndarray:
    """(N, T, 2, C) gated snippet probabilities, HAN over each whole video."""
    video, snippet = predict(model, TensorSplit(split, "cpu"))
    return snippet * (video >= 0.5)[:, None, None, :]


def live_prob(model, split, window: int = 10) -> np.ndarray:
    """(N, T, 2, C): the online parser's final probabilities at lookahead 0."""
    out = []
    names = list(split.arrays)
    for i in range(len(split)):
        parser = OnlineParser(model, CommitPolicy(window, 0))
        probs = []
        for t in range(split.arrays[names[0]].shape[1]):
            parser.insert_snippet(*(split.arrays[n][i, t] for n in names))
            probs.extend(r.prob for r in parser.process() if r.final)
        out.append(np.stack(probs))
    return np.stack(out)


def events_per_minute(labels: np.ndarray) -> float:
    """labels (N, 2, C, T) binary: runs in audio, visual and audio-visual per minute."""
    n, _, c, t = labels.shape
    av = labels[:, 0] * labels[:, 1]
    count = sum(len(runs(seq)) for video in range(n) for seq in (*labels[video, 0], *labels[video, 1], *av[video]))
    return count / (n * t / 60.0)


def score(prob: np.ndarray, rule: Binarize, split, dense) -> dict:
    labels = np.stack([rule(p) for p in prob]).transpose(0, 2, 3, 1).astype(np.uint8)  # (N, 2, C, T)
    metrics = evaluate_predictions(split.filenames, labels, *dense)
    return {"event": metrics["event"], "segment": metrics["segment"], "events_per_minute": events_per_minute(labels)}


def ground_truth_rate(split, dense, t: int) -> float:
    gt = np.stack([np.stack([dense_matrix(dense[m].get(name), t) for m in (0, 1)]) for name in split.filenames])
    return events_per_minute(gt)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data/synth"))
    ap.add_argument("--checkpoint", type=Path, default=Path("runs/synth/best.pt"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    for path in (args.data, args.checkpoint):
        if not path.exists():
            sys.exit(f"{path} not found: run the README's first command (avvp-train synth / fit) first")

    tmp = tempfile.TemporaryDirectory(prefix="avvp-steady-")
    layout = DatasetLayout.resolve(args.data, None, None, Path(tmp.name) / "cache")
    split, dense = layout.packed("test"), layout.dense()
    model = load_model(args.checkpoint).eval()
    t0 = time.perf_counter()
    probs = {"offline": offline_prob(model, split), "live": live_prob(model, split)}
    t = probs["offline"].shape[1]
    truth = ground_truth_rate(split, dense, t)
    rows = []
    for setting, prob in probs.items():
        for rule in RULES:
            rows.append({"setting": setting, "rule": str(rule), "onset": rule.onset, "offset": rule.low,
                         "min_event": rule.min_on, "min_gap": rule.min_off, **score(prob, rule, split, dense)})
    print(f"test split: {len(split)} videos of {t} s; ground truth {truth:.1f} events/min; "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print("| parse | offset | min event | min gap | event F1 audio | visual | audio-visual | Type@AV | Event@AV "
          "| segment Type@AV | events/min (truth " + f"{truth:.1f}) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        e = r["event"]
        print(f"| {r['setting']} | {r['offset']:g} | {r['min_event']} s | {r['min_gap']} s | {e['audio']:.1f} | "
              f"{e['visual']:.1f} | {e['audio_visual']:.1f} | {e['type_at_av']:.1f} | {e['event_at_av']:.1f} | "
              f"{r['segment']['type_at_av']:.1f} | {r['events_per_minute']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"videos": len(split), "truth_events_per_minute": truth, "rows": rows},
                                        indent=1) + "\n")


if __name__ == "__main__":
    main()
