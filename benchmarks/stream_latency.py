"""Per-snippet latency of parsing (features + HAN window + aggregation) and the real-time
factor of offline parsing, eager reference vs our settings, in the same run.

Latency: a file is fed one snippet at a time with lookahead 0 (the live setting); for
each snippet, the time from the moment its last sample and frame were decoded to its
final labels. Offline: the whole clip parsed in batches with full windows; real-time
factor = compute seconds / media seconds (below 1 is faster than real time).
Live: the clip played as a camera (OpenCV, at its frame rate) through ``LiveSource`` and
the same pipeline as ``avvp-stream --source camera``: per snippet, host time from the end
of its second to its final labels being written (this includes waiting for the second's
last frame and any queueing), and how many snippets the skip policy dropped.
Random-initialised networks (no weights can be downloaded here): costs are those of the
real architectures. ``--synthetic`` feeds ten 1 s snippets of noise (360x640 frames)
instead of the clip, as if already decoded: for machines without PyAV (the lent GPU).

    python benchmarks/stream_latency.py [--clip PATH] [--device cpu|cuda] [--json out.json] [--no-live] [--synthetic]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from avvp_stream.features.extractor import FeatureExtractor
from avvp_stream.model import HAN
from avvp_stream.parser import CommitPolicy, OnlineParser
from avvp_stream.sources.file import FileSource, Snippet

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared" / "llp" / "BjCEufrlXm4.mp4"
SETTINGS = {
    "eager_fp32": dict(fast=False, resnet_frames=8),
    "default": dict(fast=True, resnet_frames=8),
    "onnxruntime": dict(fast=True, resnet_frames=8, engine="onnxruntime"),
    "onnxruntime_int8": dict(fast=True, resnet_frames=8, engine="onnxruntime", int8=True),
    "live_cpu_profile": dict(fast=True, resnet_frames=2),
    "live_cpu_profile_onnxruntime": dict(fast=True, resnet_frames=2, engine="onnxruntime"),
    "cuda_graph": dict(fast=True, resnet_frames=8, engine="cuda-graph"),  # GPU only
}


def build(kw: dict, model: HAN, device: str):
    """(extractor, head backend) of a setting: torch eager, or ONNX Runtime for both."""
    from avvp_stream.backends import create, get

    kw = dict(kw)
    engine, int8 = kw.pop("engine", "torch"), kw.pop("int8", False)
    fx = FeatureExtractor(device=device, random_weights=True, seed=0, **kw)
    if engine == "onnxruntime":
        fx.use_onnxruntime(int8=int8)
    elif engine != "torch":
        fx.use_networks(get(engine).feature_networks(fx))
    return fx, create(engine, model, device)


def synthetic_snippets(n: int = 10, size: tuple[int, int] = (360, 640)) -> list[Snippet]:
    rng = np.random.default_rng(0)
    return [Snippet(i, float(i), rng.uniform(-0.5, 0.5, 16000).astype(np.float32),
                    rng.integers(0, 256, (8, *size, 3), dtype=np.uint8), 0.0) for i in range(n)]


def snippets_of(path) -> list[Snippet]:
    return synthetic_snippets() if path is None else list(FileSource(path))


def live_latencies(path: Path, extractor: FeatureExtractor, model) -> list[float]:
    parser = OnlineParser(model, CommitPolicy(window=10, lookahead=0), device=extractor.device)
    latencies = []
    for snippet in snippets_of(path):
        ready = time.perf_counter()
        f = extractor.snippets(snippet.audio[None], snippet.frames[None])
        parser.insert_snippet(f.audio[0], f.video_2d[0], f.video_3d[0])
        finals = [r for r in parser.process() if r.final]
        if extractor.device.type == "cuda":
            torch.cuda.synchronize()
        assert [r.index for r in finals] == [snippet.index]
        latencies.append(time.perf_counter() - ready)
    return latencies


def offline_rtf(path: Path, extractor: FeatureExtractor, model, batch: int = 10) -> float:
    """Compute seconds per media second of a whole-file parse, after one untimed pass
    (first calls pay for allocation, kernel selection and graph capture)."""
    snippets = snippets_of(path)
    _offline_pass(snippets, extractor, model, batch)
    t0 = time.perf_counter()
    _offline_pass(snippets, extractor, model, batch)
    return (time.perf_counter() - t0) / len(snippets)


def _offline_pass(snippets, extractor: FeatureExtractor, model, batch: int) -> None:
    parser = OnlineParser(model, CommitPolicy(10, 9, full_windows_only=True), device=extractor.device)
    finals = 0
    for i in range(0, len(snippets), batch):
        group = snippets[i:i + batch]
        f = extractor.snippets(np.stack([s.audio for s in group]), np.stack([s.frames for s in group]))
        for a, v, s in zip(f.audio, f.video_2d, f.video_3d):
            parser.insert_snippet(a, v, s)
        finals += sum(r.final for r in parser.process())
    finals += sum(r.final for r in parser.finish())
    assert finals == len(snippets)


class _Latencies:
    """A writer that keeps emit - capture for every final snippet."""

    def __init__(self):
        self.values: list[float] = []

    def snippet(self, index, start, labels, final, captured_at, **_):
        if final:
            self.values.append(time.time() - captured_at)

    def event(self, ev):
        pass


def live_camera_run(path: Path, extractor: FeatureExtractor, model) -> tuple[list[float], int, int]:
    from avvp_stream.pipeline import parse_snippets
    from avvp_stream.sources.live import LiveSource

    parser = OnlineParser(model, CommitPolicy(window=10, lookahead=0), device=extractor.device)
    src = LiveSource(camera=str(path), policy="skip")
    out = _Latencies()
    src.start()
    try:
        parse_snippets(src.batches(8), extractor, parser, out)
    finally:
        src.stop()
    return out.values, src.stats.snippets, src.stats.dropped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-live", action="store_true", help="skip the live camera runs")
    ap.add_argument("--only", nargs="*", choices=list(SETTINGS), help="run only these settings")
    ap.add_argument("--synthetic", action="store_true", help="decoded noise instead of the clip (no PyAV needed); no live runs")
    args = ap.parse_args()
    clip = None if args.synthetic else args.clip
    torch.manual_seed(0)
    model = HAN().eval().to(args.device)
    device_type = torch.device(args.device).type
    results = {"device": torch.cuda.get_device_name() if device_type == "cuda" else "cpu",
               "threads": torch.get_num_threads(), "clip": "synthetic" if clip is None else clip.name}
    for name, kw in SETTINGS.items():
        if args.only and name not in args.only:
            continue
        engine = kw.get("engine", "torch")
        if (engine == "cuda-graph" and device_type != "cuda") or (engine == "onnxruntime" and device_type == "cuda"):
            continue  # CUDA graphs need the GPU; ONNX Runtime is the CPU engine here
        fx, head = build(kw, model, args.device)
        live_latencies(clip, fx, head)  # warm-up pass
        lat = live_latencies(clip, fx, head)
        rtf = offline_rtf(clip, fx, head)
        results[name] = {"latency_p50_s": float(np.percentile(lat, 50)), "latency_p99_s": float(np.percentile(lat, 99)),
                         "offline_real_time_factor": rtf}
        print(f"{name:17s} latency p50 {results[name]['latency_p50_s']:.2f} s  p99 {results[name]['latency_p99_s']:.2f} s  "
              f"offline real-time factor {rtf:.2f}", flush=True)
        if not args.no_live and clip is not None and name in ("default", "live_cpu_profile", "live_cpu_profile_onnxruntime"):
            live, captured, dropped = live_camera_run(clip, fx, head)
            results[name].update(live_latency_p50_s=float(np.percentile(live, 50)),
                                 live_latency_p99_s=float(np.percentile(live, 99)),
                                 live_captured=captured, live_dropped=dropped)
            print(f"{'':17s} live camera: {captured} snippets, {dropped} dropped (skip), emitted latency "
                  f"p50 {np.percentile(live, 50):.2f} s  p99 {np.percentile(live, 99):.2f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
