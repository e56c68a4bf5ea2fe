"""The two interfaces of the inference engines.

``Backend`` runs the HAN head (what the parser calls). ``Engine`` is one way of running
things (torch, ONNX Runtime, CUDA graphs, TensorRT): it says whether it can run on a
device and why not, builds the head and the feature networks, and verifies itself
against the torch reference. Each engine is one module; ``registry`` lists them.
"""

from __future__ import annotations

import copy
import time
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np


class Backend(ABC):
    """Runs the HAN head: one (B, T, D) float32 input per feature of the model (the
    official three: (B, T, 128), (B, T, 2048) frame-averaged, (B, T, 512)); returns the video-level probabilities (B, C) and the snippet probabilities
    (B, T, 2, C) as float32 numpy arrays. ``keys`` (B lists of T hashables) name each
    window's snippets, so that an engine may keep per-snippet work across calls (the row
    cache); without them it recomputes, or recognises snippets by their features."""

    name: str = "?"

    @abstractmethod
    def head(self, *inputs: np.ndarray,
             keys: Sequence[Sequence[Hashable]] | None = None) -> tuple[np.ndarray, np.ndarray]:
        ...


@dataclass(frozen=True)
class Workload:
    """What a run will send: ``batch`` snippets per extractor call and windows per head
    call (a file's ``--batch``; live input 1), windows of ``window`` snippets. Engines that
    specialise per shape prepare for it before the first snippet: CUDA graphs are captured
    at warm-up, TensorRT's optimisation shapes are these."""

    batch: int = 1
    window: int = 10

    def head_shapes(self) -> list[tuple[int, int]]:
        """(windows, snippets) per head call: one window of each length as a stream starts,
        then ``batch`` full windows (other shapes, such as a file's last batch, are rarer)."""
        full = [(self.batch, self.window)] if self.batch > 1 else []
        return [*((1, t) for t in range(1, self.window + 1)), *full]


@dataclass
class Verification:
    """How an engine's head compared with the torch reference on fixed random inputs."""

    engine: str
    max_abs_diff: float
    engine_seconds: float
    torch_seconds: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return bool(self.max_abs_diff <= self.tolerance)

    @property
    def speedup(self) -> float:
        return self.torch_seconds / max(self.engine_seconds, 1e-12)


class Engine(ABC):
    """One way of running the networks. Subclasses set ``name`` (and ``extra``, the pip
    extra that brings what it needs) and implement ``head``; the rest has defaults."""

    name: str = "?"
    extra: str | None = None  # the pip extra that installs what it needs
    tolerance: float = 1e-4  # largest |engine - torch| on the head's probabilities
    precision: str = "fp32"
    networks_note: str | None = None  # said on stderr when the feature networks run here too

    def unavailable(self, device_type: str) -> str | None:
        """Why this engine cannot run on ``device_type`` here (None if it can)."""
        return None

    def missing(self, *modules: str) -> str | None:
        """The first of ``modules`` that is not installed, said with the extra to install."""
        import importlib.util

        for module in modules:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed: pip install 'avvp-stream[{self.extra}]'"
        return None

    @abstractmethod
    def head(self, model, device, workload: Workload | None = None) -> Backend:
        """The HAN head of ``model`` (a HAN) on this engine, prepared for ``workload``."""

    def feature_networks(self, extractor, workload: Workload | None = None):
        """The extractor's networks on this engine: an object with ``run(name, tensor) ->
        tensor`` (names as ``extractor.networks``), or None to keep the extractor's own
        eager networks."""
        return None

    def verify(self, model, device, lengths: Sequence[int] = range(1, 11), batches: Sequence[int] = (1, 8),
               seed: int = 0) -> Verification:
        """The head over windows of ``lengths`` snippets at each batch size, against the
        torch eager reference on the same fixed random inputs; both sides timed."""
        from ..head.graph import head_inputs
        from .torch_backend import TorchBackend

        mine = self.head(model, device)
        ref = TorchBackend(copy.deepcopy(model), device)
        worst, spent = 0.0, {"engine": 0.0, "torch": 0.0}
        for b in batches:
            for t in lengths:
                inputs = [x.numpy() for x in head_inputs(b, t, seed=seed + 100 * b + t, features=model.config.features)]
                outs = {}
                for side, backend in (("engine", mine), ("torch", ref)):
                    t0 = time.perf_counter()
                    outs[side] = backend.head(*inputs)
                    spent[side] += time.perf_counter() - t0
                worst = max(worst, *(float(np.abs(a.astype(np.float64) - r).max())
                                     for a, r in zip(outs["engine"], outs["torch"])))
        return Verification(self.name, worst, spent["engine"], spent["torch"], self.tolerance)


class NumpyNetworks:
    """Feature networks of an engine that takes and gives numpy arrays (ONNX Runtime,
    TensorRT), seen by the extractor as tensors in, tensors out."""

    def __init__(self, inner):
        self.inner = inner

    def run(self, name: str, x):
        import torch

        return torch.from_numpy(self.inner.run(name, x.float().cpu().numpy()))
