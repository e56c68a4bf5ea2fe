"""ONNX export of the HAN head (dynamic batch and time) and of the three feature
extractors (dynamic batch), each checked against torch with ONNX Runtime on the CPU.

The head is exported folded (``folded_head.py``: same function, fewer multiply-adds)
when the architecture allows: as one graph, and as the graph that the streaming cache of
``backends/row_cache.py`` feeds."""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from avvp_stream.errors import AvvpError
from avvp_stream.paths import atomic_write, cache_home

OPSET = 17
HEAD_INPUTS = ("audio", "video_2d", "video_3d")
HEAD_OUTPUTS = ("video_prob", "snippet_prob")
STREAMING_INPUTS = (*HEAD_INPUTS, "known", "index")  # the row cache's graph (export_streaming_head)
HEAD_FORMAT = "folded-4"  # part of the cache key: a new graph layout never reuses an old file


class HeadForExport(nn.Module):
    """The unfolded head (architectures that do not fold): frame-averaged inputs in, the
    two probability tensors the parser needs out."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, audio, video_2d, video_3d):
        video_prob, _, _, snippet_prob = self.model(audio, video_2d, video_3d)
        return video_prob, snippet_prob


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], dynamic: dict) -> Path:
    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about shape checks baked in for the traced layout
            torch.onnx.export(module, args, tmp, input_names=inputs, output_names=outputs,
                              dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)

    return atomic_write(path, write, suffix=".onnx")


def head_inputs(batch: int = 2, time: int = 10, seed: int = 0, dtype=torch.float32) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, time, d, generator=g).to(dtype) for d in (128, 2048, 512))


def head_module(model) -> nn.Module:
    """What the engines run for ``model``: the folded head when it folds, else the plain one."""
    from avvp_stream.export.folded_head import FoldedHead, can_fold

    model = copy.deepcopy(model).float().cpu().eval()
    return FoldedHead(model) if can_fold(model) else HeadForExport(model).eval()


def export_head(model, path: str | Path, fp16: bool = False) -> Path:
    """The head with dynamic batch and time. ``fp16``: weights and inputs in half precision
    (what TensorRT 11 builds fp16 engines from)."""
    module = head_module(model)
    if fp16:
        module = module.half()
    dynamic = {name: {0: "batch", 1: "time"} for name in HEAD_INPUTS}
    dynamic.update(video_prob={0: "batch"}, snippet_prob={0: "batch", 1: "time"})
    return _export(module, head_inputs(dtype=torch.float16 if fp16 else torch.float32), Path(path),
                   list(HEAD_INPUTS), list(HEAD_OUTPUTS), dynamic)


def max_abs_diff(path: str | Path, module: nn.Module, args: tuple, names: list[str]) -> float:
    """Largest |ONNX Runtime - torch| over every output."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: a.numpy() for n, a in zip(names, args)})
    with torch.inference_mode():
        want = module(*args)
    want = want if isinstance(want, tuple) else (want,)
    return max(float(np.abs(g.astype(np.float64) - w.double().numpy()).max()) for g, w in zip(got, want))


def _reference(model) -> nn.Module:
    """HAN itself (unfolded, eager, fp32 on the CPU), what every exported head is checked against."""
    return HeadForExport(copy.deepcopy(model).float().cpu()).eval()


def check_head(path: str | Path, model, shapes=((1, 10), (4, 7), (3, 1), (2, 23))) -> float:
    """Largest |ONNX Runtime - torch| against HAN itself."""
    module = _reference(model)
    return max(max_abs_diff(path, module, head_inputs(b, t, seed=b * 100 + t), list(HEAD_INPUTS)) for b, t in shapes)


def check_streaming_head(path: str | Path, model, length: int = 24, window: int = 10) -> float:
    """Largest |ONNX Runtime - torch| over a stream's sliding windows, run through the row
    cache, and over the same windows as one batch (which hits the cache throughout)."""
    from avvp_stream.backends.onnxruntime_backend import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(path, streaming=True)
    module = _reference(model)
    stream = head_inputs(1, length, seed=7)
    windows = [tuple(x[:, s:s + window] for x in stream) for s in range(length - window + 1)]
    windows.append(tuple(torch.cat(w) for w in zip(*windows)))
    worst = 0.0
    for inputs in windows:
        with torch.inference_mode():
            want = module(*inputs)
        got = backend.head(*(x.numpy() for x in inputs))
        worst = max(worst, *(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want)))
    return worst


def _weights_digest(module: nn.Module, salt: str) -> str:
    """sha256 of ``salt`` and every tensor of the module's state dict (by name, as fp32)."""
    digest = hashlib.sha256(salt.encode())
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def export_streaming_head(model, path: str | Path) -> Path:
    """The folded head fed from a cache of snippet rows (``folded_head.StreamingHeadForExport``,
    ``backends/row_cache.py``): new inputs (N, D), known rows (M, 2, 5d), index (B, T)."""
    from avvp_stream.export.folded_head import StreamingHeadForExport

    head = head_module(model)
    g = torch.Generator().manual_seed(0)
    new = tuple(torch.randn(3, n, generator=g) for n in (128, 2048, 512))
    with torch.no_grad():
        known = head.rows(*(torch.randn(4, n, generator=g) for n in (128, 2048, 512)))
    index = torch.tensor([[0, 1, 2, 3, 4], [2, 3, 4, 5, 6]])
    dynamic = {"audio": {0: "new"}, "video_2d": {0: "new"}, "video_3d": {0: "new"}, "known": {0: "known"},
               "index": {0: "batch", 1: "time"}, "video_prob": {0: "batch"}, "snippet_prob": {0: "batch", 1: "time"},
               "rows": {0: "new"}}
    return _export(StreamingHeadForExport(head), (*new, known, index), Path(path), list(STREAMING_INPUTS),
                   [*HEAD_OUTPUTS, "rows"], dynamic)


def state_hash(model) -> str:
    return _weights_digest(model, repr(model.config) + HEAD_FORMAT)


def cached_head(model) -> Path:
    """The head's ONNX file for this exact model (config + weights), exported on first use."""
    path = cache_home() / "onnx" / f"han_head_{state_hash(model)}.onnx"
    if not path.is_file():
        export_head(model, path)
    return path


def cached_streaming_head(model) -> Path:
    """``export_streaming_head`` for this exact model, exported on first use."""
    path = cache_home() / "onnx" / f"han_head_streaming_{state_hash(model)}.onnx"
    if not path.is_file():
        export_streaming_head(model, path)
    return path


class _ExtractorStage(nn.Module):
    """One feature network as exported: its preprocessed input tensor in, features out."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x).float()


def _networks(extractor) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """The extractor's own networks, with an example input for each."""
    g = torch.Generator().manual_seed(0)
    examples = {"vggish": torch.randn(2, 96, 64, generator=g) * 2.0,
                "resnet152": torch.randn(2, 3, 224, 224, generator=g),
                "r2plus1d_18": torch.randn(2, 3, 8, 112, 112, generator=g)}
    return {name: (net, examples[name]) for name, (net, _) in extractor.networks.items()}


def _stage(net: nn.Module) -> nn.Module:
    # a copy: exporting must not move or convert the extractor's own (maybe GPU, fp16) network
    return _ExtractorStage(copy.deepcopy(net)).float().cpu().eval().to(memory_format=torch.contiguous_format)


def extractor_stages(extractor) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """(module, example input) per network, in fp32 on the CPU, contiguous memory."""
    return {name: (_stage(net), x) for name, (net, x) in _networks(extractor).items()}


def export_extractors(extractor, folder: str | Path, names=("vggish", "resnet152", "r2plus1d_18")) -> dict[str, Path]:
    folder = Path(folder)
    out = {}
    for name, (module, example) in extractor_stages(extractor).items():
        if name in names:
            out[name] = _export(module, (example,), folder / f"{name}.onnx", ["input"], ["features"],
                                {"input": {0: "batch"}, "features": {0: "batch"}})
    return out


def module_hash(module: nn.Module) -> str:
    return _weights_digest(module, type(module).__name__)


def quantize_int8(src: Path, dst: Path) -> Path:
    """Dynamic int8 quantisation of the weights (activations quantised on the fly)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    return atomic_write(dst, lambda tmp: quantize_dynamic(str(src), tmp, weight_type=QuantType.QInt8), suffix=".onnx")


def cached_extractors(extractor, int8: bool = False) -> dict[str, Path]:
    """The extractors' ONNX files for these exact weights (and their int8 versions)."""
    out = {}
    for name, (net, example) in _networks(extractor).items():
        path = cache_home() / "onnx" / f"{name}_{module_hash(net)}.onnx"
        if not path.is_file():  # copy the network only when it has to be exported
            _export(_stage(net), (example,), path, ["input"], ["features"], {"input": {0: "batch"}, "features": {0: "batch"}})
        if int8 and name != "vggish":
            quantized = path.with_name(path.stem + "_int8.onnx")
            if not quantized.is_file():
                quantize_int8(path, quantized)
            path = quantized
        out[name] = path
    return out


def write_manifest(folder: Path, entries: dict) -> Path:
    return atomic_write(folder / "manifest.json", lambda tmp: Path(tmp).write_text(json.dumps(entries, indent=1) + "\n"))


def require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise AvvpError("ONNX export needs onnx and onnxruntime: pip install 'avvp-stream[onnx]'") from None
