"""A TensorRT engine of the HAN head, run with pycuda on the primary CUDA context (so it
can share a process with torch) and without importing torch: named tensors,
``execute_async_v3``, pinned host buffers, one stream. UNTESTED HERE (no TensorRT can be
installed on this project's machines); see export/tensorrt_engine.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Backend

INPUTS = ("audio", "video_2d", "video_3d")


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, onnx_path: str | Path, cache: Path | None = None, fp16_onnx: bool = False):
        import pycuda.autoprimaryctx  # noqa: F401
        import pycuda.driver as cuda
        import tensorrt as trt

        from avvp_stream.export.tensorrt_engine import cached_engine
        from avvp_stream.paths import cache_home

        self._cuda = cuda
        engine_path = cached_engine(onnx_path, cache or cache_home() / "tensorrt", "han_head", fp16_onnx)
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        self.context = self.engine.create_execution_context()
        self.stream = cuda.Stream()
        self._names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self._dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in self._names}
        self._is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in self._names}
        self._buffers: dict[str, tuple[np.ndarray, object]] = {}  # name -> (pinned host, device)

    def _buffer(self, name: str, shape: tuple[int, ...]):
        host, dev = self._buffers.get(name, (None, None))
        if host is None or host.shape != shape:
            host = self._cuda.pagelocked_empty(shape, self._dtypes[name])
            dev = self._cuda.mem_alloc(max(1, host.nbytes))
            self._buffers[name] = (host, dev)
        return host, dev

    def head(self, audio, video_2d, video_3d):
        cuda = self._cuda
        for name, array in zip(INPUTS, (audio, video_2d, video_3d)):
            host, dev = self._buffer(name, array.shape)
            host[...] = array
            cuda.memcpy_htod_async(dev, host, self.stream)
            self.context.set_input_shape(name, array.shape)
            self.context.set_tensor_address(name, int(dev))
        outputs = {}
        for name in self._names:
            if not self._is_input[name]:
                host, dev = self._buffer(name, tuple(self.context.get_tensor_shape(name)))
                self.context.set_tensor_address(name, int(dev))
                outputs[name] = (host, dev)
        if not self.context.execute_async_v3(stream_handle=self.stream.handle):
            raise RuntimeError("TensorRT execution failed")
        for host, dev in outputs.values():
            cuda.memcpy_dtoh_async(host, dev, self.stream)
        self.stream.synchronize()
        return (outputs["video_prob"][0].astype(np.float32, copy=True),
                outputs["snippet_prob"][0].astype(np.float32, copy=True))
