"""Where a live run's time goes on this machine: ``avvp-stream --source camera`` with the
real LLP clip played as a camera (OpenCV, at its frame rate; no microphone, so the audio
is silence, which costs VGGish the same), random-initialised networks, and the stage
breakdown its JSON summary record gives (stages.py): per stage the share of the loop's
wall time and p50 / p99 per snippet, the real-time factor, and what the skip policy
dropped. Each row is one run, all in the same invocation.

    python benchmarks/live_stages.py [--clip PATH] [--duration 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared" / "llp" / "BjCEufrlXm4.mp4"
RUNS = {
    "live CPU profile (2 ResNet frames), skip": ["--policy", "skip"],
    "live CPU profile (2 ResNet frames), lag": ["--policy", "lag"],
    "full profile (8 ResNet frames), lag": ["--policy", "lag", "--resnet-frames", "8"],
}


def cpu_flags() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"]
    return ", ".join(f for f in wanted if f in flags) or "no AVX2"


def run(clip: Path, duration: float, extra: list[str]) -> dict:
    cmd = [str(Path(sys.executable).parent / "avvp-stream"), "--source", "camera", "--camera", str(clip),
           "--duration", str(duration), "--random-weights", "--device", "cpu", "--backend", "torch",
           "--format", "jsonl", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not args.clip.is_file():
        raise SystemExit(f"{args.clip} not found (../shared is missing): give --clip")
    results = {name: run(args.clip, args.duration, extra) for name, extra in RUNS.items()}
    print(f"CPU: {cpu_flags()}; {args.clip.name} as a camera for {args.duration:g} s")
    for name, summary in results.items():
        t = summary["time"]
        print(f"\n**{name}**: {summary['snippets']} snippets captured, {summary['dropped']} dropped, "
              f"{t['snippets']} parsed; real-time factor {t['rtf']:.2f}; stages account for {100 * t['accounted']:.1f}% "
              f"of {t['wall_s']:.1f} s\n")
        print("| stage | share of wall time | p50 per snippet (ms) | p99 per snippet (ms) |")
        print("|---|---|---|---|")
        for stage, s in t["stages"].items():
            share = "beside the loop" if s.get("background") else f"{100 * s['share']:.1f}%"
            print(f"| {stage} | {share} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_flags(), "runs": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
