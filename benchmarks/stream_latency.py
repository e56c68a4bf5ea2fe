"""Per-snippet latency of parsing (features + HAN window + aggregation) and the real-time
factor of offline parsing, eager reference vs our settings, in the same run.

Latency: a file is fed one snippet at a time with lookahead 0 (the live setting); for
each snippet, the time from the moment its last sample and frame were decoded to its
final labels. Offline: the whole clip parsed in batches with full windows; real-time
factor = compute seconds / media seconds (below 1 is faster than real time).
Random-initialised networks (no weights can be downloaded here): costs are those of the
real architectures.

    python benchmarks/stream_latency.py [--clip PATH] [--device cpu] [--json out.json]
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
from avvp_stream.sources.file import FileSource

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared" / "llp" / "BjCEufrlXm4.mp4"
SETTINGS = {
    "eager_fp32": dict(fast=False, resnet_frames=8),
    "default": dict(fast=True, resnet_frames=8),
    "live_cpu_profile": dict(fast=True, resnet_frames=2),
}


def live_latencies(path: Path, extractor: FeatureExtractor, model: HAN) -> list[float]:
    parser = OnlineParser(model, CommitPolicy(window=10, lookahead=0), device=extractor.device)
    latencies = []
    for snippet in FileSource(path):
        ready = time.perf_counter()
        f = extractor.snippets(snippet.audio[None], snippet.frames[None])
        parser.insert_snippet(f.audio[0], f.video_2d[0], f.video_3d[0])
        finals = [r for r in parser.process() if r.final]
        if extractor.device.type == "cuda":
            torch.cuda.synchronize()
        assert [r.index for r in finals] == [snippet.index]
        latencies.append(time.perf_counter() - ready)
    return latencies


def offline_rtf(path: Path, extractor: FeatureExtractor, model: HAN, batch: int = 10) -> float:
    t0 = time.perf_counter()
    parser = OnlineParser(model, CommitPolicy(10, 9, full_windows_only=True), device=extractor.device)
    snippets = list(FileSource(path))
    finals = 0
    for i in range(0, len(snippets), batch):
        group = snippets[i:i + batch]
        f = extractor.snippets(np.stack([s.audio for s in group]), np.stack([s.frames for s in group]))
        for a, v, s in zip(f.audio, f.video_2d, f.video_3d):
            parser.insert_snippet(a, v, s)
        finals += sum(r.final for r in parser.process())
    finals += sum(r.final for r in parser.finish())
    assert finals == len(snippets)
    return (time.perf_counter() - t0) / len(snippets)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = HAN().eval().to(args.device)
    results = {"device": args.device, "threads": torch.get_num_threads(), "clip": args.clip.name}
    for name, kw in SETTINGS.items():
        fx = FeatureExtractor(device=args.device, random_weights=True, seed=0, **kw)
        live_latencies(args.clip, fx, model)  # warm-up pass
        lat = live_latencies(args.clip, fx, model)
        rtf = offline_rtf(args.clip, fx, model)
        results[name] = {"latency_p50_s": float(np.percentile(lat, 50)), "latency_p99_s": float(np.percentile(lat, 99)),
                         "offline_real_time_factor": rtf}
        print(f"{name:17s} latency p50 {results[name]['latency_p50_s']:.2f} s  p99 {results[name]['latency_p99_s']:.2f} s  "
              f"offline real-time factor {rtf:.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
