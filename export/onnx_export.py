"""Checks of exported ONNX files against torch with ONNX Runtime on the CPU, and the
folder ``avvp-export onnx`` writes (the files themselves are exported by the runtime's
``backends.onnx_cache``, which also caches them for the engines)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from avvp_stream.backends.onnx_cache import (  # noqa: F401 (the exporters, for the CLI)
    OPSET,
    export_extractors,
    export_head,
    export_streaming_head,
    extractor_stages,
)
from avvp_stream.errors import AvvpError
from avvp_stream.head.graph import head_inputs, input_names, reference, streaming_input_names  # noqa: F401
from avvp_stream.paths import atomic_write

def max_abs_diff(path: str | Path, module: nn.Module, args: tuple, names: list[str]) -> float:
    """Largest |ONNX Runtime - torch| over every output."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: a.numpy() for n, a in zip(names, args)})
    with torch.inference_mode():
        want = module(*args)
    want = want if isinstance(want, tuple) else (want,)
    return max(float(np.abs(g.astype(np.float64) - w.double().numpy()).max()) for g, w in zip(got, want))


def check_head(path: str | Path, model, shapes=((1, 10), (4, 7), (3, 1), (2, 23))) -> float:
    """Largest |ONNX Runtime - torch| against HAN itself."""
    module = reference(model)
    features = model.config.features
    return max(max_abs_diff(path, module, head_inputs(b, t, seed=b * 100 + t, features=features), list(features))
               for b, t in shapes)


def check_streaming_head(path: str | Path, model, length: int = 24, window: int = 10) -> float:
    """Largest |ONNX Runtime - torch| over a stream's sliding windows, run through the row
    cache, and over the same windows as one batch (which hits the cache throughout)."""
    from avvp_stream.backends.onnxruntime_backend import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(path, streaming=True)
    module = reference(model)
    stream = head_inputs(1, length, seed=7, features=model.config.features)
    windows = [tuple(x[:, s:s + window] for x in stream) for s in range(length - window + 1)]
    windows.append(tuple(torch.cat(w) for w in zip(*windows)))
    worst = 0.0
    for inputs in windows:
        with torch.inference_mode():
            want = module(*inputs)
        got = backend.head(*(x.numpy() for x in inputs))
        worst = max(worst, *(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want)))
    return worst


def write_manifest(folder: Path, entries: dict) -> Path:
    return atomic_write(folder / "manifest.json", lambda tmp: Path(tmp).write_text(json.dumps(entries, indent=1) + "\n"))


def require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise AvvpError("ONNX export needs onnx and onnxruntime: pip install 'avvp-stream[onnx]'") from None
