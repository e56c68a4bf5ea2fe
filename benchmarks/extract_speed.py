"""Feature extraction cost per 1 s snippet: eager fp32 reference vs our default, per
network; batch throughput in video-seconds per second; and the fast live profiles
(fewer ResNet-152 frames per snippet) with their deviation from the full profile.

Random-initialised networks (no weights can be downloaded here): costs are those of the
real architectures; the cosine similarities are measured on a real LLP clip but with
random weights, so they indicate, not prove, the deviation with the released weights.

    python benchmarks/extract_speed.py [--device cpu|cuda] [--clip PATH] [--real-weights] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from avvp_stream.features.extractor import FeatureExtractor
from avvp_stream.sources.clip import decode_clip
from timing import sample_times

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared" / "llp" / "BjCEufrlXm4.mp4"


def timed(fn, repeats: int, sync) -> float:
    return float(np.median(sample_times(fn, repeats, sync)))


def per_network(fx: FeatureExtractor, audio, frames, repeats, sync) -> dict:
    """Seconds per snippet of each network (with its preprocessing), batch of len(frames),
    through the extractor's own per-feature steps."""
    n = frames.shape[0]
    fr = torch.as_tensor(frames).to(fx.device)
    wave = torch.as_tensor(audio).to(fx.device)

    def step(spec):
        with torch.inference_mode():
            x = spec.prepare(wave, 1)[:, 0] if spec.consumes == "audio" else fx.prepare(spec, fr)
            fx.run(spec, x.to(torch.float32) if spec.consumes == "audio" else x)

    return {spec.network: timed(lambda s=spec: step(s), repeats, sync) / n for spec in fx.specs}


def cosine(a: np.ndarray, b: np.ndarray, centered: bool = False) -> float:
    """Mean per-snippet cosine similarity; ``centered`` first removes the clip's mean
    feature, so only the snippet-to-snippet variation (what parsing needs) is compared."""
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    if centered:
        a, b = a - a.mean(0), b - b.mean(0)
    return float(np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--snippets", type=int, default=4, help="snippets per timed batch")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--real-weights", action="store_true",
                    help="use the released weights (cache or download) instead of random ones")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    clip = decode_clip(args.clip)
    n = args.snippets
    audio = clip.audio[: n * 16000].reshape(n, 16000)
    frames = clip.frames[: n * 8].reshape(n, 8, *clip.frames.shape[1:])
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    results = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
               "threads": torch.get_num_threads(), "snippets_per_batch": n}

    reference = FeatureExtractor(device=args.device, random_weights=not args.real_weights, fast=False, seed=0)
    ours = FeatureExtractor(device=args.device, random_weights=not args.real_weights, fast=True, seed=0)
    for name, fx in (("eager_fp32", reference), ("default", ours)):
        costs = per_network(fx, audio, frames, args.repeats, sync)
        costs["snippet_total"] = sum(costs.values())
        results[name] = costs
        print(f"{name:10s} per snippet: " + "  ".join(f"{k} {v * 1000:.0f} ms" for k, v in costs.items()))
    results["default_speedup"] = results["eager_fp32"]["snippet_total"] / results["default"]["snippet_total"]

    # Whole-clip throughput (10 s LLP clip, as `avvp-train extract` runs it).
    t0 = time.perf_counter()
    full = ours.clip(clip.audio, clip.frames)
    sync()
    results["clip_video_seconds_per_second"] = 10.0 / (time.perf_counter() - t0)
    print(f"whole 10 s clip: {results['clip_video_seconds_per_second']:.2f} video-seconds per second")

    # Fast live profiles: fewer ResNet frames per snippet, deviation from the full profile.
    results["profiles"] = {}
    ref_2d = full.pooled_2d()
    for k in (4, 2, 1):
        fx = FeatureExtractor(device=args.device, random_weights=not args.real_weights, fast=True, seed=0, resnet_frames=k)
        costs = per_network(fx, audio, frames, args.repeats, sync)
        feats = fx.clip(clip.audio, clip.frames)
        cos, cos_c = cosine(feats.pooled_2d(), ref_2d), cosine(feats.pooled_2d(), ref_2d, centered=True)
        results["profiles"][k] = {"snippet_seconds": sum(costs.values()), "resnet_seconds": costs["resnet152"],
                                  "cosine_2d_vs_full": cos, "centered_cosine_2d_vs_full": cos_c}
        print(f"profile resnet_frames={k}: {sum(costs.values()) * 1000:.0f} ms per snippet, "
              f"cosine vs full {cos:.4f} (clip-centred {cos_c:.4f})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
