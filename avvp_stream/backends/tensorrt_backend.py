"""TensorRT engines of the HAN head and of the feature networks, run with pycuda on the
primary CUDA context (so they can share a process with torch) and without importing torch
(the runner): named tensors, ``execute_async_v3``, one stream. The head is fed from pinned
host buffers (its inputs are the parser's numpy arrays); the feature networks are fed
the extractor's CUDA tensors by device pointer, with no host round trip
(``DeviceNetworks``, the one place that touches torch, and only when an extractor runs).
Two engines: ``tensorrt`` (fp32, TF32 allowed) and ``tensorrt-fp16`` (the head built from
the fp16 ONNX head); ``auto`` takes the fastest that passes its verification. UNTESTED
HERE (no TensorRT can be installed on this project's machines); see tensorrt_build.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Backend, Engine, NumpyNetworks

_stream = None


def shared_stream():
    """The one CUDA stream every engine of this process runs on (the head and the three
    feature networks), so that their work is ordered without extra synchronisation."""
    global _stream
    if _stream is None:
        import pycuda.driver as cuda

        _stream = cuda.Stream()
    return _stream


def batch_slices(n: int, max_batch: int) -> list[slice]:
    """Slices of at most ``max_batch`` along the batch axis (the engine's profile bound)."""
    return [slice(i, min(n, i + max_batch)) for i in range(0, n, max(1, max_batch))] or [slice(0, 0)]


class EngineRunner:
    """One deserialised engine: numpy arrays in (by input name), numpy arrays out. Inputs
    larger than the profile's maximum batch are run in chunks."""

    def __init__(self, engine_path: Path):
        import pycuda.autoprimaryctx  # noqa: F401
        import pycuda.driver as cuda
        import tensorrt as trt

        self._cuda = cuda
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self._runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise RuntimeError(f"TensorRT could not load {engine_path}")
        self.context = self.engine.create_execution_context()
        self.stream = shared_stream()
        self.names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in self.names}
        self.is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in self.names}
        self._buffers = self._allocate()  # name -> (pinned host, device), once, at the profile maximum

    def _allocate(self) -> dict[str, tuple[np.ndarray, object]]:
        """Pinned host and device buffers for every tensor at the profile's maximum shapes
        (the outputs' maxima are what the engine gives for the maximal inputs); each call
        then uses views of them, so shapes can change (windows of 1..10, chunks and their
        remainder) without a reallocation."""
        for name in self.names:
            if self.is_input[name]:
                if not self.context.set_input_shape(name, tuple(self.engine.get_tensor_profile_shape(name, 0)[2])):
                    raise RuntimeError(f"TensorRT refused the profile maximum of {name!r}")
        buffers = {}
        for name in self.names:
            size = int(np.prod(tuple(self.context.get_tensor_shape(name))))
            host = self._cuda.pagelocked_empty(size, self.dtypes[name])
            buffers[name] = (host, self._cuda.mem_alloc(max(1, host.nbytes)))
        return buffers

    def _buffer(self, name: str, shape: tuple[int, ...]):
        host, dev = self._buffers[name]
        return host[:int(np.prod(shape))].reshape(shape), dev

    @property
    def max_batch(self) -> int:
        first = next(n for n in self.names if self.is_input[n])
        return int(self.engine.get_tensor_profile_shape(first, 0)[2][0])

    def set_shapes(self, input_shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
        """Set the inputs' shapes (each checked) -> the outputs' shapes."""
        for name, shape in input_shapes.items():
            if not self.context.set_input_shape(name, shape):
                raise RuntimeError(f"TensorRT refused the shape {shape} for {name!r} (outside the engine's "
                                   f"profile, max batch {self.max_batch})")
        return {n: tuple(self.context.get_tensor_shape(n)) for n in self.names if not self.is_input[n]}

    def enqueue(self, addresses: dict[str, int]) -> None:
        """Run on the shared stream with every tensor at the given device address (shapes
        set by ``set_shapes``); the caller synchronises."""
        for name, address in addresses.items():
            self.context.set_tensor_address(name, int(address))
        if not self.context.execute_async_v3(stream_handle=self.stream.handle):
            raise RuntimeError("TensorRT execution failed")

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(next(iter(feeds.values())))
        parts = [self._run({k: v[s] for k, v in feeds.items()}) for s in batch_slices(n, self.max_batch)]
        return parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda = self._cuda
        out_shapes = self.set_shapes({name: array.shape for name, array in feeds.items()})
        addresses = {}
        for name, array in feeds.items():
            host, dev = self._buffer(name, array.shape)
            host[...] = array  # cast to the engine's input type (fp16 engines take fp16)
            cuda.memcpy_htod_async(dev, host, self.stream)
            addresses[name] = dev
        outputs = {}
        for name, shape in out_shapes.items():
            host, addresses[name] = self._buffer(name, shape)
            outputs[name] = host
        self.enqueue(addresses)
        for name, host in outputs.items():
            cuda.memcpy_dtoh_async(host, self._buffers[name][1], self.stream)
        self.stream.synchronize()
        return {name: host.astype(np.float32, copy=True) for name, host in outputs.items()}


def _cache(cache: Path | None) -> Path:
    from avvp_stream.paths import cache_home

    return cache or cache_home() / "tensorrt"


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, onnx_path: str | Path, cache: Path | None = None, fp16_onnx: bool = False,
                 profile: dict | None = None):
        from avvp_stream.backends.tensorrt_build import HEAD_PROFILE, cached_engine

        self.runner = EngineRunner(cached_engine(onnx_path, _cache(cache), "han_head", fp16_onnx,
                                                 profile or HEAD_PROFILE))

    def head(self, *inputs, keys=None):
        names = [n for n in self.runner.names if self.runner.is_input[n]]  # the features', in the ONNX order
        out = self.runner(dict(zip(names, inputs)))
        return out["video_prob"], out["snippet_prob"]


class TensorRTExtractors:
    """The feature networks as TensorRT engines built from their ONNX files (``run(name,
    array) -> array``, like ONNX Runtime's). ``profiles``: each network's, by name."""

    def __init__(self, onnx_paths: dict[str, Path], cache: Path | None = None, profiles: dict | None = None):
        from avvp_stream.backends.tensorrt_build import EXTRACTOR_PROFILE, cached_engine

        self.runners = {name: EngineRunner(cached_engine(path, _cache(cache), name, "fp16" in Path(path).stem,
                                                         (profiles or {}).get(name, EXTRACTOR_PROFILE)))
                        for name, path in onnx_paths.items()}

    def run(self, name: str, x: np.ndarray) -> np.ndarray:
        return self.runners[name]({"input": x})["features"]


class DeviceNetworks:
    """The feature networks' engines fed the extractor's CUDA tensors where they lie: the
    input's device pointer in, a CUDA tensor's out, no host round trip (a ResNet chunk of 64
    frames is 38 MB in fp32, each way, otherwise). The engines run on the shared stream,
    after torch's stream has finished the preprocessing that made the input, and torch
    reads the output after the shared stream has written it."""

    def __init__(self, runners: dict[str, EngineRunner]):
        self.runners = runners

    def run(self, name: str, x):
        import torch

        runner = self.runners[name]
        types = {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16}
        x = x.to(dtype=types[runner.dtypes["input"]]).contiguous()
        torch.cuda.current_stream(x.device).synchronize()  # x is written
        outputs = []
        for part in (x[s] for s in batch_slices(len(x), runner.max_batch)):
            shape = runner.set_shapes({"input": tuple(part.shape)})["features"]
            out = torch.empty(shape, dtype=types[runner.dtypes["features"]], device=x.device)
            runner.enqueue({"input": part.data_ptr(), "features": out.data_ptr()})
            outputs.append(out)
        runner.stream.synchronize()  # every output is written before torch reads one
        return torch.cat(outputs).float()


class TensorRTEngine(Engine):
    """TensorRT engines of the head and the feature networks (built from their ONNX
    files, cached per GPU, TensorRT version and profile)."""

    name = "tensorrt"
    extra = "tensorrt"
    tolerance = 1e-3  # TF32 may be used for the fp32 engines
    precision = "fp32 (TF32 allowed)"
    fp16_head = False
    networks_note = "feature networks as TensorRT engines too (built once per GPU into the cache)"

    def unavailable(self, device_type: str) -> str | None:
        if device_type != "cuda":
            return f"{self.name} needs a CUDA GPU (use --device cuda)"
        return self.missing("tensorrt", "pycuda")

    def head(self, model, device, workload=None) -> Backend:
        from avvp_stream.backends.onnx_cache import cached_head
        from avvp_stream.backends.tensorrt_build import head_profile

        profile = head_profile(workload.batch, workload.window) if workload else None
        return TensorRTBackend(cached_head(model, fp16=self.fp16_head), fp16_onnx=self.fp16_head, profile=profile)

    def feature_networks(self, extractor, workload=None):
        from avvp_stream.backends.onnx_cache import cached_extractors
        from avvp_stream.backends.tensorrt_build import extractor_profile

        batch = workload.batch if workload else 1
        profiles = {spec.network: extractor_profile(max(extractor.call_sizes(spec, batch))) for spec in extractor.specs}
        engines = TensorRTExtractors(cached_extractors(extractor), profiles=profiles)
        if extractor.device.type == "cuda":
            return DeviceNetworks(engines.runners)
        return NumpyNetworks(engines)


class TensorRTFp16Engine(TensorRTEngine):
    """The head as an fp16 TensorRT engine (from the fp16 ONNX head: weights and inputs in
    half precision); the feature networks as ``tensorrt``'s."""

    name = "tensorrt-fp16"
    tolerance = 1e-2  # probabilities; fp16 keeps about 3 decimal digits
    precision = "fp16"
    fp16_head = True
