"""Do two builds of avvp-stream parse the real LLP clip identically? (issue 11: a redesign
must not change outputs.)

Runs each given ``avvp-stream`` console script on the clip with ``--random-weights`` and
``--format jsonl`` (each with its own empty cache), drops the fields that are clock
readings, and compares the records one by one. Install the old build into its own venv
first, for example::

    git worktree add /tmp/before 86855d2 && python -m venv /tmp/vb && /tmp/vb/bin/pip install /tmp/before
    python benchmarks/same_outputs.py /tmp/vb/bin/avvp-stream .venv/bin/avvp-stream --backend torch onnxruntime
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared" / "llp" / "BjCEufrlXm4.mp4"
CLOCK_FIELDS = {"captured_at", "emitted_at", "wall_seconds", "real_time_factor", "seconds", "stages"}


def records(script: str, clip: Path, backend: str | None) -> list[dict]:
    with tempfile.TemporaryDirectory() as home:
        cmd = [script, str(clip), "--random-weights", "--format", "jsonl"]
        if backend:
            cmd += ["--backend", backend]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "AVVP_STREAM_HOME": home},
                              timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{script} failed: {proc.stderr.strip().splitlines()[-1:]}")
    out = []
    for line in proc.stdout.splitlines():
        rec = json.loads(line)
        if rec.get("kind") == "summary":
            continue  # timings and engine notes
        out.append({k: v for k, v in rec.items() if k not in CLOCK_FIELDS})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", help="the old build's avvp-stream")
    ap.add_argument("after", help="the new build's avvp-stream")
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--backend", nargs="*", default=[None], help="engines to run the new build with (default: auto)")
    ap.add_argument("--save", type=Path, help="folder to write the compared records into")
    args = ap.parse_args()
    old = records(args.before, args.clip, None)
    print(f"before: {len(old)} records ({sum(r['kind'] == 'snippet' for r in old)} snippets, "
          f"{sum(r['kind'] == 'event' for r in old)} events)")
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        (args.save / "before.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    for backend in args.backend:
        new = records(args.after, args.clip, backend)
        differ = [i for i, (a, b) in enumerate(zip(old, new)) if a != b]
        same = len(old) == len(new) and not differ
        print(f"after ({backend or 'auto'}): {len(new)} records, "
              + ("identical" if same else f"DIFFERENT (first at record {differ[0] if differ else min(len(old), len(new))})"))
        if args.save:
            (args.save / f"after-{backend or 'auto'}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in new))


if __name__ == "__main__":
    main()
