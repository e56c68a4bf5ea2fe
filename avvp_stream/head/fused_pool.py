"""The fused attentive-pooling op (sources in ``cpp_ext/csrc``, installed as
``avvp_stream.head.csrc``): build, load, and register
it with torch (``register_fake`` for tracing and compile, ``register_autograd`` so that
training uses it too). ``attentive_pool`` runs the op when it is built and falls back
to ``reference`` (plain torch, the definition) with one note when it is not.

``build`` compiles it into the cache (``$AVVP_STREAM_HOME/ext``), with the CUDA kernel
when a CUDA toolkit is found; ``avvp-export build-ext`` calls it ahead of time, and
``load(build=True)`` compiles just in time. Either way the result is reused.
"""

from __future__ import annotations

import hashlib
import logging
import os
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from avvp_stream.errors import AvvpError
from avvp_stream.model import attentive_pool as mmil_attentive_pool  # the definition
from avvp_stream.paths import cache_home

log = logging.getLogger(__name__)

OP = "avvp::attentive_pool"
_state: dict = {"loaded": False, "missing": False, "noted": False, "with_cuda": False, "registered": False,
                "why": None}


def reference(x: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The definition, in torch: HAN's fc_prob / fc_frame_att / fc_av_att (rows of
    ``weight`` in that order), sigmoid, softmax over time and over modality, sums.
    x (N, T, 2, D) -> video, audio, visual (N, C), frame probabilities (N, T, 2, C)."""
    prob_logits, frame_logits, av_logits = torch.nn.functional.linear(x, weight, bias).chunk(3, dim=-1)
    frame_prob = torch.sigmoid(prob_logits)
    return (*mmil_attentive_pool(frame_prob, frame_logits, av_logits), frame_prob)


def source_files() -> list[Path]:
    root = resources.files("avvp_stream.head.csrc")  # cpp_ext/csrc, installed as package data
    files = [Path(str(root.joinpath(name))) for name in ("attentive_pool.cpp", "attentive_pool_cuda.cu", "attentive_pool.h")]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise AvvpError(f"the fused pooling sources are missing from the installation: {', '.join(missing)}")
    return files


def _cpp_extension():
    if "CUDA_HOME" not in os.environ and Path("/usr/local/cuda/bin/nvcc").exists():
        os.environ["CUDA_HOME"] = "/usr/local/cuda"  # before torch guesses from PATH
    from torch.utils import cpp_extension

    return cpp_extension


def cuda_toolkit() -> str | None:
    CUDA_HOME = _cpp_extension().CUDA_HOME  # noqa: N806

    return CUDA_HOME if torch.version.cuda and CUDA_HOME and Path(CUDA_HOME, "bin", "nvcc").exists() else None


def cuda_archs() -> str:
    """The CUDA architectures a build targets: $TORCH_CUDA_ARCH_LIST, else this GPU's, else
    Hopper (9.0) when there is no GPU to ask."""
    explicit = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if explicit:
        return explicit
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        return f"{major}.{minor}"
    return "9.0"


def build_key(with_cuda: bool) -> str:
    """Sources, torch, CUDA and, for a CUDA build, the architectures it was built for: a
    library built for 9.0 is never loaded on a GPU of another architecture."""
    digest = hashlib.sha256()
    for f in source_files():
        digest.update(f.read_bytes())
    digest.update(f"{torch.__version__}|{torch.version.cuda}|{with_cuda}".encode())
    if with_cuda:
        digest.update(f"|archs={cuda_archs()}".encode())
    return digest.hexdigest()[:16]


def build(with_cuda: bool | None = None, verbose: bool = False) -> Path:
    """Compile the op (CPU, plus CUDA when asked or when a toolkit is found) and load it."""
    cpp_extension = _cpp_extension()
    if with_cuda is None:
        with_cuda = cuda_toolkit() is not None
    elif with_cuda and cuda_toolkit() is None:
        raise AvvpError("--cuda: no CUDA toolkit found (set CUDA_HOME to the folder holding bin/nvcc)")
    if with_cuda:
        os.environ["TORCH_CUDA_ARCH_LIST"] = cuda_archs()  # what the key says is what nvcc builds
    key = build_key(with_cuda)
    directory = cache_home() / "ext" / key
    directory.mkdir(parents=True, exist_ok=True)
    sources = [str(f) for f in source_files() if f.suffix in (".cpp", ".cu") and (with_cuda or f.suffix == ".cpp")]
    try:
        cpp_extension.load(name=f"avvp_pool_{key}", sources=sources, build_directory=str(directory),
                           extra_cflags=["-O3"], extra_cuda_cflags=["-O3", "--use_fast_math"] if with_cuda else None,
                           with_cuda=with_cuda, is_python_module=False, verbose=verbose)
    except (RuntimeError, OSError, ImportError) as exc:
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        cause = next((line.strip() for line in lines if "error" in line.lower() and "Error building" not in line), lines[0])
        raise AvvpError(f"building the fused pooling op failed: {cause[:300]} (rerun with --verbose)") from None
    _state.update(loaded=True, with_cuda=with_cuda)
    _register_python_parts()
    return directory


def _built_library() -> tuple[Path, bool] | None:
    """The library in the cache for these sources and this torch (with CUDA first). A
    prebuilt CUDA library loads without nvcc: only a CUDA-enabled torch is needed."""
    for with_cuda in ((True, False) if torch.version.cuda else (False,)):
        key = build_key(with_cuda)
        lib = cache_home() / "ext" / key / f"avvp_pool_{key}.so"
        if lib.is_file():
            return lib, with_cuda
    return None


def load(build_if_missing: bool = False) -> bool:
    """Load the op from the cache (building it first if asked); ``False`` if unavailable."""
    if _state["loaded"]:
        return True
    if _state.get("missing") and not build_if_missing:
        return False  # looked once already: the fallback path must not hash the sources per call
    found = _built_library()
    try:
        if found is not None:
            torch.ops.load_library(str(found[0]))
            _state.update(loaded=True, with_cuda=found[1])
            _register_python_parts()
            return True
        if build_if_missing:
            build()
            return True
    except (AvvpError, OSError, RuntimeError) as exc:
        _state["why"] = (str(exc).splitlines() or [type(exc).__name__])[0][:200]  # said in the fallback note
    _state["missing"] = True
    return False


def _register_python_parts() -> None:
    if _state.get("registered"):
        return

    @torch.library.register_fake(OP)
    def _fake(x, weight, bias):
        n, t, _, _ = x.shape
        c = weight.shape[0] // 3
        acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        return (x.new_empty(n, c), x.new_empty(n, c), x.new_empty(n, c), x.new_empty(n, t, 2, c),
                x.new_empty(n, t, 2, 3 * c, dtype=acc))

    @torch.library.register_fake("avvp::attentive_pool_backward")
    def _fake_backward(logits, g_video, g_audio, g_visual, g_frame):
        return torch.empty_like(logits)

    def setup_context(ctx, inputs, output):
        x, weight, _ = inputs
        ctx.save_for_backward(x, weight, output[4])

    def backward(ctx, g_video, g_audio, g_visual, g_frame, g_logits):
        x, weight, logits = ctx.saved_tensors
        n, t, _, d = x.shape
        c = weight.shape[0] // 3
        zeros = lambda *shape: x.new_zeros(shape)  # noqa: E731
        g_logit = torch.ops.avvp.attentive_pool_backward(
            logits, zeros(n, c) if g_video is None else g_video, zeros(n, c) if g_audio is None else g_audio,
            zeros(n, c) if g_visual is None else g_visual, zeros(n, t, 2, c) if g_frame is None else g_frame)
        if g_logits is not None:
            g_logit = g_logit + g_logits
        flat = g_logit.to(x.dtype).reshape(-1, 3 * c)
        return (flat @ weight).reshape(x.shape), flat.t() @ x.reshape(-1, d), flat.sum(dim=0)

    torch.library.register_autograd(OP, backward, setup_context=setup_context)
    _state["registered"] = True


def attentive_pool(x: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The fused op when built for ``x``'s device, else the torch reference (said once)."""
    if load() and (x.device.type == "cpu" or _state.get("with_cuda", True)):
        video, audio, visual, frame_prob, _ = torch.ops.avvp.attentive_pool(x, weight, bias)
        return video, audio, visual, frame_prob
    if not _state["noted"]:
        _state["noted"] = True
        why = f"it failed to load: {_state['why']}" if _state["why"] else "it is not built (avvp-export build-ext)"
        log.info(f"avvp-stream: the fused pooling op is not used ({why}); using the torch reference")
    return reference(x, weight, bias)
