"""Seconds per training epoch: our trainer vs the official way, same data, seed and recipe.

The official way (AVVP-ECCV20 ``main_avvp.py``): a Dataset that ``np.load``s three .npy
files per video on every step, batches of 16 collated by a DataLoader with worker
processes and pinned memory as the official script sets them (``num_workers=12``, capped
at this machine's cores), plain Adam, and the official module (``official_han.MMIL_Net``:
``nn.MultiheadAttention``, ``fc_v`` on all 80 ResNet frames then average pooling, the HAN
layer called once per modality). Ours: the split packed once into memory-mapped arrays, held as tensors, a
batch is one gather; ResNet frames averaged before ``fc_v``; both modalities in one call.

Both train the same initial weights with the same recipe and are then evaluated on the
test split, so the metrics show how far apart the two are (dropout draws differ).

    python benchmarks/train_speed.py [--videos 600] [--epochs 10] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from avvp_stream.checkpoint import from_official_state_dict
from avvp_stream.model import HAN, HANConfig
from avvp_stream.train.dataset import DatasetLayout
from avvp_stream.train.feature_store import load_video
from avvp_stream.train.fit import TensorSplit, TrainConfig, evaluate_model, make_optimizer, train_step
from avvp_stream.train.losses import mmil_loss
from avvp_stream.train.synth import SynthSpec, generate

from official_han import official_like

OFFICIAL_WORKERS = 12  # main_avvp.py's DataLoader


class OfficialDataset(torch.utils.data.Dataset):
    def __init__(self, features_dir, weak):
        self.features_dir, self.filenames, self.labels = features_dir, weak.filenames, weak.labels

    def __len__(self):
        return len(self.filenames)

    def __getitem__(self, i):
        audio, res152, r2p1d = load_video(self.features_dir, self.filenames[i])
        return {"audio": audio, "video_s": res152, "video_st": r2p1d, "label": self.labels[i]}


def official_epoch(model, optimizer, loader, cfg: TrainConfig) -> float:
    """One epoch of the official loop (``main_avvp.py``'s ``train``) on the official module."""
    model.train()
    t0 = time.perf_counter()
    for sample in loader:
        optimizer.zero_grad()
        output, a_prob, v_prob, _ = model(sample["audio"], sample["video_s"], sample["video_st"])
        loss = mmil_loss(output, a_prob, v_prob, sample["label"], cfg.loss, cfg.noisy_labels)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - t0


def cpu_flags() -> str:
    """The CPU's vector extensions: CPU figures differ several-fold between machines."""
    try:
        flags = set(next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split())
    except (OSError, StopIteration):
        return "unknown"
    return ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in flags) or "no AVX2"


def our_epoch(model, optimizer, data: TensorSplit, cfg: TrainConfig, gen) -> float:
    model.train()
    t0 = time.perf_counter()
    for idx in torch.randperm(len(data), generator=gen).split(cfg.batch_size):
        train_step(model, optimizer, data.batch(idx), cfg)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="existing dataset (default: generate one)")
    ap.add_argument("--videos", type=int, default=600)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the results here too")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="avvp-train-speed-")
    data_dir = args.data or generate(Path(tmp.name) / "data", SynthSpec(train=args.videos, val=100, test=200, seed=args.seed))
    layout = DatasetLayout.resolve(data_dir, None, None, Path(tmp.name) / "cache")
    dense = layout.dense()
    cfg = TrainConfig(epochs=args.epochs, seed=args.seed)

    t0 = time.perf_counter()
    packed_train = layout.packed("train")
    pack_seconds = time.perf_counter() - t0
    test = TensorSplit(layout.packed("test"), "cpu")

    results = {"cpu": cpu_flags(), "threads": torch.get_num_threads(), "videos": len(packed_train), "epochs": args.epochs,
               "pack_seconds_once": pack_seconds}
    for name in ("official", "ours"):
        torch.manual_seed(args.seed)
        model = HAN(HANConfig())
        if name == "official":
            model = official_like(model)  # the same initial weights in the official module
        # The official code's optimizer is plain Adam; ours uses the fused kernel.
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr) if name == "official" else make_optimizer(model, cfg)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, cfg.lr_step, cfg.lr_gamma)
        gen = torch.Generator().manual_seed(args.seed)
        if name == "official":
            workers = min(OFFICIAL_WORKERS, os.cpu_count() or 1)
            results["official_loader"] = {"num_workers": workers, "pin_memory": True}
            loader = torch.utils.data.DataLoader(OfficialDataset(layout.features_dir, layout.weak("train")),
                                                 batch_size=cfg.batch_size, shuffle=True, generator=gen,
                                                 num_workers=workers, pin_memory=True,
                                                 persistent_workers=False)
        else:
            t0 = time.perf_counter()
            data = TensorSplit(packed_train, "cpu")
            load_seconds = time.perf_counter() - t0
        times = []
        for epoch in range(cfg.epochs):
            times.append(official_epoch(model, optimizer, loader, cfg) if name == "official"
                         else our_epoch(model, optimizer, data, cfg, gen))
            scheduler.step()
            print(f"{name:8s} epoch {epoch + 1}: {times[-1]:.2f} s", file=sys.stderr, flush=True)
        if name == "official":  # the official weights into HAN, which also reads pre-averaged frames
            trained, _ = from_official_state_dict(model.state_dict())
            model = HAN(HANConfig())
            model.load_state_dict(trained)
        metrics = evaluate_model(model, test, dense)
        results[name] = {"epoch_seconds_median": float(np.median(times)), "epoch_seconds": times,
                         "test_segment": metrics["segment"], "test_event": metrics["event"]}
        if name == "ours":
            results[name]["load_seconds_once"] = load_seconds
    o, u = results["official"], results["ours"]
    results["speedup"] = o["epoch_seconds_median"] / u["epoch_seconds_median"]
    results["type_at_av_difference"] = u["test_segment"]["type_at_av"] - o["test_segment"]["type_at_av"]
    print(f"\nepoch (median of {args.epochs}, {len(packed_train)} videos, {results['threads']} threads): "
          f"official (MMIL_Net, DataLoader {results['official_loader']['num_workers']} workers, pinned) "
          f"{o['epoch_seconds_median']:.2f} s, ours {u['epoch_seconds_median']:.2f} s -> "
          f"{results['speedup']:.1f}x faster (packing once: {pack_seconds:.1f} s)")
    for key in ("audio", "visual", "audio_visual", "type_at_av", "event_at_av"):
        print(f"  test segment {key:13s} official {o['test_segment'][key]:5.1f}  ours {u['test_segment'][key]:5.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
