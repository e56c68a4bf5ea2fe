"""TensorRT engines from the ONNX files, with an engine cache that never loads a stale
engine. No torch import here: an edge box with TensorRT and pycuda runs without it.

Written against TensorRT 10's documented Python API and kept valid for 11: networks are
created with explicit batch (the default since 10; no EXPLICIT_BATCH flag), fp16 engines
are built from fp16 ONNX files as strongly typed networks (11 drops the FP16 builder
flag), and the runtime uses named tensors (``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``), not the binding API that 10 removed.

UNTESTED HERE: TensorRT cannot be installed on the machines this project is built on.
Everything before the TensorRT calls (cache keys, staleness, metadata) is tested.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..paths import atomic_write  # no torch there either

# Optimization profiles: (min, opt, max) of each dynamic axis. TensorRT tunes its kernels
# for opt, so opt is what the run sends (``Workload``): the head's windows per call (live
# 1, a file its --batch) of its window length; an extractor's inputs per call (frames,
# clips or examples). A live run and a file run therefore build different engines.
MAX_BATCH = 64
HEAD_PROFILE = {"batch": (1, 1, MAX_BATCH), "time": (1, 10, 64)}
EXTRACTOR_PROFILE = {"batch": (1, 8, MAX_BATCH)}


def head_profile(batch: int = 1, window: int = 10) -> dict:
    """The head's profile for ``batch`` windows of ``window`` snippets per call."""
    return {"batch": (1, batch, max(MAX_BATCH, batch)), "time": (1, window, max(64, window))}


def extractor_profile(opt: int) -> dict:
    """A feature network's profile, tuned for ``opt`` inputs per call."""
    return {"batch": (1, opt, max(MAX_BATCH, opt))}
BUILDER_SETTINGS = {"workspace_bytes": 1 << 30, "fp16": "strongly typed from fp16 ONNX", "tf32": "default (allowed)"}


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on; any change means rebuild."""

    onnx_sha256: str
    gpu: str
    compute_capability: str
    tensorrt: str
    precision: str  # "fp32" or "fp16" (from an fp16 ONNX file)
    profile: str
    builder: str = ""  # the builder settings (BUILDER_SETTINGS), as JSON

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:20]


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_key(onnx_path: str | Path, gpu: str, compute_capability: str, tensorrt_version: str, precision: str,
             profile: dict = HEAD_PROFILE, builder: dict = BUILDER_SETTINGS) -> EngineKey:
    return EngineKey(file_sha256(onnx_path), gpu, compute_capability, tensorrt_version, precision,
                     json.dumps(profile, sort_keys=True), json.dumps(builder, sort_keys=True))


def timing_cache_path(cache: Path, gpu: str, compute_capability: str, tensorrt_version: str) -> Path:
    """One timing cache per GPU and TensorRT version: timings of one GPU mean nothing on
    another, and TensorRT rejects (or worse, misreads) another version's cache."""
    ident = hashlib.sha256(f"{gpu}|{compute_capability}|{tensorrt_version}".encode()).hexdigest()[:16]
    return cache / f"timing_{ident}.cache"


def _replace_atomically(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(payload))


def engine_paths(cache: Path, key: EngineKey, name: str) -> tuple[Path, Path]:
    """The engine and the JSON of its key, side by side."""
    stem = cache / f"{name}_{key.digest}"
    return stem.with_suffix(".engine"), stem.with_suffix(".json")


def is_fresh(engine: Path, meta: Path, key: EngineKey) -> bool:
    """True only if the engine exists and its JSON records exactly this key."""
    if not (engine.is_file() and meta.is_file()):
        return False
    try:
        return json.loads(meta.read_text()) == asdict(key)
    except (OSError, ValueError):
        return False


def write_engine(engine: Path, meta: Path, key: EngineKey, data: bytes) -> None:
    for path, payload in ((engine, data), (meta, (json.dumps(asdict(key), indent=1) + "\n").encode())):
        _replace_atomically(path, payload)


def gpu_identity() -> tuple[str, str]:
    """Name and compute capability of the current GPU, through pycuda's primary context."""
    import pycuda.autoprimaryctx  # noqa: F401  (shares the primary context with torch, if loaded)
    import pycuda.driver as cuda

    device = cuda.Context.get_device()
    major, minor = device.compute_capability()
    return device.name(), f"{major}.{minor}"


def profile_shapes(shape: tuple[int, ...], profile: dict) -> tuple[tuple[int, ...], ...]:
    """(min, opt, max) shapes of one network input whose dynamic axes are -1: axis 0 is
    the batch, a dynamic axis 1 is time (the head); the other axes keep their size."""
    axes = {0: "batch", 1: "time"}
    if any(size == -1 and axes.get(i) not in profile for i, size in enumerate(shape)):
        raise ValueError(f"input shape {shape}: the profile {profile} does not cover its dynamic axes")
    ranges = [profile[axes[i]] if size == -1 else (size, size, size) for i, size in enumerate(shape)]
    return tuple(tuple(r[k] for r in ranges) for k in range(3))


def build_engine(onnx_path: str | Path, fp16_onnx: bool, profile: dict, timing_cache: Path,
                 workspace_bytes: int = BUILDER_SETTINGS["workspace_bytes"]) -> bytes:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if fp16_onnx:  # precision comes from the ONNX types (TensorRT 11 has no FP16 builder flag)
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    if not config.set_timing_cache(cache, ignore_mismatch=False):  # a damaged cache: start a fresh one
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    opt_profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        opt_profile.set_shape(tensor.name, *profile_shapes(tuple(tensor.shape), profile))
    config.add_optimization_profile(opt_profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
    _replace_atomically(timing_cache, bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def cached_engine(onnx_path: str | Path, cache: Path, name: str, fp16_onnx: bool = False,
                  profile: dict = HEAD_PROFILE) -> Path:
    """The engine for this ONNX file on this GPU with this TensorRT, built if missing or stale."""
    import tensorrt as trt

    gpu, capability = gpu_identity()
    key = make_key(onnx_path, gpu, capability, trt.__version__, "fp16" if fp16_onnx else "fp32", profile)
    engine, meta = engine_paths(cache, key, name)
    if not is_fresh(engine, meta, key):
        data = build_engine(onnx_path, fp16_onnx, profile, timing_cache_path(cache, gpu, capability, trt.__version__))
        write_engine(engine, meta, key, data)
    return engine
