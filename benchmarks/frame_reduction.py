"""Frames reduced as they are decoded: what it saves in memory and what it costs in features.

Memory: the peak resident memory (the child's ``ru_maxrss``) of ``avvp-stream FILE`` and of
``avvp-train extract FOLDER`` on 3 s clips of 3840x2160 and of 320x240, same networks
(random weights), same settings. Target: 4K within 1.5x of 320x240.

Features: one clip at 1920x1080 and one at 320x240 (moving gradient with per-pixel noise,
the hardest case for a reduction), each parsed twice by the same extractor: frames reduced
at decode (the default, shorter side 480) and frames at full resolution (the reference).
Reported per network: the clip-centred cosine (each feature minus the clip's mean
feature, then the cosine per snippet or frame; 1 = identical) and the largest absolute
difference relative to the reference's scale. 320x240 is below the bound, so it must be
exactly equal.

    python benchmarks/frame_reduction.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from soak import cpu_flags, make_video

SIZES = {"4K": (3840, 2160), "320x240": (320, 240)}


def peak_rss_mb(cmd: list[str]) -> tuple[float, int]:
    """Peak RSS of one child process (wait4 gives that child's own rusage)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode not in (0,):
        print(err[-1500:], file=sys.stderr)
    return usage.ru_maxrss / 1024, proc.returncode


def centred_cosine(x: np.ndarray, ref: np.ndarray) -> float:
    """Smallest cosine over rows after removing the reference clip's mean feature (rows
    equal to the mean, as for a steady tone, count as 1 when they match)."""
    x = x.reshape(-1, x.shape[-1]).astype(np.float64)
    ref = ref.reshape(-1, ref.shape[-1]).astype(np.float64)
    x, ref = x - ref.mean(0), ref - ref.mean(0)
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(ref, axis=1)
    cos = np.where(norms > 1e-12, (x * ref).sum(1) / np.maximum(norms, 1e-12), np.all(np.isclose(x, ref), axis=1))
    return float(cos.min())


def features(path: Path, extractor, max_short_side):
    from avvp_stream.sources.file import FileSource

    snippets = list(FileSource(path, max_short_side=max_short_side))
    return extractor.snippets(np.stack([s.audio for s in snippets]), np.stack([s.frames for s in snippets]))


def upscaled(src: Path, dst: Path, size: tuple[int, int], seconds: float) -> Path:
    """``src``'s first seconds scaled up (bicubic) to ``size``: natural content at HD."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vs = out.add_stream("libx264", rate=25, options={"crf": "12", "preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        for i, frame in enumerate(inp.decode(vin)):
            if frame.time is not None and frame.time >= seconds:
                break
            big = frame.reformat(width=size[0], height=size[1], format="yuv420p", interpolation="BICUBIC")
            big.pts, big.time_base = i, Fraction(1, 25)
            for packet in vs.encode(big):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--bounds", type=lambda v: [int(b) for b in v.split(",")], default=[480],
                    help="shorter-side bounds to compare with full resolution (comma-separated)")
    ap.add_argument("--clip", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "llp" / "BjCEufrlXm4.mp4")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="avvp-frames-"))
    bindir = Path(sys.executable).parent
    stream = str(bindir / "avvp-stream") if (bindir / "avvp-stream").exists() else shutil.which("avvp-stream")
    train = str(bindir / "avvp-train") if (bindir / "avvp-train").exists() else shutil.which("avvp-train")
    results: dict = {"cpu": cpu_flags(), "cores": os.cpu_count(), "seconds": args.seconds, "peak_rss_mb": {},
                     "features": {}}

    # Memory first, while this process is small: a child's ru_maxrss starts from its
    # parent's high-water mark at fork. The real console scripts, one clip / a folder of
    # two clips per size.
    for name, size in ({} if args.skip_memory else SIZES).items():
        folder = work / f"folder_{name}"
        folder.mkdir()
        for i in range(2):
            make_video(folder / f"clip{i}.mp4", args.seconds / 60, size, 30, audio=True)
        rss_stream, code_s = peak_rss_mb([stream, str(folder / "clip0.mp4"), "--random-weights", "--backend", "torch",
                                          "--format", "jsonl"])
        rss_extract, code_e = peak_rss_mb([train, "extract", str(folder), str(work / f"feats_{name}"),
                                           "--random-weights", "--seconds", str(int(args.seconds)), "--device", "cpu"])
        results["peak_rss_mb"][name] = {"avvp-stream": round(rss_stream), "avvp-train extract": round(rss_extract),
                                        "exit": [code_s, code_e]}
        print(f"peak RSS {name:8s} avvp-stream {rss_stream:7.0f} MB   avvp-train extract {rss_extract:7.0f} MB", flush=True)
    if not args.skip_memory:
        big, small = results["peak_rss_mb"]["4K"], results["peak_rss_mb"]["320x240"]
        results["ratio_4k_to_320x240"] = {k: round(big[k] / small[k], 3) for k in ("avvp-stream", "avvp-train extract")}
        print("4K / 320x240:", results["ratio_4k_to_320x240"], "(target < 1.5)", flush=True)

    # Features: reduced at decode vs full resolution, same extractor.
    from avvp_stream.features.extractor import FeatureExtractor

    extractor = FeatureExtractor(device="cpu", random_weights=True, seed=0)
    clips = {name: make_video(work / f"feat_{name}.mp4", args.seconds / 60, size, 25, audio=True)
             for name, size in {"1080p noise": (1920, 1080), "320x240 noise": (320, 240)}.items()}
    if args.clip and args.clip.exists():  # natural content: the real LLP clip, upscaled to 1080p
        clips["1080p LLP clip"] = upscaled(args.clip, work / "llp_1080p.mp4", (1920, 1080), args.seconds)
    for name, clip in clips.items():
        full = features(clip, extractor, None)
        for bound in args.bounds:
            reduced = features(clip, extractor, bound)
            row = {}
            for net, a, b in (("resnet152", reduced.video_2d, full.video_2d),
                              ("r2plus1d_18", reduced.video_3d, full.video_3d), ("vggish", reduced.audio, full.audio)):
                scale = float(np.abs(b).max()) or 1.0
                row[net] = {"centred_cosine_min": round(centred_cosine(a, b), 6),
                            "max_abs_diff_rel": float(np.abs(a - b).max() / scale)}
            results["features"][f"{name}, shorter side {bound}"] = row
            print(f"features {name:15s} -> {bound}: " + "  ".join(
                f"{k}: cos {v['centred_cosine_min']:.4f}, max|d| {v['max_abs_diff_rel']:.1e}" for k, v in row.items()),
                flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
