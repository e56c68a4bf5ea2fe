"""Soak: does memory stay flat for as long as input lasts?

Two runs of the real console script, each sampled every 10 s for its resident memory
(VmRSS of the process, from /proc):

- live: a generated 640x480, 30 fps video played as a camera (OpenCV, at its frame rate)
  with the full ResNet profile, so that compute is slower than real time on a CPU and the
  skip policy drops snippets all along (the drops are read from the run's summary);
- file: a generated file of 30 minutes or more, parsed offline.

Reported: RSS at warm-up end and at the end, the growth per minute after warm-up (least
squares over the samples after ``--warmup`` seconds; target under 1 MB/min), the peak,
and the drop counts. Random-initialised networks (no weights can be downloaded here).

    python benchmarks/soak.py [--live-minutes 10] [--file-minutes 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

SAMPLE_EVERY = 10.0


def cpu_flags() -> str:
    """The vector extensions that decide CPU speed here (machines differ)."""
    try:
        flags = set(next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split())
    except (OSError, StopIteration):
        return platform.processor() or "unknown"
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"]
    return ", ".join(f for f in wanted if f in flags) or "no AVX2"


def make_video(path: Path, minutes: float, size: tuple[int, int], fps: int, audio: bool) -> Path:
    """A video whose picture changes every frame (a moving gradient with noise) and, if
    asked, a tone that changes pitch every 7 s: decoding costs what real media costs."""
    import av

    width, height = size
    seconds = minutes * 60
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 40, (height, width, 3), dtype=np.uint8)
    ramp = (np.arange(width)[None, :, None] * 255 // max(1, width - 1)).astype(np.uint8)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "tune": "zerolatency"})
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        aus = out.add_stream("aac", rate=16000, layout="mono") if audio else None
        n_frames = int(seconds * fps)
        sample, chunk = 0, 1024
        for i in range(n_frames):
            img = np.roll(ramp, i * 3, axis=1) + noise
            img = np.broadcast_to(img, (height, width, 3)).copy()
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in vs.encode(frame):
                out.mux(packet)
            while aus is not None and sample < (i + 1) * 16000 // fps:
                t = (sample + np.arange(chunk)) / 16000
                hz = 300 + 100 * ((sample // (7 * 16000)) % 5)
                block = (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32)[None]
                af = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
                af.sample_rate, af.pts = 16000, sample
                for packet in aus.encode(af):
                    out.mux(packet)
                sample += chunk
        for stream in (vs, aus):
            if stream is not None:
                for packet in stream.encode(None):
                    out.mux(packet)
    return path


def rss_mb(pid: int) -> float | None:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_sampled(cmd: list[str], env: dict, log: Path) -> tuple[list[tuple[float, float]], int, list[dict], str]:
    """Run ``cmd``; sample its RSS every 10 s. Returns samples (s, MB), exit code, the JSON
    records it printed, and its stderr."""
    with open(log, "w") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)
        samples: list[tuple[float, float]] = []
        start = time.monotonic()
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                mb = rss_mb(proc.pid)
                if mb is not None:
                    samples.append((time.monotonic() - start, mb))
                done.wait(SAMPLE_EVERY)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        done.set()
        sampler.join()
        err.seek(0)
        stderr = err.read()
    records = []
    for line in log.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pass
    return samples, code, records, stderr


def growth(samples: list[tuple[float, float]], warmup: float) -> dict:
    t = np.array([s for s, _ in samples])
    mb = np.array([m for _, m in samples])
    after = t >= warmup
    slope = float(np.polyfit(t[after] / 60, mb[after], 1)[0]) if after.sum() >= 3 else float("nan")
    return {"samples": len(samples), "seconds": round(float(t[-1]), 1) if len(t) else 0.0,
            "rss_at_warmup_mb": round(float(mb[after][0]), 1) if after.any() else None,
            "rss_end_mb": round(float(mb[-1]), 1) if len(mb) else None,
            "rss_peak_mb": round(float(mb.max()), 1) if len(mb) else None,
            "growth_mb_per_min": round(slope, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--live-minutes", type=float, default=10.0)
    ap.add_argument("--file-minutes", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=120.0, help="seconds excluded from the growth fit")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--file-resnet-frames", type=int, default=2,
                    help="ResNet frames per snippet for the file run (2: the fast profile, to fit the time)")
    ap.add_argument("--skip-live", action="store_true")
    ap.add_argument("--skip-file", action="store_true")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    stream = shutil.which("avvp-stream") or str(Path(sys.executable).parent / "avvp-stream")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="avvp-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AVVP_NO_PROGRESS": "1"}
    report: dict = {"cpu": cpu_flags(), "cores": os.cpu_count()}
    print(f"CPU: {report['cpu']}, {report['cores']} cores; work in {work}", flush=True)

    if not args.skip_live:
        video = work / "camera_640x480_30fps.mp4"
        if not video.exists():
            t0 = time.perf_counter()
            make_video(video, args.live_minutes + 1, (640, 480), 30, audio=False)
            print(f"made {video.name} in {time.perf_counter() - t0:.0f} s", flush=True)
        cmd = [stream, "--source", "camera", "--camera", str(video), "--duration", str(args.live_minutes * 60),
               "--random-weights", "--resnet-frames", "8", "--backend", args.backend, "--format", "jsonl"]
        samples, code, records, stderr = run_sampled(cmd, env, work / "live.jsonl")
        summary = next((r for r in records if r.get("kind") == "summary"), {})
        report["live"] = {**growth(samples, args.warmup), "exit": code, "snippets": summary.get("snippets"),
                          "dropped": summary.get("dropped"),
                          "parsed": sum(1 for r in records if r.get("kind") == "snippet" and r.get("final")),
                          "rss": samples}
        print("live:", {k: v for k, v in report["live"].items() if k != "rss"}, flush=True)
        if code != 0:
            print(stderr[-2000:], flush=True)

    if not args.skip_file:
        media = work / f"file_{args.file_minutes:g}min.mp4"
        if not media.exists():
            t0 = time.perf_counter()
            make_video(media, args.file_minutes, (320, 240), 25, audio=True)
            print(f"made {media.name} in {time.perf_counter() - t0:.0f} s", flush=True)
        cmd = [stream, str(media), "--random-weights", "--resnet-frames", str(args.file_resnet_frames),
               "--backend", args.backend, "--format", "jsonl"]
        t0 = time.perf_counter()
        samples, code, records, stderr = run_sampled(cmd, env, work / "file.jsonl")
        wall = time.perf_counter() - t0
        parsed = sum(1 for r in records if r.get("kind") == "snippet")
        report["file"] = {**growth(samples, args.warmup), "exit": code, "snippets": parsed,
                          "media_seconds": args.file_minutes * 60, "wall_seconds": round(wall, 1),
                          "real_time_factor": round(wall / (args.file_minutes * 60), 3),
                          "events": sum(1 for r in records if r.get("kind") == "event"), "rss": samples}
        print("file:", {k: v for k, v in report["file"].items() if k != "rss"}, flush=True)
        if code != 0:
            print(stderr[-2000:], flush=True)

    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
