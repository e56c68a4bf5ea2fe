"""``avvp-stream``: parse a media file or a live camera / microphone into audible,
visible and audio-visual events."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from .backends.registry import BACKENDS
from .errors import AvvpError, run_cli
from .pacing import POLICIES
from .runner import OUTPUT_FORMATS, SOURCES

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Label every second of a video or a live camera/microphone with what is heard, seen, "
                       "or both (25 LLP classes).")

def _choices(name: str, values) -> type[Enum]:
    """typer choices (listed in --help, checked by typer) from the one tuple that defines them."""
    return Enum(name, {value: value for value in values}, type=str)


Source = _choices("Source", SOURCES)
OutputFormat = _choices("OutputFormat", OUTPUT_FORMATS)
BackendChoice = _choices("BackendChoice", ("auto", *reversed(BACKENDS)))  # reference first, fastest last
Policy = _choices("Policy", POLICIES)


def _list_devices(value: bool) -> None:
    if value:
        from .sources.devices import listing

        for line in listing():
            typer.echo(line)
        raise typer.Exit()


@app.command()
def parse(
    media: Optional[Path] = typer.Argument(None, metavar="[FILE]", help="Media file (mp4, mkv, webm, avi, wav, mp3...). Omit it with --source webcam|camera|mic."),
    source: Optional[Source] = typer.Option(None, help="file (default when FILE is given); webcam: camera + microphone, live; camera: camera only (audio fed as silence); mic: microphone only (video fed as black frames)."),
    camera: str = typer.Option("0", help="Camera for --source webcam/camera: an index (0 = /dev/video0) or part of its name, as --list-devices shows them, a device path, a stream URL, or a video file played as if it were a camera."),
    mic: Optional[str] = typer.Option(None, help="Microphone: an index or part of a device name, as --list-devices shows them (default: the system's default input)."),
    duration: Optional[float] = typer.Option(None, help="Stop after this many seconds of input (live: of capture; file: of media)."),
    checkpoint: Optional[str] = typer.Option(None, help="HAN checkpoint (ours or the official MMIL_Net.pt). Default: the official one, from the cache or downloaded once."),
    random_weights: bool = typer.Option(False, "--random-weights", help="Every network randomly initialised, no weight files (smoke tests, benchmarks)."),
    device: str = typer.Option("auto", help="torch device: auto, cpu, cuda, cuda:N."),
    backend: BackendChoice = typer.Option("auto", help="Engine for the HAN head and the feature networks: auto (the fastest available here, printed), torch (eager reference), onnxruntime (CPU), cuda-graph (GPU), tensorrt (GPU, fp32 with TF32; the 'tensorrt' extra), tensorrt-fp16 (the head in fp16). auto only takes an engine that passed its check against torch here (avvp-export verify)."),
    window: int = typer.Option(10, help="Snippets per HAN window (trained on 10)."),
    lookahead: Optional[int] = typer.Option(None, help="Snippets after which a snippet's labels are final; provisional labels are printed before. Default: live 0 (final at once); file: labels from full windows only, printed once final."),
    threshold: float = typer.Option(0.5, help="Probability threshold (the official 0.5)."),
    classes: Optional[str] = typer.Option(None, help="Comma-separated class names to report (default: all 25)."),
    resnet_frames: Optional[int] = typer.Option(None, help="Frames per snippet through ResNet-152: 8 = as LLP (default for files and on a GPU); 2 = the fast profile (default for live input on a CPU)."),
    output_format: OutputFormat = typer.Option("auto", "--format", help="auto: a live table on a terminal, jsonl otherwise; jsonl: one JSON object per snippet and per event change (and a closing summary for live input); tsv: LLP's filename/onset/offset/event_labels (+ modality) per ended event; srt or vtt: subtitles, one cue per ended event."),
    plot: Optional[Path] = typer.Option(None, help="Also draw the event timeline (audio, visual, audio-visual rows, like the paper's Fig. 1) into this PNG at the end."),
    policy: Policy = typer.Option("skip", help="Live input when compute falls behind: skip (drop the oldest waiting snippets, labels stay near real time) or lag (keep every snippet, labels fall behind). Every drop is counted and reported."),
    queue: Optional[int] = typer.Option(None, help="Snippets that may wait for compute (default: skip 1, the newest; lag 600, and never more than 1 GiB of them)."),
    freeze_seconds: float = typer.Option(5.0, help="A live camera sending the same frame this long counts as frozen (a fault)."),
    batch: int = typer.Option(8, help="Snippets extracted per batch (files; live input batches what is waiting)."),
    steady: Optional[bool] = typer.Option(None, "--steady/--no-steady", help="Form events from steady labels: hysteresis (--onset, --offset) and minimum durations (--min-event, --min-gap), so that a probability hovering at the threshold does not make events flicker. Default: on for live input (offset 0.3, events and gaps of 2 s), off for files (the official protocol: the plain threshold). Snippet records keep the plain threshold either way."),
    onset: Optional[float] = typer.Option(None, help="Probability at which an event starts (default: --threshold)."),
    offset: Optional[float] = typer.Option(None, help="Probability below which an open event ends (<= onset; default: live 0.3, files the onset). Setting it turns --steady on."),
    min_event: Optional[float] = typer.Option(None, help="Shortest event in seconds: shorter runs are flicker and dropped (default: live 2, files 1). Setting it turns --steady on."),
    min_gap: Optional[float] = typer.Option(None, help="Shortest gap in seconds: shorter gaps inside an event are filled (default: live 2, files 1). Setting it turns --steady on."),
    show: bool = typer.Option(False, "--show", help="Live input: a window with the picture and the labels drawn on it (q or closing the window stops the run, like Ctrl-C)."),
    annotate: Optional[Path] = typer.Option(None, help="Files: also write this video (mp4) with the labels burned into the picture, its sound kept."),
    save_capture: Optional[Path] = typer.Option(None, help="Live input: also save what was captured (camera frames at their times, the microphone audio on the same clock; lossless) into this .mkv; avvp-stream FILE re-parses it into the live run's snippets."),
    verbose: bool = typer.Option(False, "--verbose", help="Print where the time goes (capture wait or decoding, each network, the head, writing; p50/p99 per snippet; real-time factor) every --verbose-every seconds. The closing summary always has it."),
    verbose_every: float = typer.Option(10.0, help="Seconds between --verbose reports."),
    list_devices: bool = typer.Option(False, "--list-devices", is_eager=True, callback=_list_devices, help="List the cameras and microphones (with the index and name --camera and --mic take) and exit."),
):
    """Parse a media file, or live input with --source, into per-second audio / visual / audio-visual labels and events. Notes go to stderr; outputs are flushed line by line, and Ctrl-C ends the open events and exits with 130."""
    from .runner import RunConfig, run

    run(RunConfig(media=media, source=source.value if source else None, camera=camera, mic=mic, duration=duration,
                  checkpoint=checkpoint, random_weights=random_weights, device=device, backend=backend.value,
                  window=window, lookahead=lookahead, threshold=threshold, classes=classes,
                  resnet_frames=resnet_frames, output_format=output_format.value, plot=plot, policy=policy.value,
                  queue=queue, freeze_seconds=freeze_seconds, batch=batch,
                  steady=True if steady is None and (offset, min_event, min_gap) != (None, None, None) else steady,
                  onset=onset, offset=offset, min_event=min_event, min_gap=min_gap, show=show, annotate=annotate,
                  save_capture=save_capture, verbose=verbose, verbose_every=verbose_every))


batch_app = typer.Typer(add_completion=False, no_args_is_help=True,
                        help="Parse many files offline, one output per video (avvp-stream batch INPUTS --out DIR).")
BatchFormat = _choices("BatchFormat", tuple(f for f in OUTPUT_FORMATS if f not in ("auto", "table")))


@batch_app.command()
def batch(
    inputs: str = typer.Argument(..., help="A folder of media files, a glob ('videos/**/*.mp4', quoted), or a text file listing one path a line."),
    out: Path = typer.Option(..., "--out", help="Output folder: <name>.<format> and <name>.events.tsv per video, events.tsv for the whole collection (LLP's evaluation columns), failures.jsonl."),
    ray: bool = typer.Option(False, "--ray", help="Run on Ray Data, on a local Ray instance (127.0.0.1 only, no dashboard). Needs the 'ray' extra (the error says how to install it)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Run on the Ray cluster at this address (ray start --head on the head node; implies --ray). Keep clusters on a trusted private network."),
    output_format: BatchFormat = typer.Option("jsonl", "--format", help="Per-video output: jsonl, tsv, srt or vtt."),
    checkpoint: Optional[str] = typer.Option(None, help="HAN checkpoint (default: the official one)."),
    random_weights: bool = typer.Option(False, "--random-weights", help="Every network randomly initialised (smoke tests)."),
    device: str = typer.Option("auto", help="torch device: auto, cpu, cuda, cuda:N."),
    backend: BackendChoice = typer.Option("auto", help="Engine for the head and the feature networks (as avvp-stream's)."),
    window: int = typer.Option(10, help="Snippets per HAN window (trained on 10)."),
    threshold: float = typer.Option(0.5, help="Probability threshold (the official 0.5)."),
    classes: Optional[str] = typer.Option(None, help="Comma-separated class names to report (default: all 25)."),
    batch_size: int = typer.Option(4, "--batch", help="Videos (or 32 s pieces of long ones) per batch through the feature networks."),
):
    """Parse every input offline with full windows, as avvp-stream FILE does, batching videos through the networks. A rerun skips finished videos; a bad file goes to failures.jsonl and the run goes on (exit 1 if any failed); Ctrl-C keeps what was written and exits 130."""
    from .collection import parse_collection
    from .runner import RunConfig

    if window < 1 or batch_size < 1:
        raise AvvpError("--window and --batch must be >= 1")
    keep = RunConfig(media=Path("."), classes=classes).keep if classes else None
    summary = parse_collection(inputs, out, fmt=output_format.value, checkpoint=checkpoint, random_weights=random_weights,
                               device=device, backend=backend.value, window=window, batch=batch_size,
                               threshold=threshold, keep=keep, ray_address=ray_address or ("local" if ray else None))
    typer.echo(summary.line(), err=True)
    return 1 if summary.failed else 0


def main() -> None:
    import sys

    if sys.argv[1:2] == ["batch"]:  # avvp-stream batch ...: the collection command
        sys.argv = [sys.argv[0], *sys.argv[2:]]
        run_cli(batch_app, "avvp-stream batch")
        return
    run_cli(app, "avvp-stream")


if __name__ == "__main__":
    main()
