"""Weak-label training with the paper's recipe, and prediction for evaluation.

Defaults are the official recipe: Adam 3e-4, batch 16, 40 epochs, lr x0.1 every 10
epochs, L_wsl + L_g with the visual guided target smoothed to 0.9 y + 0.05, and the
checkpoint with the best validation segment-level Type@AV kept.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from avvp_stream.checkpoint import save_checkpoint
from avvp_stream.model import HAN, HANConfig
from avvp_stream.progress import progress_bar

from .evaluate import binarize, evaluate_predictions
from .feature_store import PackedSplit
from .llp import DenseEvent
from .losses import LOSSES, NOISY_LABEL_METHODS, mmil_loss


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 40
    batch_size: int = 16
    lr: float = 3e-4
    lr_step: int = 10
    lr_gamma: float = 0.1
    loss: str = "both"
    noisy_labels: str = "smoothing"
    audio_confidence: float = 1.0
    visual_confidence: float = 0.9
    bootstrap_beta: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}")
        if self.noisy_labels not in NOISY_LABEL_METHODS:
            raise ValueError(f"noisy_labels must be one of {NOISY_LABEL_METHODS}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive")


@dataclass
class FitResult:
    best_checkpoint: Path
    best_epoch: int
    best_val: dict
    history: list[dict] = field(default_factory=list)


class TensorSplit:
    """A packed split held as torch tensors, so a batch is one gather, not file reads."""

    def __init__(self, split: PackedSplit, device: torch.device):
        def load(a):  # one copy out of the memory map into (writable) RAM
            return torch.from_numpy(np.array(a, dtype=np.float32)).to(device)

        self.filenames = split.filenames
        self.inputs = [load(x) for x in split.arrays.values()]  # HAN's, in order
        self.labels = load(split.labels)

    def __len__(self) -> int:
        return len(self.filenames)

    def batch(self, idx: torch.Tensor):
        return (*(x[idx] for x in self.inputs), self.labels[idx])


@torch.no_grad()
def predict(model: HAN, data: TensorSplit, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Video-level (N, C) and snippet (N, T, 2, C) probabilities in eval mode."""
    was_training = model.training
    model.eval()
    videos, snippets = [], []
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)), device=data.labels.device)
        *inputs, _ = data.batch(idx)
        video_prob, _, _, snippet_prob = model(*inputs)
        videos.append(video_prob.float().cpu().numpy())
        snippets.append(snippet_prob.float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(videos), np.concatenate(snippets)


def evaluate_model(model: HAN, data: TensorSplit, dense: tuple[dict[str, list[DenseEvent]], dict[str, list[DenseEvent]]]) -> dict:
    video_prob, snippet_prob = predict(model, data)
    return evaluate_predictions(data.filenames, binarize(video_prob, snippet_prob), *dense)


def train_step(model: HAN, optimizer: torch.optim.Optimizer, batch, cfg: TrainConfig) -> float:
    *inputs, y = batch
    optimizer.zero_grad(set_to_none=True)
    video_prob, audio_prob, visual_prob, _ = model(*inputs)
    loss = mmil_loss(
        video_prob, audio_prob, visual_prob, y, cfg.loss, cfg.noisy_labels,
        **_target_options(cfg),
    )
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def make_optimizer(model: HAN, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam; the fused kernel (one pass over all parameters) where this torch has it."""
    try:
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=cfg.lr)


def _target_options(cfg: TrainConfig) -> dict:
    if cfg.noisy_labels == "smoothing":
        return {"audio_confidence": cfg.audio_confidence, "visual_confidence": cfg.visual_confidence}
    if cfg.noisy_labels == "bootstrap":
        return {"bootstrap_beta": cfg.bootstrap_beta}
    return {}


def fit(
    train: PackedSplit,
    val: PackedSplit,
    val_dense,
    out_dir: str | Path,
    model_config: HANConfig = HANConfig(),
    config: TrainConfig = TrainConfig(),
    device: str = "cpu",
    log=None,
) -> FitResult:
    """Train, validate every epoch, keep the best checkpoint (``best.pt``) in ``out_dir``."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model = HAN(model_config).to(dev)
    optimizer = make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)
    train_t, val_t = TensorSplit(train, dev), TensorSplit(val, dev)
    best_path = out_dir / "best.pt"
    best = {"type_at_av": -1.0}
    best_epoch = 0
    history = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(train_t), generator=gen)
        losses = []
        batches = order.split(config.batch_size)
        for idx in progress_bar(batches, desc=f"epoch {epoch}/{config.epochs}", total=len(batches)):
            losses.append(train_step(model, optimizer, train_t.batch(idx.to(dev)), config))
        scheduler.step()
        train_seconds = time.perf_counter() - t0
        metrics = evaluate_model(model, val_t, val_dense)
        seg = metrics["segment"]
        row = {"epoch": epoch, "loss": float(np.mean(losses)), "train_seconds": train_seconds, "val": metrics}
        history.append(row)
        improved = seg["type_at_av"] > best["type_at_av"]
        if improved:
            best, best_epoch = seg, epoch
            save_checkpoint(best_path, model, epoch=epoch, val=metrics, train_config=asdict(config))
        log(
            f"epoch {epoch:3d}  loss {row['loss']:.4f}  val seg A {seg['audio']:.1f} V {seg['visual']:.1f} "
            f"AV {seg['audio_visual']:.1f} Type@AV {seg['type_at_av']:.1f}  ({train_seconds:.1f}s)"
            + ("  *best" if improved else "")
        )
    (out_dir / "history.json").write_text(json.dumps(history, indent=1) + "\n")
    return FitResult(best_path, best_epoch, best, history)
