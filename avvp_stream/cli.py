"""``avvp-stream``: parse a media file into audible, visible and audio-visual events."""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from .errors import AvvpError, run_cli

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Label every second of a video with what is heard, seen, or both (25 LLP classes).")


@contextmanager
def deferred_interrupt():
    """Hold Ctrl-C until the block is done, so that a snippet and its events are written
    together: the interrupt never leaves an event started in the tracker but not on disk."""
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt


@app.command()
def parse(
    source: Path = typer.Argument(..., help="Media file (mp4, mkv, webm, avi, wav, mp3...)."),
    checkpoint: Optional[str] = typer.Option(None, help="HAN checkpoint (ours or the official MMIL_Net.pt). Default: the official one, from the cache or downloaded once."),
    random_weights: bool = typer.Option(False, "--random-weights", help="Every network randomly initialised, no weight files (smoke tests, benchmarks)."),
    device: str = typer.Option("auto", help="torch device: auto, cpu, cuda, cuda:N."),
    window: int = typer.Option(10, help="Snippets per HAN window (trained on 10)."),
    lookahead: Optional[int] = typer.Option(None, help="Snippets after which a snippet's labels are final; provisional labels are printed before. Default: labels from full windows only, printed once final (offline)."),
    threshold: float = typer.Option(0.5, help="Probability threshold (the official 0.5)."),
    classes: Optional[str] = typer.Option(None, help="Comma-separated class names to report (default: all 25)."),
    resnet_frames: int = typer.Option(8, help="Frames per snippet through ResNet-152 (8 = as LLP; 2 = fast CPU profile)."),
    output_format: str = typer.Option("jsonl", "--format", help="jsonl: one JSON object per snippet and per event change; tsv: LLP's filename/onset/offset/event_labels (+ modality) per ended event; srt or vtt: subtitles, one cue per ended event."),
    batch: int = typer.Option(8, help="Snippets extracted per batch."),
):
    """Parse a media file into per-second audio / visual / audio-visual labels and events:
    JSON Lines on stdout (flushed line by line), notes on stderr. Ctrl-C ends the open
    events and exits with 130."""
    import numpy as np
    import torch

    from .classes import CLASS_INDEX, CLASSES
    from .events import EventTracker
    from .features.extractor import FeatureExtractor
    from .parser import CommitPolicy, OnlineParser
    from .sources.file import FileSource
    from .writers.jsonl import JsonlWriter
    from .writers.timed_text import SrtWriter, TsvWriter, VttWriter

    writers = {"jsonl": JsonlWriter, "tsv": TsvWriter, "srt": SrtWriter, "vtt": VttWriter}
    if output_format not in writers:
        raise AvvpError(f"--format {output_format}: choose one of {', '.join(writers)}")
    if window < 1 or (lookahead is not None and lookahead < 0) or batch < 1:
        raise AvvpError("--window and --batch must be >= 1, --lookahead >= 0")
    keep = np.ones(len(CLASSES), bool)
    if classes:
        names = [c.strip() for c in classes.split(",") if c.strip()]
        unknown = [c for c in names if c not in CLASS_INDEX]
        if unknown:
            raise AvvpError(f"unknown class {unknown[0]!r}; classes are: {', '.join(CLASSES)}")
        keep[:] = False
        keep[[CLASS_INDEX[c] for c in names]] = True
    src = FileSource(source)
    for note in src.notes:
        print(f"avvp-stream: {source}: {note}", file=sys.stderr)
    extractor = FeatureExtractor(device=device, random_weights=random_weights, resnet_frames=resnet_frames)
    if random_weights:
        from .model import HAN

        torch.manual_seed(0)
        model = HAN().eval().to(extractor.device)
    else:
        from .checkpoint import load_model

        model = load_model(checkpoint or "official", extractor.device)
    policy = (CommitPolicy(window, window - 1, full_windows_only=True) if lookahead is None
              else CommitPolicy(window, lookahead))
    parser = OnlineParser(model, policy, threshold, extractor.device)
    tracker = EventTracker()
    writer = (JsonlWriter(sys.stdout) if output_format == "jsonl"
              else writers[output_format](sys.stdout, name=source.stem))
    captured: dict[int, float] = {}

    def emit(results) -> None:
        with deferred_interrupt():
            _emit(results)

    def _emit(results) -> None:
        for r in results:
            labels = {"audio": r.audio & keep, "visual": r.visual & keep, "audio_visual": r.audio_visual & keep}
            if r.final or lookahead is not None:
                writer.snippet(r.index, float(r.index), labels, r.final, captured.pop(r.index, None) if r.final else captured.get(r.index))
            if r.final:
                for ev in tracker.update(float(r.index), labels):
                    writer.event(ev)

    def run_batch(snippets) -> None:
        feats = extractor.snippets(np.stack([s.audio for s in snippets]), np.stack([s.frames for s in snippets]))
        for s, a, v2d, v3d in zip(snippets, feats.audio, feats.video_2d, feats.video_3d):
            captured[s.index] = s.captured_at
            parser.insert_snippet(a, v2d, v3d)
        emit(parser.process())

    pending = []
    try:
        for snippet in src:
            pending.append(snippet)
            if len(pending) >= batch:
                run_batch(pending)
                pending = []
        if pending:
            run_batch(pending)
    finally:  # Ctrl-C or an error: what was parsed is still flushed, open events closed
        if parser.seen:
            emit(parser.finish())
        for ev in tracker.close():
            writer.event(ev)
    if parser.seen == 0:
        raise AvvpError(f"{source}: shorter than half a second, nothing to parse")
    if src.stopped:
        raise AvvpError(f"{source}: stopped after {parser.seen} s: {src.stopped}")


def main() -> None:
    run_cli(app, "avvp-stream")


if __name__ == "__main__":
    main()
