"""The backend interface and the registry that picks one by name or by speed."""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence

import numpy as np

from ..errors import AvvpError

# Fastest first, for --backend auto (see benchmarks/head_latency.py for the measurements).
BACKENDS = ("tensorrt", "cuda-graph", "onnxruntime", "torch")
EXTRAS = {"tensorrt": "pip install 'avvp-stream[tensorrt]' (NVIDIA GPUs)", "onnxruntime": "pip install 'avvp-stream[onnx]'"}


class Backend(ABC):
    """Runs the HAN head: inputs (B, T, 128), (B, T, 2048) frame-averaged, (B, T, 512)
    float32; returns the video-level probabilities (B, C) and the snippet probabilities
    (B, T, 2, C) as float32 numpy arrays. ``keys`` (B lists of T hashables) name each
    window's snippets, so that an engine may keep per-snippet work across calls (the row
    cache); without them it recomputes, or recognises snippets by their features."""

    name: str = "?"

    @abstractmethod
    def head(self, audio: np.ndarray, video_2d: np.ndarray, video_3d: np.ndarray,
             keys: Sequence[Sequence[Hashable]] | None = None) -> tuple[np.ndarray, np.ndarray]:
        ...


def unavailable_reason(name: str, device_type: str) -> str | None:
    """Why ``name`` cannot run here (None if it can)."""
    if name == "torch":
        return None
    if name == "onnxruntime":
        if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
            return f"onnxruntime is not installed: {EXTRAS['onnxruntime']}"
        return None
    if name == "cuda-graph":
        return None if device_type == "cuda" else "cuda-graph needs a CUDA GPU (use --device cuda)"
    if name == "tensorrt":
        if device_type != "cuda":
            return "tensorrt needs a CUDA GPU (use --device cuda)"
        for module in ("tensorrt", "pycuda"):
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed: {EXTRAS['tensorrt']}"
        return None
    return f"unknown backend {name!r}; choose one of auto, {', '.join(BACKENDS)}"


def pick_auto(device_type: str) -> str:
    """The fastest backend that can run here. On a CPU that is ONNX Runtime (the folded
    head with its row cache: 4-7x faster than eager, benchmarks/head_latency.py), on a GPU
    TensorRT, then CUDA graphs."""
    for name in BACKENDS:
        if unavailable_reason(name, device_type) is None:
            return name
    return "torch"


def create(name: str, model, device) -> Backend:
    """``model``: a HAN (torch backends, and the source of the ONNX export for the others)."""
    import torch

    device = torch.device(device)
    if name == "auto":
        name = pick_auto(device.type)
    reason = unavailable_reason(name, device.type)
    if reason:
        raise AvvpError(f"--backend {name}: {reason}")
    if name == "torch":
        from .torch_backend import TorchBackend

        return TorchBackend(model, device)
    if name == "cuda-graph":
        from .cuda_graph import CudaGraphBackend

        return CudaGraphBackend(model, device)
    from avvp_stream.head.folded import can_fold
    from avvp_stream.backends.onnx_cache import cached_head, cached_streaming_head  # once per checkpoint

    if name == "onnxruntime":
        from .onnxruntime_backend import OnnxRuntimeBackend

        if can_fold(model):
            return OnnxRuntimeBackend(cached_streaming_head(model), streaming=True)
        return OnnxRuntimeBackend(cached_head(model))
    from .tensorrt_backend import TensorRTBackend

    return TensorRTBackend(cached_head(model))
