"""Batch feature extraction: a folder of videos -> LLP feature folders.

Resumable (a video whose three files exist is skipped), and every output file is written
atomically so an interrupted run leaves no half-written feature behind. A bad input file
(unreadable, cut short, no streams) is reported and the batch goes on; anything else (out
of memory, a CUDA error, a bug of ours) is not the file's fault and would fail every file
after it, so it stops the run with one line, after what was finished has been written.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from avvp_stream.collection import MEDIA_SUFFIXES, FeatureFolders, media_files
from avvp_stream.errors import AvvpError
from avvp_stream.features.spec import OFFICIAL, specs
from avvp_stream.progress import progress_bar
from avvp_stream.sources.clip import decode_clip


@dataclass
class ExtractSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def extract_folder(videos_dir: str | Path, out_dir: str | Path, extractor, seconds: int = 10, batch: int = 4,
                   log=lambda msg: print(msg, file=sys.stderr, flush=True), features=OFFICIAL) -> ExtractSummary:
    """Write each of the extractor's features (official: ``vggish/``, ``res152/`` and
    ``r2plus1d_18/``) of every media file, running the networks on ``batch`` videos at a time.
    ``extractor``: a FeatureExtractor, or a function that makes one (of ``features``),
    called only once a video needs it: a rerun with every video done loads no network."""
    make = extractor if callable(extractor) else None
    folders = FeatureFolders(out_dir, specs(features) if make else extractor.specs)
    files = media_files(Path(videos_dir))
    if not files:
        raise AvvpError(f"no media files in {videos_dir} (looked for {', '.join(sorted(MEDIA_SUFFIXES))})")
    summary = ExtractSummary()
    pending: list[tuple[Path, object]] = []

    def fail(path: Path, exc: AvvpError) -> None:
        summary.failed[path.name] = str(exc)
        log(f"failed: {exc}")

    def flush() -> None:
        nonlocal extractor, make
        if make is not None:
            extractor, make = make(), None
        feats = extractor.clips([(clip.audio, clip.frames) for _, clip in pending])
        for (path, _), f in zip(pending, feats):
            folders.save(path, f.arrays)
            summary.done.append(path.name)
        pending.clear()

    try:
        for path in progress_bar(files, desc="extracting"):
            if folders.done(path):
                summary.skipped.append(path.name)
                continue
            try:
                clip = decode_clip(path, seconds)
            except AvvpError as exc:  # the file's fault: report it, go on
                fail(path, exc)
                continue
            for note in clip.notes:
                log(f"{path.name}: {note}")
            pending.append((path, clip))
            if len(pending) >= batch:
                flush()
        if pending:
            flush()
    except (AvvpError, KeyboardInterrupt):
        raise
    except Exception as exc:  # not the file's fault: stop, keeping what was written
        first = (str(exc).splitlines() or [""])[0][:200]
        raise AvvpError(f"extraction stopped by {type(exc).__name__}: {first} ({len(summary.done)} videos "
                        f"written; {len(summary.failed)} bad files; a rerun resumes after them)") from exc
    return summary
