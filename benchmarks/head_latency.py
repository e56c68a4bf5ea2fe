"""HAN head latency per backend against the eager reference, in the same run, and the
attentive pooling alone: the fused op against its torch definition.

Head: batch 1, window 10 (the live case), frame-averaged inputs, p50 / p99 over
``--iters`` calls after warm-up, through each backend's ``head`` (numpy in, numpy out, so
host transfers count as they do in the parser). Every backend recomputes the whole
window here (ONNX Runtime: the folded head as one graph). Streaming: the windows of a
stream, one new snippet each, as the parser sends them live; ONNX Runtime's default
backend then computes each snippet's rows once (``row_cache``), eager recomputes them.
Offline: the 51 windows of a 60 s file fed as the parser feeds a file (snippets in
batches of 8, each call the windows that ended in it, the row cache kept between calls
and cleared per file). Pooling: x (N, 10, 2, 512) -> the four
outputs, forward only, at N = 1 and N = 65536 (on a CPU ``--big`` defaults to 8192),
against two floors: reading x once (half a copy of x), and the GEMM of the op's
projection alone (cuBLAS on a GPU, about 37 FLOP per byte of x: compute bound).
Also the share of the head spent in the per-snippet input projections, which bounds what
caching them across overlapping windows could save.

    python benchmarks/head_latency.py [--device cpu|cuda] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from avvp_stream.backends import create, unavailable_reason
from avvp_stream.backends.onnxruntime_backend import OnnxRuntimeBackend
from avvp_stream.backends.onnx_cache import cached_head
from avvp_stream.head import fused_pool as ops
from avvp_stream.model import HAN
from timing import sample_times
from train_speed import cpu_flags


def timed(fn, iters: int, sync) -> tuple[float, float]:
    """p50 and p99 in ms."""
    times = sample_times(fn, iters, sync, warmup=max(3, iters // 10))
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--big", type=int, default=None, help="large pooling batch (default 65536 GPU, 8192 CPU)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    model = HAN().eval().to(device)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((1, 10, d)).astype(np.float32) for d in (128, 2048, 512)]
    built = ops.load(build_if_missing=True)
    results: dict = {"device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({cpu_flags()})",
                     "threads": torch.get_num_threads(), "fused_op_built": built, "head": {}, "pooling": {}}

    # The official MMIL_Net (official_han.py: nn.MultiheadAttention in the official module
    # layout, fc_v on all 80 frames then averaged, the modalities through the layer one
    # after the other; tests/test_model.py checks it against the golden outputs) on the
    # same weights.
    from official_han import official_like  # beside this script, like timing.py

    official = official_like(model)
    frames = torch.from_numpy(np.repeat(inputs[1], 8, axis=1)).to(device)
    official_in = (torch.from_numpy(inputs[0]).to(device), frames, torch.from_numpy(inputs[2]).to(device))
    with torch.inference_mode():
        p50, p99 = timed(lambda: official(*official_in), args.iters, sync)
    results["head"]["official_eager"] = {"p50_ms": p50, "p99_ms": p99}
    print(f"head {'official':12s} p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  (official MMIL_Net, nn.MultiheadAttention)")

    reference = None
    backends = {}
    for name in ("torch", "torch+fused", "onnxruntime", "cuda-graph", "tensorrt", "tensorrt-fp16"):
        base = name.split("+")[0]
        reason = unavailable_reason(base, device.type)
        if reason or (name == "torch+fused" and not built):
            results["head"][name] = {"skipped": reason or "fused op not built"}
            print(f"head {name:12s} skipped: {results['head'][name]['skipped']}")
            continue
        m = HAN().eval().to(device)
        m.load_state_dict(model.state_dict())
        m.fused_pooling = name == "torch+fused"
        if name == "onnxruntime":  # the whole folded graph: a full recompute, like the others
            backends["onnxruntime-stream"] = create(base, m, device)
            backend = OnnxRuntimeBackend(cached_head(m))
        else:
            backend = create(base, m, device)
        backends[name] = backend
        out = backend.head(*inputs)
        if reference is None:
            reference = out
        diff = max(float(np.abs(a - b).max()) for a, b in zip(out, reference))
        p50, p99 = timed(lambda b=backend: b.head(*inputs), args.iters, sync)
        results["head"][name] = {"p50_ms": p50, "p99_ms": p99, "max_abs_diff_vs_eager": diff}
        print(f"head {name:12s} p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  speed-up vs eager {results['head']['torch']['p50_ms'] / p50:5.2f}x"
              f", vs official {results['head']['official_eager']['p50_ms'] / p50:5.2f}x  max |diff| vs eager {diff:.1e}", flush=True)

    # Streaming: consecutive windows of one stream, each with one new snippet.
    stream = [rng.standard_normal((args.iters + 120, d)).astype(np.float32) for d in (128, 2048, 512)]
    results["stream"] = {}
    for name in ("torch", "onnxruntime-stream", "cuda-graph", "tensorrt"):
        if name not in backends:
            continue
        starts = iter(range(len(stream[0]) - 10))

        def next_window(backend=backends[name]):
            i = next(starts)
            return backend.head(*(a[None, i:i + 10] for a in stream))

        p50, p99 = timed(next_window, args.iters, sync)
        results["stream"][name] = {"p50_ms": p50, "p99_ms": p99}
        print(f"stream {name:18s} p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  speed-up vs eager "
              f"{results['stream']['torch']['p50_ms'] / p50:5.2f}x, vs official {results['head']['official_eager']['p50_ms'] / p50:5.2f}x",
              flush=True)

    # Offline: a 60 s file fed as the parser feeds it: snippets in batches of 8, each call
    # running the windows that ended in that batch, the row cache kept between calls (and
    # cleared between files). Timed per file (51 windows).
    offline_calls = []
    for first in range(10, 61, 8):
        ends = range(first, min(first + 8, 61))
        offline_calls.append([np.stack([a[e - 10:e] for e in ends]) for a in stream])
    keys_of = [[[(0, p) for p in range(e - 10, e)] for e in range(first, min(first + 8, 61))]
               for first in range(10, 61, 8)]
    results["offline_51_windows"] = {}
    for name in ("torch", "onnxruntime", "onnxruntime-stream"):
        if name not in backends:
            continue
        backend = backends[name]

        def batch(backend=backend):
            if getattr(backend, "cache", None) is not None:
                backend.cache.clear()  # a new file
            for inputs, keys in zip(offline_calls, keys_of):
                backend.head(*inputs, keys=keys)

        p50 = timed(batch, max(10, args.iters // 20), sync)[0]
        results["offline_51_windows"][name] = {"p50_ms": p50}
        print(f"offline 51 windows {name:18s} p50 {p50:8.2f} ms  speed-up vs eager "
              f"{results['offline_51_windows']['torch']['p50_ms'] / p50:5.2f}x", flush=True)

    # Input projections (per snippet, the part an incremental cache could reuse) vs the whole head.
    x = [torch.from_numpy(a).to(device) for a in inputs]
    with torch.inference_mode():
        proj = timed(lambda: model.embed(*x), args.iters, sync)[0]
        whole = timed(lambda: model(*x), args.iters, sync)[0]
    results["input_projection_share"] = proj / whole
    print(f"input projections: {proj:.3f} of {whole:.3f} ms of the eager head ({100 * proj / whole:.0f}%)")

    big = args.big or (65536 if device.type == "cuda" else 8192)
    for n in (1, big):
        g = torch.Generator().manual_seed(n)
        xp = torch.randn(n, 10, 2, 512, generator=g).to(device)
        w = (torch.randn(75, 512, generator=g) * 512 ** -0.5).to(device)
        b = torch.randn(75, generator=g).to(device)
        row = {}
        with torch.inference_mode():
            row["torch_ms"] = timed(lambda: ops.reference(xp, w, b), max(20, args.iters // (10 if n > 1 else 1)), sync)[0]
            if built:
                row["fused_ms"] = timed(lambda: torch.ops.avvp.attentive_pool(xp, w, b), max(20, args.iters // (10 if n > 1 else 1)), sync)[0]
            # The projection inside the op is a GEMM of (20N, 512) by (512, 75), about 37 FLOP
            # per byte of x: compute bound, so the GEMM library's time is the other floor.
            x2 = xp.reshape(-1, 512)
            row["gemm_ms"] = timed(lambda: torch.addmm(b, x2, w.T), max(20, args.iters // (10 if n > 1 else 1)), sync)[0]
        bytes_moved = xp.numel() * 4 + n * 10 * 2 * 25 * 4 + 3 * n * 25 * 4
        row["bytes"] = bytes_moved
        row["flops"] = 2 * x2.shape[0] * 512 * 75
        row["flop_per_byte"] = row["flops"] / bytes_moved
        # The floor: reading x once, measured as half of a copy of x (read + write) on this device.
        scratch = torch.empty_like(xp)
        copy_ms = timed(lambda: scratch.copy_(xp), max(20, args.iters // 10), sync)[0]
        row["bandwidth_floor_ms"] = copy_ms / 2
        results["pooling"][str(n)] = row
        fused = f"fused {row['fused_ms']:.3f} ms ({row['torch_ms'] / row['fused_ms']:.2f}x)" if "fused_ms" in row else "fused: not built"
        print(f"pooling N={n:6d}: torch {row['torch_ms']:.3f} ms, {fused}; floors: read x once {copy_ms / 2:.3f} ms, "
              f"the projection's GEMM alone {row['gemm_ms']:.3f} ms ({row['flop_per_byte']:.0f} FLOP/byte)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
