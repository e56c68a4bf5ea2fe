"""ONNX files the engines run, exported on first use into the cache
(``$AVVP_STREAM_HOME/onnx``) and keyed by the weights: the head (dynamic batch and time,
folded when the architecture allows), the graph the row cache feeds, and the three feature
networks (dynamic batch), optionally with int8 weights. ``avvp-export onnx`` writes the
same files into a folder and checks them."""

from __future__ import annotations

import copy
import hashlib
import warnings
from pathlib import Path

import torch
from torch import nn

from ..features.spec import specs
from ..head.graph import HEAD_FORMAT, HEAD_OUTPUTS, head_inputs, head_module, input_names, streaming_input_names
from ..paths import atomic_write, cache_home

OPSET = 17


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], dynamic: dict) -> Path:
    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about shape checks baked in for the traced layout
            torch.onnx.export(module, args, tmp, input_names=inputs, output_names=outputs,
                              dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)

    return atomic_write(path, write, suffix=".onnx")


def export_head(model, path: str | Path, fp16: bool = False) -> Path:
    """The head with dynamic batch and time. ``fp16``: weights and inputs in half precision
    (what TensorRT 11 builds fp16 engines from)."""
    module = head_module(model)
    if fp16:
        module = module.half()
    names = input_names(model)
    dynamic = {name: {0: "batch", 1: "time"} for name in names}
    dynamic.update(video_prob={0: "batch"}, snippet_prob={0: "batch", 1: "time"})
    example = head_inputs(dtype=torch.float16 if fp16 else torch.float32, features=model.config.features)
    return _export(module, example, Path(path), list(names), list(HEAD_OUTPUTS), dynamic)


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
    from ..head.folded import StreamingHeadForExport

    head = head_module(model)
    g = torch.Generator().manual_seed(0)
    dims = [s.dim for s in specs(model.config.features)]
    new = tuple(torch.randn(3, n, generator=g) for n in dims)
    with torch.no_grad():
        known = head.rows(*(torch.randn(4, n, generator=g) for n in dims))
    index = torch.tensor([[0, 1, 2, 3, 4], [2, 3, 4, 5, 6]])
    dynamic = {**{name: {0: "new"} for name in input_names(model)}, "known": {0: "known"},
               "index": {0: "batch", 1: "time"}, "video_prob": {0: "batch"}, "snippet_prob": {0: "batch", 1: "time"},
               "rows": {0: "new"}}
    return _export(StreamingHeadForExport(head), (*new, known, index), Path(path), list(streaming_input_names(model)),
                   [*HEAD_OUTPUTS, "rows"], dynamic)


def state_hash(model) -> str:
    return _weights_digest(model, repr(model.config) + HEAD_FORMAT)


def cached_head(model, fp16: bool = False) -> Path:
    """The head's ONNX file for this exact model (config + weights), exported on first use;
    ``fp16``: in half precision (what the fp16 TensorRT engine is built from)."""
    path = cache_home() / "onnx" / f"han_head_{state_hash(model)}{'_fp16' if fp16 else ''}.onnx"
    if not path.is_file():
        export_head(model, path, fp16=fp16)
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
    return {s.network: (extractor.networks[s.network][0], extractor.example(s)) for s in extractor.specs}


def _stage(net: nn.Module) -> nn.Module:
    # a copy: exporting must not move or convert the extractor's own (maybe GPU, fp16) network
    return _ExtractorStage(copy.deepcopy(net)).float().cpu().eval().to(memory_format=torch.contiguous_format)


def extractor_stages(extractor) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """(module, example input) per network, in fp32 on the CPU, contiguous memory."""
    return {name: (_stage(net), x) for name, (net, x) in _networks(extractor).items()}


def _export_stage(module: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """A feature network's stage with a dynamic batch: ``input`` in, ``features`` out."""
    return _export(module, (example,), path, ["input"], ["features"], {"input": {0: "batch"}, "features": {0: "batch"}})


def export_extractors(extractor, folder: str | Path, names=None) -> dict[str, Path]:
    folder = Path(folder)
    return {name: _export_stage(module, example, folder / f"{name}.onnx")
            for name, (module, example) in extractor_stages(extractor).items() if names is None or name in names}


def module_hash(module: nn.Module) -> str:
    return _weights_digest(module, type(module).__name__)


def quantize_int8(src: Path, dst: Path) -> Path:
    """Dynamic int8 quantisation of the weights (activations quantised on the fly)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    return atomic_write(dst, lambda tmp: quantize_dynamic(str(src), tmp, weight_type=QuantType.QInt8), suffix=".onnx")


def cached_extractors(extractor, int8: bool = False) -> dict[str, Path]:
    """The extractors' ONNX files for these exact weights (and their int8 versions)."""
    out = {}
    reduced = {s.network: s.half for s in extractor.specs}  # VGGish's output is 8-bit already: stays fp32
    for name, (net, example) in _networks(extractor).items():
        path = cache_home() / "onnx" / f"{name}_{module_hash(net)}.onnx"
        if not path.is_file():  # copy the network only when it has to be exported
            _export_stage(_stage(net), example, path)
        if int8 and reduced[name]:
            quantized = path.with_name(path.stem + "_int8.onnx")
            if not quantized.is_file():
                quantize_int8(path, quantized)
            path = quantized
        out[name] = path
    return out
