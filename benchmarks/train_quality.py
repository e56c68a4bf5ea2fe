"""The paper's Table 2 ablations, trained and tested on a generated LLP-format dataset.

Every row uses the paper's recipe (Adam 3e-4, batch 16, 40 epochs, lr x0.1 every 10,
best validation Type@AV) and changes one switch: loss, MMIL pooling, temporal model,
noisy-label handling; plus modality dropout, the paper's suggested alternative to the
guided loss. Segment-level test metrics are printed as a markdown table next to the
paper's LLP numbers.

    python benchmarks/train_quality.py [--train 600] [--epochs 40] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from avvp_stream.checkpoint import load_model
from avvp_stream.model import HANConfig
from avvp_stream.train.dataset import DatasetLayout
from avvp_stream.train.fit import TensorSplit, TrainConfig, evaluate_model, fit
from avvp_stream.train.synth import SynthSpec, generate

# (loss, pooling, temporal, noisy labels, modality dropout), paper segment-level
# (audio, visual, audio-visual, Type@AV, Event@AV) or None where the paper has no row.
ROWS = [
    (("wsl", "attentive", "none", "none", 0.0), (56.9, 16.4, 17.2, 30.2, 43.3)),
    (("guided", "attentive", "none", "none", 0.0), (42.3, 43.9, 34.5, 40.3, 42.0)),
    (("both", "attentive", "none", "none", 0.0), (45.1, 51.7, 35.0, 44.0, 48.9)),
    (("both", "max", "none", "none", 0.0), (31.6, 43.6, 22.5, 32.6, 39.1)),
    (("both", "mean", "none", "none", 0.0), (40.2, 43.2, 35.0, 39.5, 39.7)),
    (("both", "attentive", "gru", "none", 0.0), (52.0, 49.4, 39.0, 46.8, 51.0)),
    (("both", "attentive", "transformer", "none", 0.0), (53.4, 53.8, 41.8, 49.7, 53.3)),
    (("both", "attentive", "han", "none", 0.0), (58.4, 52.8, 48.4, 53.2, 54.5)),
    (("wsl", "attentive", "han", "none", 0.0), (39.6, 40.5, 20.1, 33.4, 44.9)),
    (("guided", "attentive", "han", "none", 0.0), (57.5, 52.5, 47.4, 52.5, 53.8)),
    (("both", "max", "han", "none", 0.0), (55.7, 52.0, 48.6, 52.1, 51.8)),
    (("both", "mean", "han", "none", 0.0), (56.0, 51.9, 46.3, 51.4, 52.9)),
    (("both", "attentive", "han", "bootstrap", 0.0), (59.0, 52.6, 47.8, 53.1, 55.2)),
    (("both", "attentive", "han", "smoothing", 0.0), (60.1, 52.9, 48.9, 54.0, 55.4)),
    (("wsl", "attentive", "han", "none", 0.5), None),
]
LOSS_NAMES = {"wsl": "L_wsl", "guided": "L_g", "both": "L_wsl + L_g"}
KEYS = ("audio", "visual", "audio_visual", "type_at_av", "event_at_av")


def run_row(switches, layout, splits, dense, epochs, seed, out_dir):
    loss, pooling, temporal, noisy, md = switches
    model_cfg = HANConfig(pooling=pooling, temporal=temporal, modality_dropout=md)
    train_cfg = TrainConfig(epochs=epochs, loss=loss, noisy_labels=noisy, seed=seed)
    t0 = time.perf_counter()
    result = fit(splits["train"], splits["val"], dense, out_dir, model_cfg, train_cfg, log=lambda m: None)
    model = load_model(result.best_checkpoint)
    test = evaluate_model(model, TensorSplit(splits["test"], "cpu"), dense)
    return {"switches": switches, "best_epoch": result.best_epoch, "seconds": time.perf_counter() - t0, "test": test}


def markdown(rows) -> str:
    lines = [
        "| Loss | MMIL pooling | Temporal net | Noisy label | Mod. dropout | Audio | Visual | Audio-Visual | Type@AV | Event@AV | paper (A / V / AV / Type / Event) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r, paper in rows:
        loss, pooling, temporal, noisy, md = r["switches"]
        seg = r["test"]["segment"]
        ours = " | ".join(f"{seg[k]:.1f}" for k in KEYS)
        ref = " / ".join(f"{x:.1f}" for x in paper) if paper else "no row"
        lines.append(f"| {LOSS_NAMES[loss]} | {pooling} | {temporal if temporal != 'none' else 'x'} | "
                     f"{noisy if noisy != 'none' else 'x'} | {md if md else 'x'} | {ours} | {ref} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="existing dataset (default: generate one)")
    ap.add_argument("--train", type=int, default=600)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", type=str, default="", help="comma-separated row numbers (1-based) to run")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="avvp-train-quality-")
    data_dir = args.data or generate(Path(tmp.name) / "data", SynthSpec(train=args.train, val=100, test=200, seed=args.seed))
    layout = DatasetLayout.resolve(data_dir, None, None, Path(tmp.name) / "cache")
    splits = {s: layout.packed(s) for s in ("train", "val", "test")}
    dense = layout.dense()
    wanted = {int(x) for x in args.rows.split(",") if x} or set(range(1, len(ROWS) + 1))
    done = []
    for i, (switches, paper) in enumerate(ROWS, start=1):
        if i not in wanted:
            continue
        r = run_row(switches, layout, splits, dense, args.epochs, args.seed, Path(tmp.name) / f"row{i}")
        seg = r["test"]["segment"]
        print(f"row {i:2d} {switches}: " + " ".join(f"{k}={seg[k]:.1f}" for k in KEYS)
              + f" (best epoch {r['best_epoch']}, {r['seconds']:.0f}s)", file=sys.stderr, flush=True)
        done.append((r, paper))
        if args.json:
            args.json.write_text(json.dumps({"train_videos": len(splits["train"]), "epochs": args.epochs,
                                             "rows": [{**r, "paper": p} for r, p in done]}, indent=1) + "\n")
    print(markdown(done))


if __name__ == "__main__":
    main()
