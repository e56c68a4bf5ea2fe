"""What live input's frame rule costs against LLP's (issue 13).

Files are read with the official rule (ffmpeg's 8 fps conversion, then 80 spread over the
clip); live input keeps the causal rule (the frame nearest to t + k/8), which needs no
later frame. On the real LLP clip this reports which decoded frames each rule takes, how
many agree, how far apart in time the others are, and the cosine between the features of
the two (ResNet-152 per frame and per snippet mean, R(2+1)D-18 per snippet; VGGish reads
the audio, which both rules share). Weights are random (the pretrained ones cannot be
downloaded here), so the cosines say how much the inputs differ through these networks,
not how much a trained model's output moves.

    python benchmarks/frame_rules.py [--clip PATH] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from avvp_stream.features.extractor import FeatureExtractor
from avvp_stream.features.timing import FfmpegRate, clip_picks, nearest_indices
from avvp_stream.sources.clip import decode_clip
from avvp_stream.sources.file import FileSource, frame_duration
from soak import cpu_flags

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared" / "llp" / "BjCEufrlXm4.mp4"


def decoded_times(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import av

    with av.open(str(path)) as c:
        step = 1 / float(c.streams.video[0].guessed_rate)
        frames = [(f.time, frame_duration(f, step)) for f in c.decode(video=0)]
    return np.array([t for t, _ in frames]), np.array([d for _, d in frames])


def cosine(a: np.ndarray, b: np.ndarray, centered: bool = False) -> np.ndarray:
    """Per-row cosine; ``centered`` first removes the clip's mean row (what parsing needs:
    the snippet-to-snippet variation)."""
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    if centered:
        a, b = a - a.mean(0), b - b.mean(0)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    times, durations = decoded_times(args.clip)
    rate = FfmpegRate()
    outputs = [j for i, (t, d) in enumerate(zip(times, durations)) for j in rate.push(t, d, i)]
    official = np.array(outputs)[clip_picks(len(outputs), 80)]
    live = nearest_indices(times, np.arange(80) / 8)
    apart = np.abs(times[official] - times[live])
    differ = np.flatnonzero(official != live)
    print(f"{args.clip.name}: {len(times)} decoded frames, ffmpeg's 8 fps makes {len(outputs)}, 80 taken")
    print(f"official picks (decoded frame): {official[:12].tolist()} ...")
    print(f"live picks     (decoded frame): {live[:12].tolist()} ...")
    print(f"agree on {80 - len(differ)} of 80; the others {apart[differ].min() * 1000:.0f}-"
          f"{apart.max() * 1000:.0f} ms apart (mean {apart[differ].mean() * 1000:.0f} ms)")

    clip = decode_clip(args.clip)
    live_frames = np.concatenate([s.frames for s in FileSource(args.clip, frame_rule="nearest")])
    fx = FeatureExtractor(device="cpu", random_weights=True, seed=0)
    a = fx.clip(clip.audio, clip.frames)
    b = fx.clip(clip.audio, live_frames)
    rows = {
        "resnet152 per frame": (a.video_2d.reshape(80, -1), b.video_2d.reshape(80, -1)),
        "resnet152 snippet mean": (a.pooled("video_2d"), b.pooled("video_2d")),
        "r2plus1d_18 per snippet": (a.video_3d, b.video_3d),
        "vggish per snippet": (a.audio, b.audio),
    }
    report = {"clip": args.clip.name, "cpu": cpu_flags(), "decoded": len(times), "ffmpeg_outputs": len(outputs),
              "official": official.tolist(), "live": live.tolist(), "agree": int(80 - len(differ)),
              "ms_apart_max": float(apart.max() * 1000), "ms_apart_mean_of_differing": float(apart[differ].mean() * 1000),
              "cosine": {}}
    print(f"{'features (random weights)':26s} {'cosine min':>10s} {'mean':>7s} {'centred min':>12s} {'mean':>7s}")
    for name, (x, y) in rows.items():
        c, cc = cosine(x, y), cosine(x, y, centered=True)
        report["cosine"][name] = {"min": float(c.min()), "mean": float(c.mean()),
                                  "centred_min": float(cc.min()), "centred_mean": float(cc.mean())}
        print(f"{name:26s} {c.min():10.4f} {c.mean():7.4f} {cc.min():12.4f} {cc.mean():7.4f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
