"""Checkpoints: ours (config + weights + metadata) and the official ``MMIL_Net.pt``.

Everything is read with ``torch.load(weights_only=True)``: a checkpoint is data, never
code, so a downloaded file cannot run anything on load.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from .classes import CLASSES
from .errors import AvvpError
from .model import HAN, HANConfig
from .paths import atomic_write

log = logging.getLogger(__name__)

FORMAT = "avvp-stream/han-checkpoint"
FORMAT_VERSION = 1

# Modules the official MMIL_Net constructs but whose forward never calls.
OFFICIAL_UNUSED_PREFIXES = ("audio_encoder.", "visual_encoder.", "cmt_encoder.")


def save_checkpoint(path: str | os.PathLike, model: HAN, **metadata) -> Path:
    """Write atomically (temp file + rename), so a crash never leaves half a checkpoint."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "classes": list(CLASSES),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": metadata,
    }
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def is_official_state_dict(obj) -> bool:
    return isinstance(obj, dict) and "fc_prob.weight" in obj and "hat_encoder.layers.0.self_attn.in_proj_weight" in obj


def from_official_state_dict(state_dict: dict) -> tuple[dict, list[str]]:
    """Keep the keys HAN uses; return them and the ignored ones (unused official modules)."""
    kept, ignored = {}, []
    for key, value in state_dict.items():
        if key.startswith(OFFICIAL_UNUSED_PREFIXES):
            ignored.append(key)
        else:
            kept[key] = value
    return kept, ignored


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load either format into ``{"config", "state_dict", "metadata", "official"}``."""
    path = Path(path)
    if not path.is_file():
        raise AvvpError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for non-checkpoint bytes
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AvvpError(f"{path}: not a readable checkpoint ({first[:200]})") from None
    if is_official_state_dict(obj):
        state_dict, ignored = from_official_state_dict(obj)
        log.info(
            "%s: official MMIL_Net checkpoint; ignoring %d keys of modules its forward never "
            "uses (audio_encoder, visual_encoder, cmt_encoder)", path, len(ignored),
        )
        return {"config": HANConfig(), "state_dict": state_dict, "metadata": {}, "official": True}
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        if obj.get("format_version", 0) > FORMAT_VERSION:
            raise AvvpError(f"{path}: checkpoint format version {obj['format_version']} is newer than this avvp-stream")
        try:
            config = HANConfig.from_dict(obj["config"])
        except (ValueError, TypeError) as exc:
            raise AvvpError(f"{path}: bad model config in checkpoint: {exc}") from None
        if list(obj.get("classes", CLASSES)) != list(CLASSES):
            raise AvvpError(f"{path}: checkpoint was trained on other classes than LLP's 25")
        return {"config": config, "state_dict": obj["state_dict"], "metadata": obj.get("metadata", {}), "official": False}
    raise AvvpError(f"{path}: not an avvp-stream or official MMIL_Net checkpoint")


def run_model(checkpoint: str | None, random_weights: bool, device: str | torch.device = "cpu") -> HAN:
    """The HAN a command runs: ``--random-weights`` (seeded, so every command and test
    builds the same one), else ``--checkpoint`` or the official checkpoint."""
    if random_weights:
        torch.manual_seed(0)
        return HAN().eval().to(device)
    return load_model(checkpoint or "official", device)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> HAN:
    """HAN in eval mode from our checkpoint or from the official ``MMIL_Net.pt``;
    ``"official"`` resolves the official checkpoint (cache, else verified download)."""
    if str(path) == "official":
        from .weights import HAN_OFFICIAL, resolve

        path = resolve(HAN_OFFICIAL)
    ck = read_checkpoint(path)
    model = HAN(ck["config"])
    expected = model.state_dict()
    missing = [k for k in expected if k not in ck["state_dict"]]
    unexpected = [k for k in ck["state_dict"] if k not in expected]
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise AvvpError(f"{path}: weights do not fit the model config ({what})")
    for key, tensor in ck["state_dict"].items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise AvvpError(
                f"{path}: wrong shape for {key}: {tuple(tensor.shape)}, model expects {tuple(expected[key].shape)}"
            )
    model.load_state_dict(ck["state_dict"])
    return model.to(device).eval()
