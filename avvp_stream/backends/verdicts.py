"""``auto`` only trusts engines that proved themselves here.

An accelerated engine is verified against the torch reference (``Engine.verify``: the
head over windows of 1..10 snippets at batch 1 and 8, fixed random inputs) the first time
it would be used, and the verdict is cached beside the engine caches
(``$AVVP_STREAM_HOME/verdicts``), keyed by everything that could change it: the engine, the
device (GPU name, driver, CUDA), torch, ONNX Runtime and TensorRT versions, and the
weights. An engine that fails, or cannot even load its artefacts, is passed over for the
next one, down to torch, with one note that says why.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

from ..paths import atomic_write, cache_home
from .base import Engine, Verification

log = logging.getLogger(__name__)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(device) -> dict:
    """What a verdict depends on besides the engine and the weights."""
    import torch

    env = {"torch": torch.__version__, "onnxruntime": _version("onnxruntime"), "tensorrt": _version("tensorrt"),
           "device": str(device)}
    if torch.device(device).type == "cuda":
        env.update(gpu=torch.cuda.get_device_name(device), capability=list(torch.cuda.get_device_capability(device)),
                   cuda=torch.version.cuda, driver=_driver())
    return env


def _driver() -> str | None:
    try:
        return Path("/proc/driver/nvidia/version").read_text().splitlines()[0]
    except OSError:
        return None


def verdict_path(engine: Engine, model, device) -> Path:
    from .onnx_cache import state_hash

    key = json.dumps({"engine": engine.name, "weights": state_hash(model), **environment(device)}, sort_keys=True)
    return cache_home() / "verdicts" / f"{engine.name}_{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def verified(engine: Engine, model, device, fresh: bool = False) -> Verification:
    """The engine's cached verdict for this model and machine, verifying it first if there
    is none (or ``fresh``). A failure to build or run counts as a failed verification."""
    path = verdict_path(engine, model, device)
    if path.is_file() and not fresh:
        data = json.loads(path.read_text())
        return Verification(**{k: data[k] for k in ("engine", "max_abs_diff", "engine_seconds", "torch_seconds",
                                                    "tolerance")})
    t0 = time.perf_counter()
    try:
        verdict = engine.verify(model, device)
    except Exception as exc:  # an engine that cannot run is an engine that failed
        log.info(f"avvp-stream: {engine.name} could not be verified: {type(exc).__name__}: "
                 f"{(str(exc).splitlines() or [''])[0][:160]}")
        verdict = Verification(engine.name, float("inf"), 0.0, 0.0, engine.tolerance)
    else:
        log.info(f"avvp-stream: verified {engine.name} against torch in {time.perf_counter() - t0:.1f} s "
                 f"(max |diff| {verdict.max_abs_diff:.1e}, tolerance {verdict.tolerance:g}; cached)")
    if verdict.max_abs_diff != float("inf"):  # a load failure may be passing: try again next time
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(asdict(verdict), indent=1) + "\n"))
    return verdict


def trusted(engine: Engine, model, device) -> str | None:
    """Why ``engine`` is not to be trusted here (None if it passed)."""
    if engine.name == "torch":
        return None
    verdict = verified(engine, model, device)
    if verdict.passed:
        return None
    if verdict.max_abs_diff == float("inf"):
        return f"{engine.name} failed to run"
    return f"{engine.name} differs from torch by {verdict.max_abs_diff:.1e} (tolerance {verdict.tolerance:g})"
