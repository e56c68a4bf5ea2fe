"""Feature extraction on ONNX Runtime (fp32 and int8-quantised weights) against the torch
eager reference, in the same run: time per snippet and how far the features move.

The real LLP clip (10 snippets, 8 frames each), randomly initialised networks of the real
sizes (no weights can be downloaded here). Deviation per network: relative max |diff|
(max |a - b| / max |b|) and the clip-centred cosine similarity to the torch features.
With random weights these bound the numerical error of the engine; the int8 figures
must be re-measured with the released weights before int8 is trusted for parsing.

    python benchmarks/onnx_features.py [--clip PATH] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from avvp_stream.features.extractor import FeatureExtractor
from avvp_stream.sources.file import FileSource

sys.path.insert(0, str(Path(__file__).parent))
from extract_speed import cosine  # noqa: E402
from stream_latency import DEFAULT_CLIP  # noqa: E402


def run(fx: FeatureExtractor, snippets) -> tuple[dict, float]:
    audio = np.stack([s.audio for s in snippets])
    frames = np.stack([s.frames for s in snippets])
    fx.snippets(audio[:2], frames[:2])  # warm-up
    t0 = time.perf_counter()
    f = fx.snippets(audio, frames)
    per_snippet = (time.perf_counter() - t0) / len(snippets)
    return {"vggish": f.audio, "resnet152": f.pooled_2d(), "r2plus1d_18": f.video_3d}, per_snippet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    snippets = list(FileSource(args.clip))
    results = {"threads": torch.get_num_threads(), "clip": args.clip.name}
    reference = None
    for name, engine, int8 in (("torch_eager", None, False), ("onnxruntime_fp32", "ort", False),
                               ("onnxruntime_int8", "ort", True)):
        fx = FeatureExtractor(device="cpu", random_weights=True, seed=0, fast=False)
        if engine:
            fx.use_onnxruntime(int8=int8)
        feats, seconds = run(fx, snippets)
        row = {"ms_per_snippet": seconds * 1e3}
        if reference is None:
            reference, base = feats, seconds
        else:
            for net in feats:
                a, b = feats[net].astype(np.float64), reference[net].astype(np.float64)
                row[net] = {"relative_max_abs_diff": float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)),
                            "centered_cosine": cosine(a, b, centered=True)}
        row["speed_up"] = base / seconds
        results[name] = row
        devs = ", ".join(f"{n} rel {v['relative_max_abs_diff']:.1e} cos {v['centered_cosine']:.4f}"
                         for n, v in row.items() if isinstance(v, dict))
        print(f"{name:17s} {seconds * 1e3:7.0f} ms/snippet  {base / seconds:4.2f}x  {devs}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
