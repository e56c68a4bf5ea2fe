"""The exported ONNX head on ONNX Runtime's CPU provider: the folded head, each snippet's
half computed once and kept across windows (``row_cache``) where the architecture folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Backend, Engine, NumpyNetworks
from .row_cache import RowCache


class OnnxRuntimeBackend(Backend):
    """``onnx_path``: the whole head (``export_head``), or, with ``streaming``, the head fed
    from a ``RowCache`` (``export_streaming_head``): each snippet's rows are computed once."""

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, threads: int | None = None, streaming: bool = False, capacity: int = 64):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]  # the features', then (streaming) the cache's
        self.cache = None
        if streaming:
            shape = self.session.get_inputs()[-2].shape  # known: (M, 2, 5d)
            self.cache = RowCache((shape[1], shape[2]), capacity)

    def head(self, *inputs, keys=None):
        if self.cache is None:
            feeds = dict(zip(self.input_names, (np.ascontiguousarray(x, dtype=np.float32) for x in inputs)))
            video_prob, snippet_prob = self.session.run(["video_prob", "snippet_prob"], feeds)
            return video_prob, snippet_prob
        plan = self.cache.plan(*inputs, keys=keys)
        feeds = dict(zip(self.input_names, (*plan.inputs, plan.known, plan.index)))
        video_prob, snippet_prob, rows = self.session.run(["video_prob", "snippet_prob", "rows"], feeds)
        self.cache.keep(plan, rows)
        return video_prob, snippet_prob


class OnnxRuntimeExtractors:
    """The three feature networks on ONNX Runtime (CPU), exported once per set of weights
    into the cache. ``int8``: ResNet-152 and R(2+1)D-18 with dynamically quantised int8
    weights (VGGish stays fp32: its output is already 8-bit quantised); the deviation this
    costs is measured in benchmarks/extract_speed.py."""

    def __init__(self, extractor, int8: bool = False, threads: int | None = None):
        import onnxruntime as ort

        from avvp_stream.backends.onnx_cache import cached_extractors

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        paths = cached_extractors(extractor, int8=int8)
        self.sessions = {name: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
                         for name, p in paths.items()}

    def run(self, name: str, x: np.ndarray) -> np.ndarray:
        return self.sessions[name].run(["features"], {"input": np.ascontiguousarray(x, dtype=np.float32)})[0]


class OnnxRuntimeEngine(Engine):
    """The folded head with its row cache (or the plain head when the architecture does
    not fold), and on a CPU the three feature networks, all on ONNX Runtime."""

    name = "onnxruntime"
    extra = "onnx"
    networks_note = "feature networks on ONNX Runtime too (exported once per set of weights into the cache)"

    def unavailable(self, device_type: str) -> str | None:
        return self.missing("onnxruntime", "onnx")

    def head(self, model, device, workload=None) -> Backend:
        from avvp_stream.backends.onnx_cache import cached_head, cached_streaming_head  # once per checkpoint
        from avvp_stream.head.folded import can_fold

        if can_fold(model):
            return OnnxRuntimeBackend(cached_streaming_head(model), streaming=True)
        return OnnxRuntimeBackend(cached_head(model))

    def feature_networks(self, extractor, workload=None, int8: bool = False):
        # 1.2-1.6x faster than torch on a CPU (benchmarks/stream_latency.py); a GPU keeps torch
        if extractor.device.type != "cpu":
            return None
        return NumpyNetworks(OnnxRuntimeExtractors(extractor, int8=int8))
