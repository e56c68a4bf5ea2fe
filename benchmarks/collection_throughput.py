"""Whole collections: video-seconds parsed per second by ``avvp-stream batch`` in this
process, and on a local Ray instance with 1 and 2 feature actors, in one run; Ray's
overhead per video; and the CPU cost of decoding a video-second (what sizes the CPUs a
GPU node needs).

Videos are generated (PyAV): ``--videos`` clips of ``--seconds`` s at 320x240 and 30 fps
with sound, like LLP's. Every network has random weights (``--random-weights``; the
pretrained ones cannot be downloaded here), which costs the same as real weights.

    python benchmarks/collection_throughput.py [--videos 8] [--seconds 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from avvp_stream.collection import ParseStages, parse_collection  # noqa: E402
from media import make_media  # noqa: E402
from soak import cpu_flags  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="avvp_collection_"))
    os.environ.setdefault("AVVP_STREAM_HOME", str(work / "home"))
    videos = work / "videos"
    videos.mkdir()
    for i in range(args.videos):
        make_media(videos / f"v{i:03d}.mp4", args.seconds, size=(320, 240), fps=30, tone_hz=300.0 + 50 * i)
    media_seconds = args.videos * args.seconds
    report = {"cpu": cpu_flags(), "cores": os.cpu_count(), "videos": args.videos, "seconds": args.seconds, "runs": {}}

    # decoding alone, one thread (as a Ray decode task runs it)
    t0 = time.perf_counter()
    for path in sorted(videos.iterdir()):
        for part in ParseStages(10, 32).decode(str(path), threads=1):
            assert not part.error, part.error
    decode = time.perf_counter() - t0
    report["decode_cpu_seconds_per_video_second"] = decode / media_seconds
    print(f"decode (1 thread): {decode / media_seconds * 1000:.1f} ms per video-second")

    for name, ray, actors in (("local", None, None), ("ray, 1 actor", "local", 1), ("ray, 2 actors", "local", 2)):
        out = work / name.replace(" ", "_").replace(",", "")
        t0 = time.perf_counter()
        summary = parse_collection(str(videos), out, random_weights=True, device="cpu", backend="torch",
                                   batch=args.batch, ray_address=ray, actors=actors, log=lambda msg: None)
        wall = time.perf_counter() - t0
        assert len(summary.done) == args.videos, summary.failed
        report["runs"][name] = {"wall_seconds": wall, "video_seconds_per_second": media_seconds / wall}
        print(f"{name:14s}: {wall:6.1f} s, {media_seconds / wall:5.2f} video-seconds/s", flush=True)
    local = report["runs"]["local"]["wall_seconds"]
    report["ray_overhead_seconds_per_video"] = (report["runs"]["ray, 1 actor"]["wall_seconds"] - local) / args.videos
    print(f"Ray's overhead (1 actor against local): {report['ray_overhead_seconds_per_video']:.2f} s per video")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
