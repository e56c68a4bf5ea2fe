"""``avvp-stream``: parse a media file or a live camera / microphone into audible,
visible and audio-visual events."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from .errors import AvvpError, run_cli

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Label every second of a video or a live camera/microphone with what is heard, seen, "
                       "or both (25 LLP classes).")

SOURCES = ("file", "webcam", "camera", "mic")
FORMATS = ("auto", "table", "jsonl", "tsv", "srt", "vtt")
BACKENDS = ("auto", "torch", "onnxruntime", "cuda-graph", "tensorrt")


def _keep_mask(classes: Optional[str]):
    import numpy as np

    from .classes import CLASS_INDEX, CLASSES

    keep = np.ones(len(CLASSES), bool)
    if classes:
        names = [c.strip() for c in classes.split(",") if c.strip()]
        unknown = [c for c in names if c not in CLASS_INDEX]
        if unknown:
            raise AvvpError(f"unknown class {unknown[0]!r}; classes are: {', '.join(CLASSES)}")
        keep[:] = False
        keep[[CLASS_INDEX[c] for c in names]] = True
    return keep


def _note(message: str) -> None:
    print(f"avvp-stream: {message}", file=sys.stderr, flush=True)


@app.command()
def parse(
    media: Optional[Path] = typer.Argument(None, metavar="[FILE]", help="Media file (mp4, mkv, webm, avi, wav, mp3...). Omit it with --source webcam|camera|mic."),
    source: Optional[str] = typer.Option(None, help="file (default when FILE is given); webcam: camera + microphone, live; camera: camera only (audio fed as silence); mic: microphone only (video fed as black frames)."),
    camera: str = typer.Option("0", help="Camera for --source webcam/camera: an index (0 = /dev/video0), a device path, a stream URL, or a video file played as if it were a camera."),
    mic: Optional[str] = typer.Option(None, help="Microphone: an index or part of a device name (default: the system's default input)."),
    duration: Optional[float] = typer.Option(None, help="Stop after this many seconds of input (live: of capture; file: of media)."),
    checkpoint: Optional[str] = typer.Option(None, help="HAN checkpoint (ours or the official MMIL_Net.pt). Default: the official one, from the cache or downloaded once."),
    random_weights: bool = typer.Option(False, "--random-weights", help="Every network randomly initialised, no weight files (smoke tests, benchmarks)."),
    device: str = typer.Option("auto", help="torch device: auto, cpu, cuda, cuda:N."),
    backend: str = typer.Option("auto", help="Engine for the HAN head and the feature networks: auto (the fastest available here, printed), torch (eager reference), onnxruntime (CPU), cuda-graph (GPU), tensorrt (GPU; pip install 'avvp-stream[tensorrt]')."),
    window: int = typer.Option(10, help="Snippets per HAN window (trained on 10)."),
    lookahead: Optional[int] = typer.Option(None, help="Snippets after which a snippet's labels are final; provisional labels are printed before. Default: live 0 (final at once); file: labels from full windows only, printed once final."),
    threshold: float = typer.Option(0.5, help="Probability threshold (the official 0.5)."),
    classes: Optional[str] = typer.Option(None, help="Comma-separated class names to report (default: all 25)."),
    resnet_frames: Optional[int] = typer.Option(None, help="Frames per snippet through ResNet-152: 8 = as LLP (default for files and on a GPU); 2 = the fast profile (default for live input on a CPU)."),
    output_format: str = typer.Option("auto", "--format", help="auto: a live table on a terminal, jsonl otherwise; jsonl: one JSON object per snippet and per event change (and a closing summary for live input); tsv: LLP's filename/onset/offset/event_labels (+ modality) per ended event; srt or vtt: subtitles, one cue per ended event."),
    plot: Optional[Path] = typer.Option(None, help="Also draw the event timeline (audio, visual, audio-visual rows, like the paper's Fig. 1) into this PNG at the end."),
    policy: str = typer.Option("skip", help="Live input when compute falls behind: skip (drop the oldest waiting snippets, labels stay near real time) or lag (keep every snippet, labels fall behind). Every drop is counted and reported."),
    queue: Optional[int] = typer.Option(None, help="Snippets that may wait for compute (default: skip 1, the newest; lag 600, and never more than 1 GiB of them)."),
    freeze_seconds: float = typer.Option(5.0, help="A live camera sending the same frame this long counts as frozen (a fault)."),
    batch: int = typer.Option(8, help="Snippets extracted per batch (files; live input batches what is waiting)."),
):
    """Parse a media file, or live input with --source, into per-second audio / visual /
    audio-visual labels and events. Notes go to stderr; outputs are flushed line by line,
    and Ctrl-C ends the open events and exits with 130."""
    import torch

    from .events import EventTracker
    from .features.extractor import FeatureExtractor
    from .parser import CommitPolicy, OnlineParser
    from .pipeline import Writers, parse_snippets
    from .writers.jsonl import JsonlWriter
    from .writers.timed_text import SrtWriter, TsvWriter, VttWriter

    source = source or ("file" if media is not None else None)
    if source is None:
        raise AvvpError("give a media FILE, or --source webcam|camera|mic for live input")
    if source not in SOURCES:
        raise AvvpError(f"--source {source}: choose one of {', '.join(SOURCES)}")
    live = source != "file"
    if source == "file" and media is None:
        raise AvvpError("--source file needs a media FILE")
    if live and media is not None:
        raise AvvpError(f"--source {source} reads live input; give a video file to play as a camera with --camera")
    if output_format not in FORMATS:
        raise AvvpError(f"--format {output_format}: choose one of {', '.join(FORMATS)}")
    if backend not in BACKENDS:
        raise AvvpError(f"--backend {backend}: choose one of {', '.join(BACKENDS)}")
    if window < 1 or (lookahead is not None and lookahead < 0) or batch < 1:
        raise AvvpError("--window and --batch must be >= 1, --lookahead >= 0")
    if duration is not None and duration <= 0:
        raise AvvpError("--duration must be > 0 seconds")
    if resnet_frames is not None and not 1 <= resnet_frames <= 8:
        raise AvvpError("--resnet-frames must be between 1 and 8")
    from .pacing import POLICIES

    if policy not in POLICIES:
        raise AvvpError(f"--policy {policy}: choose one of {', '.join(POLICIES)}")
    keep = _keep_mask(classes)
    if output_format == "auto":
        output_format = "table" if sys.stdout.isatty() else "jsonl"
    name = media.stem if media is not None else source
    timeline = None
    if plot is not None:
        from .writers.timeline import TimelinePlot

        timeline = TimelinePlot(plot, title=f"{media.name if media else source}")

    # Check the input first: a missing file, camera or microphone fails before the models load.
    # Live devices are opened only once the models are ready, so that capture starts on time.
    if live:
        from .sources.camera import check_camera, parse_camera
        from .sources.microphone import check_microphone, parse_device

        camera_spec = parse_camera(camera) if source in ("webcam", "camera") else None
        if camera_spec is not None:
            check_camera(camera_spec)
        if source in ("webcam", "mic"):
            check_microphone(parse_device(mic))
        label = source
    else:
        from .sources.file import FileSource

        src = FileSource(media, max_seconds=duration)
        label = str(media)
        for note in src.notes:
            _note(f"{label}: {note}")

    from .device import resolve_device

    run_device = resolve_device(device)
    if resnet_frames is None:
        resnet_frames = 2 if live and run_device.type == "cpu" else 8
        if live and resnet_frames == 2:
            _note("live input on a CPU: 2 frames per snippet through ResNet-152 (--resnet-frames 8 for the full profile)")
    extractor = FeatureExtractor(device=str(run_device), random_weights=random_weights, resnet_frames=resnet_frames)
    if random_weights:
        from .model import HAN

        torch.manual_seed(0)
        model = HAN().eval().to(extractor.device)
    else:
        from .checkpoint import load_model

        model = load_model(checkpoint or "official", extractor.device)
    if lookahead is None:
        policy_ = CommitPolicy(window, 0) if live else CommitPolicy(window, window - 1, full_windows_only=True)
    else:
        policy_ = CommitPolicy(window, lookahead)
    from .backends import create

    engine = create(backend, model, extractor.device)
    _note(f"HAN head on the {engine.name} backend" + (" (auto)" if backend == "auto" else ""))
    if engine.name == "onnxruntime" and extractor.device.type == "cpu":
        # 1.2-1.4x faster than torch on the feature networks too (benchmarks/stream_latency.py)
        _note("feature networks on ONNX Runtime too (exported once per set of weights into the cache)")
        extractor.use_onnxruntime()
    elif engine.name == "tensorrt":
        _note("feature networks as TensorRT engines too (built once per GPU into the cache)")
        extractor.use_tensorrt()
    elif engine.name == "cuda-graph":
        _note("feature networks replayed from CUDA graphs too")
        extractor.use_cuda_graphs()
    parser = OnlineParser(engine, policy_, threshold, extractor.device)
    if output_format == "table":
        from .writers.table import TableWriter

        out = TableWriter(title=f"avvp-stream: {label}")
    elif output_format == "jsonl":
        out = JsonlWriter(sys.stdout)
    else:
        out = {"tsv": TsvWriter, "srt": SrtWriter, "vtt": VttWriter}[output_format](sys.stdout, name=name)
    writer = Writers(out, *([timeline] if timeline else []))
    provisional = lookahead is not None or live

    if live:
        from .sources.live import LiveSource

        try:
            src = LiveSource(camera=camera_spec, microphone=source in ("webcam", "mic"), mic_device=parse_device(mic),
                             duration=duration, policy=policy, queue_size=queue, freeze_seconds=freeze_seconds)
        except AvvpError:
            writer.close()
            raise
        for note in src.notes:
            _note(f"{label}: {note}")
        _parse_live(src, extractor, parser, writer, out, keep, provisional, batch if policy == "lag" else 1)
        return
    try:
        parsed = parse_snippets(_file_batches(src, batch), extractor, parser, writer, keep=keep,
                                provisional=provisional, tracker=EventTracker())
    finally:
        writer.close()
    if parsed == 0:
        raise AvvpError(f"{media}: shorter than half a second, nothing to parse")
    if src.stopped:
        raise AvvpError(f"{media}: stopped after {parsed} s: {src.stopped}")


def _file_batches(src, batch: int):
    pending = []
    for snippet in src:
        pending.append(snippet)
        if len(pending) >= batch:
            yield pending
            pending = []
    if pending:
        yield pending


def _parse_live(src, extractor, parser, writer, out, keep, provisional: bool, batch: int) -> None:
    from dataclasses import asdict

    from .pipeline import parse_snippets

    src.start()
    try:
        parse_snippets(src.batches(batch), extractor, parser, writer, keep=keep, provisional=provisional)
    finally:
        src.stop()
        stats = asdict(src.stats)
        stats["mic_ppm"] = None if stats["mic_ppm"] is None else round(stats["mic_ppm"], 1)
        stats["camera_fps"] = None if stats["camera_fps"] is None else round(stats["camera_fps"], 2)
        stats["audio_gap_seconds"] = round(stats["audio_gap_seconds"], 3)
        if hasattr(out, "summary"):
            out.summary(stats)
        writer.close()
        _note(_summary_line(stats, src.queue.policy))
    if src.fault:
        raise AvvpError(f"{src.fault}; stopped after {stats['snippets']} s of input")


def _summary_line(stats: dict, policy: str) -> str:
    parts = [f"{stats['snippets']} snippets captured"]
    parts.append(f"{stats['dropped']} dropped (compute behind, --policy {policy})")
    parts.append(f"{stats['audio_gaps']} audio gaps ({stats['audio_gap_seconds']:g} s filled with silence)")
    parts.append(f"{stats['frame_gaps']} frames filled")
    parts.append(f"{stats['overflows']} microphone overflows")
    if stats["mic_ppm"] is not None:
        parts.append(f"microphone clock {stats['mic_ppm']:+.1f} ppm against the host (corrected)")
    if stats["camera_fps"] is not None:
        parts.append(f"camera {stats['camera_fps']:.2f} fps")
    return "live: " + ", ".join(parts)


def main() -> None:
    run_cli(app, "avvp-stream")


if __name__ == "__main__":
    main()
