"""The exported ONNX head on ONNX Runtime's CPU provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Backend


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def head(self, audio, video_2d, video_3d):
        feeds = {"audio": np.ascontiguousarray(audio, dtype=np.float32),
                 "video_2d": np.ascontiguousarray(video_2d, dtype=np.float32),
                 "video_3d": np.ascontiguousarray(video_3d, dtype=np.float32)}
        video_prob, snippet_prob = self.session.run(["video_prob", "snippet_prob"], feeds)
        return video_prob, snippet_prob


class OnnxRuntimeExtractors:
    """The three feature networks on ONNX Runtime (CPU), exported once per set of weights
    into the cache. ``int8``: ResNet-152 and R(2+1)D-18 with dynamically quantised int8
    weights (VGGish stays fp32: its output is already 8-bit quantised); the deviation this
    costs is measured in benchmarks/extract_speed.py."""

    def __init__(self, extractor, int8: bool = False, threads: int | None = None):
        import onnxruntime as ort

        from avvp_stream.export.onnx_export import cached_extractors

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        paths = cached_extractors(extractor, int8=int8)
        self.sessions = {name: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
                         for name, p in paths.items()}

    def run(self, name: str, x: np.ndarray) -> np.ndarray:
        return self.sessions[name].run(["features"], {"input": np.ascontiguousarray(x, dtype=np.float32)})[0]
