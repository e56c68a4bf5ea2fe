"""Turn a user's ``--device`` string into a torch device, or one clear error."""

from __future__ import annotations

from .errors import AvvpError


def resolve_device(name: str = "auto"):
    """``auto`` is the first CUDA GPU when there is one, else the CPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise AvvpError(f"unknown device {name!r}: use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise AvvpError(f"device {name!r} requested but no CUDA GPU is available (use --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise AvvpError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return device
