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
