"""The engines, fastest first, and the one place where ``auto`` is decided.

An entry is ``name -> "module:Class"`` (imported only when used, so that naming an engine
costs nothing) or an ``Engine`` instance. A new engine is one module plus one entry here,
or ``register`` at run time."""

from __future__ import annotations

import importlib

from ..errors import AvvpError
from .base import Backend, Engine

# Fastest first, for auto (benchmarks/head_latency.py): on a GPU TensorRT (fp16, then
# fp32; each only once verified), then CUDA graphs; on a CPU ONNX Runtime (the folded head with its row cache); torch runs anywhere.
ENGINES: dict[str, str | Engine] = {
    "tensorrt-fp16": "tensorrt_backend:TensorRTFp16Engine",
    "tensorrt": "tensorrt_backend:TensorRTEngine",
    "cuda-graph": "cuda_graph:CudaGraphEngine",
    "onnxruntime": "onnxruntime_backend:OnnxRuntimeEngine",
    "torch": "torch_backend:TorchEngine",
}
BACKENDS = tuple(ENGINES)  # the built-in names (the CLI's choices)


def register(engine: Engine, *, fastest: bool = False) -> None:
    """Add (or replace) an engine; ``fastest`` puts it first for ``auto``."""
    entries = {k: v for k, v in ENGINES.items() if k != engine.name}
    ENGINES.clear()  # in place: everyone holding the dict sees the change
    ENGINES.update({engine.name: engine, **entries} if fastest else {**entries, engine.name: engine})


def unregister(name: str) -> None:
    ENGINES.pop(name, None)


def get(name: str) -> Engine:
    entry = ENGINES.get(name)
    if entry is None:
        raise AvvpError(f"unknown backend {name!r}; choose one of auto, {', '.join(ENGINES)}")
    if isinstance(entry, str):
        module, cls = entry.split(":")
        entry = getattr(importlib.import_module(f".{module}", __package__), cls)()
        ENGINES[name] = entry
    return entry


def unavailable_reason(name: str, device_type: str) -> str | None:
    """Why ``name`` cannot run here (None if it can)."""
    try:
        return get(name).unavailable(device_type)
    except AvvpError as exc:
        return str(exc)


def pick_auto(device_type: str) -> str:
    """The fastest engine that can run here."""
    return next(name for name in ENGINES if unavailable_reason(name, device_type) is None)


def choose(name: str, device_type: str) -> Engine:
    """The engine for ``--backend name`` (``auto``: the fastest that can run here), or one
    line saying why it cannot run."""
    if name == "auto":
        name = pick_auto(device_type)
    reason = unavailable_reason(name, device_type)
    if reason:
        raise AvvpError(f"--backend {name}: {reason}")
    return get(name)


def create(name: str, model, device) -> Backend:
    """The HAN head of ``model`` on engine ``name`` (or ``auto``)."""
    import torch

    device = torch.device(device)
    return choose(name, device.type).head(model, device)


def choose_trusted(name: str, model, device) -> Engine:
    """``choose``, except that ``auto`` takes the fastest engine that can run here *and*
    passed its verification against torch (``verdicts``); an engine passed over is said
    in one note."""
    import logging

    from .verdicts import trusted

    if name != "auto":
        return choose(name, device.type)
    for candidate in ENGINES:
        if unavailable_reason(candidate, device.type) is not None:
            continue
        engine = get(candidate)
        why = trusted(engine, model, device)
        if why is None:
            return engine
        logging.getLogger(__name__).info(f"avvp-stream: {why}; not used (auto falls back)")
    return get("torch")
