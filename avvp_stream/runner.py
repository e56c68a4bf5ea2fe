"""One run of ``avvp-stream``: a ``RunConfig`` (what the user asked for, checked), the
pipeline built from it (source, extractor, engine, parser, writers), and the run itself.
The CLI only turns options into a ``RunConfig``; anything else that parses (a service, a
notebook) can build one too."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import AvvpError
from .writers import FORMATS

SOURCES = ("file", "webcam", "camera", "mic")
# Events of live input: a probability must fall below 0.3 to end an event, events last
# 2 s at least and gaps under 2 s are filled (benchmarks/steady_events.py measures why).
LIVE_STEADY = {"offset": 0.3, "min_event": 2.0, "min_gap": 2.0}
OUTPUT_FORMATS = ("auto", *FORMATS)  # auto: the table on a terminal, else jsonl


def note(message: str) -> None:
    print(f"avvp-stream: {message}", file=sys.stderr, flush=True)


@dataclass
class RunConfig:
    media: Path | None = None
    source: str | None = None  # default: file when media is given
    camera: str = "0"
    mic: str | None = None
    duration: float | None = None
    checkpoint: str | None = None
    random_weights: bool = False
    device: str = "auto"
    backend: str = "auto"
    window: int = 10
    lookahead: int | None = None
    threshold: float = 0.5
    classes: str | None = None
    resnet_frames: int | None = None
    output_format: str = "auto"
    plot: Path | None = None
    policy: str = "skip"
    queue: int | None = None
    freeze_seconds: float = 5.0
    batch: int = 8
    steady: bool | None = None  # events from steady labels (default: live yes, files no)
    onset: float | None = None
    offset: float | None = None
    min_event: float | None = None  # seconds
    min_gap: float | None = None  # seconds
    show: bool = False
    annotate: Path | None = None
    save_capture: Path | None = None
    verbose: bool = False
    verbose_every: float = 10.0

    @property
    def live(self) -> bool:
        return self.source != "file"

    def check(self) -> RunConfig:
        """Fill the defaults that depend on other options and reject what cannot run, each
        with one line; returns self."""
        self.source = self.source or ("file" if self.media is not None else None)
        if self.source is None:
            raise AvvpError("give a media FILE, or --source webcam|camera|mic for live input")
        if self.source not in SOURCES:
            raise AvvpError(f"--source {self.source}: choose one of {', '.join(SOURCES)}")
        if self.source == "file" and self.media is None:
            raise AvvpError("--source file needs a media FILE")
        if self.live and self.media is not None:
            raise AvvpError(f"--source {self.source} reads live input; give a video file to play as a camera with --camera")
        if self.output_format not in OUTPUT_FORMATS:
            raise AvvpError(f"--format {self.output_format}: choose one of {', '.join(OUTPUT_FORMATS)}")
        if self.window < 1 or (self.lookahead is not None and self.lookahead < 0) or self.batch < 1:
            raise AvvpError("--window and --batch must be >= 1, --lookahead >= 0")
        if self.duration is not None and self.duration <= 0:
            raise AvvpError("--duration must be > 0 seconds")
        if self.resnet_frames is not None and not 1 <= self.resnet_frames <= 8:
            raise AvvpError("--resnet-frames must be between 1 and 8")
        from .pacing import POLICIES

        if self.policy not in POLICIES:
            raise AvvpError(f"--policy {self.policy}: choose one of {', '.join(POLICIES)}")
        if self.show and not self.live:
            raise AvvpError("--show is for live input; for a file, --annotate OUT.mp4 writes the video with its labels")
        if self.save_capture is not None and not self.live:
            raise AvvpError("--save-capture is for live input (a file is already saved)")
        if self.annotate is not None:
            if self.live:
                raise AvvpError("--annotate is for files; for live input, --save-capture session.mkv and then "
                                "avvp-stream session.mkv --annotate out.mp4")
            if not self.annotate.parent.is_dir():
                raise AvvpError(f"--annotate {self.annotate}: folder {self.annotate.parent} does not exist")
        if self.save_capture is not None and not self.save_capture.parent.is_dir():
            raise AvvpError(f"--save-capture {self.save_capture}: folder {self.save_capture.parent} does not exist")
        if self.verbose_every <= 0:
            raise AvvpError("--verbose-every must be > 0 seconds")
        self.binarize  # noqa: B018 - checks the event thresholds and durations
        if self.output_format == "auto":
            self.output_format = "table" if sys.stdout.isatty() else "jsonl"
        return self

    @property
    def binarize(self):
        """How events are formed from probabilities: the plain threshold for files (the
        official protocol), steady labels for live input (``LIVE_STEADY``), unless asked."""
        from .binarize import Binarize

        steady = self.live if self.steady is None else self.steady
        base = LIVE_STEADY if steady else {"offset": None, "min_event": 1.0, "min_gap": 1.0}
        onset = self.threshold if self.onset is None else self.onset
        offset = base["offset"] if self.offset is None else self.offset
        offset = None if offset is None else min(offset, onset)
        min_event = base["min_event"] if self.min_event is None else self.min_event
        min_gap = base["min_gap"] if self.min_gap is None else self.min_gap
        if min_event < 1 or min_gap < 1:
            raise AvvpError("--min-event and --min-gap are at least 1 second (one snippet)")
        try:
            return Binarize(onset, offset, int(round(min_event)), int(round(min_gap)))
        except ValueError as exc:
            raise AvvpError(f"--onset/--offset: {exc}") from None

    @property
    def keep(self):
        """Which classes to report (``--classes``), as a (C,) bool mask."""
        import numpy as np

        from .classes import CLASS_INDEX, CLASSES

        keep = np.ones(len(CLASSES), bool)
        if self.classes:
            names = [c.strip() for c in self.classes.split(",") if c.strip()]
            unknown = [c for c in names if c not in CLASS_INDEX]
            if unknown:
                raise AvvpError(f"unknown class {unknown[0]!r}; classes are: {', '.join(CLASSES)}")
            keep[:] = False
            keep[[CLASS_INDEX[c] for c in names]] = True
        return keep


def run(config: RunConfig) -> None:
    """Check ``config``, build the pipeline, parse until the input ends (or Ctrl-C, or a
    fault), and flush everything produced."""
    config.check()
    keep = config.keep
    label = str(config.media) if not config.live else config.source
    writers = [_timeline(config)] if config.plot is not None else []
    if config.show:
        from .writers.window import check_display

        check_display()  # before the models load: no display is one line, not a crash
    if config.annotate is not None:
        from .writers.annotated_video import AnnotatedVideo

        writers.append(AnnotatedVideo(config.media, config.annotate, note))

    # Check the input first: a missing file, camera or microphone fails before the models load.
    # Live devices are opened only once the models are ready, so that capture starts on time.
    live_devices = _check_live_input(config) if config.live else None
    src = None
    if not config.live:
        from .sources.file import FileSource

        # a file no longer than the window is a clip processed whole: LLP's own frames
        src = FileSource(config.media, max_seconds=config.duration, clip=config.window)
        if config.annotate is not None and not src.has_video:
            raise AvvpError(f"--annotate: {config.media} has no video stream to draw the labels on")
        for line in src.notes:
            note(f"{label}: {line}")
    extractor, parser = _build_models(config)

    from .writers import Writers, get_writer

    out = get_writer(config.output_format, sys.stdout, name=config.media.stem if config.media else config.source,
                     title=f"avvp-stream: {label}")
    writer = Writers(out, *writers)
    times = _stage_times(config, extractor.device)
    binarize = config.binarize
    if config.live or not binarize.plain:
        note(f"events: {binarize}")
    if config.live:
        _run_live(config, live_devices, extractor, parser, writer, keep, label, times, binarize)
    else:
        _run_file(config, src, extractor, parser, writer, keep, times, binarize)


def _stage_times(config: RunConfig, device):
    """Where the time goes (stages.py); --verbose prints it every few seconds."""
    from .stages import StageTimes, every

    sync = None
    if device.type == "cuda":  # a stage's clock stops once its GPU work is done
        import torch

        sync = torch.cuda.synchronize
    times = StageTimes(sync=sync)
    if config.verbose:
        times.on_batch = every(config.verbose_every, lambda t: [note(line) for line in t.lines()])
    return times


def _timeline(config: RunConfig):
    from .writers.timeline import TimelinePlot

    return TimelinePlot(config.plot, title=f"{config.media.name if config.media else config.source}")


def _check_live_input(config: RunConfig) -> dict:
    from .sources.camera import check_camera
    from .sources.devices import resolve_camera, resolve_microphone
    from .sources.microphone import check_microphone

    camera_spec = resolve_camera(config.camera) if config.source in ("webcam", "camera") else None
    if camera_spec is not None:
        check_camera(camera_spec)
    mic = config.source in ("webcam", "mic")
    mic_device = resolve_microphone(config.mic) if mic else None
    if mic:
        check_microphone(mic_device)
    return {"camera": camera_spec, "microphone": mic, "mic_device": mic_device}


def _build_models(config: RunConfig):
    """The feature extractor, the HAN head on its engine, and the online parser."""

    from .backends.base import Workload
    from .backends.registry import choose_trusted
    from .checkpoint import run_model
    from .device import resolve_device
    from .features.extractor import FeatureExtractor
    from .parser import CommitPolicy, OnlineParser

    run_device = resolve_device(config.device)
    if config.backend != "auto":
        from .backends.registry import choose

        choose(config.backend, run_device.type)  # an engine that cannot run here is said before the models load
    resnet_frames = config.resnet_frames
    if resnet_frames is None:
        resnet_frames = 2 if config.live and run_device.type == "cpu" else 8
        if config.live and resnet_frames == 2:
            note("live input on a CPU: 2 frames per snippet through ResNet-152 (--resnet-frames 8 for the full profile)")
    model = run_model(config.checkpoint, config.random_weights, run_device)
    extractor = FeatureExtractor(device=str(run_device), random_weights=config.random_weights,
                                 resnet_frames=resnet_frames, features=model.config.features)
    if config.lookahead is None:
        policy = (CommitPolicy(config.window, 0) if config.live
                  else CommitPolicy.offline(config.window))
    else:
        policy = CommitPolicy(config.window, config.lookahead)
    engine = choose_trusted(config.backend, model, extractor.device)  # auto: the fastest verified engine
    workload = Workload(batch=1 if config.live and config.policy != "lag" else config.batch, window=config.window)
    head = engine.head(model, extractor.device, workload)
    note(f"HAN head on the {engine.name} backend" + (" (auto)" if config.backend == "auto" else ""))
    networks = engine.feature_networks(extractor, workload)
    if networks is not None:
        note(engine.networks_note or f"feature networks on {engine.name} too")
        extractor.use_networks(networks)
    return extractor, OnlineParser(head, policy, config.threshold, extractor.device)


def _file_batches(src, batch: int):
    pending = []
    for snippet in src:
        pending.append(snippet)
        if len(pending) >= batch:
            yield pending
            pending = []
    if pending:
        yield pending


def _run_file(config: RunConfig, src, extractor, parser, writer, keep, times, binarize) -> None:
    from .events import EventTracker
    from .pipeline import parse_snippets

    try:
        parsed = parse_snippets(_file_batches(src, config.batch), extractor, parser, writer, keep=keep,
                                provisional=config.lookahead is not None, tracker=EventTracker(), times=times,
                                input_stage="decode", binarize=binarize)
    finally:
        writer.summary({"snippets": times.snippets, "time": times.summary()})
        writer.close()
        for line in times.lines():
            note(line)
    if parsed == 0:
        raise AvvpError(f"{config.media}: shorter than half a second, nothing to parse")
    if src.stopped:
        raise AvvpError(f"{config.media}: stopped after {parsed} s: {src.stopped}")


def _run_live(config: RunConfig, devices: dict, extractor, parser, writer, keep, label: str, times,
              binarize) -> None:
    from .pipeline import parse_snippets
    from .sources.live import LiveSource

    window = recorder = None
    try:
        src = LiveSource(camera=devices["camera"], microphone=devices["microphone"], mic_device=devices["mic_device"],
                         duration=config.duration, policy=config.policy, queue_size=config.queue,
                         freeze_seconds=config.freeze_seconds)
        if config.save_capture is not None:
            from .sources.recorder import CaptureRecorder

            recorder = CaptureRecorder(config.save_capture, video_size=src.camera.size if src.camera else None,
                                       audio=src.microphone is not None)
            src.frame_taps.append(recorder.frame)
            if src.microphone is not None:
                src.snippet_taps.append(lambda snippet: recorder.audio(snippet.index, snippet.audio))
        if config.show:
            from .writers import Writers
            from .writers.window import LabelWindow

            window = LabelWindow(size=src.camera.size if src.camera else (480, 640))
            src.frame_taps.append(window.frame)
            writer = Writers(writer, window)
    except AvvpError:
        if recorder is not None:
            recorder.close()
        writer.close()
        raise
    for line in src.notes:
        note(f"{label}: {line}")
    if src.camera is not None:  # frames are decoded in the camera's thread, beside the loop
        times.background_sources.append(lambda: ("decode", src.camera.take_decode_seconds()))
    src.start()
    try:
        parse_snippets(src.batches(config.batch if config.policy == "lag" else 1), extractor, parser, writer,
                       keep=keep, provisional=True, times=times, input_stage="capture_wait",
                       binarize=binarize)
    except KeyboardInterrupt:
        if window is None or not window.quit:
            raise
        note("window closed: stopped")
    finally:
        if window is not None:
            window.close()  # no key or close from here on: the flush below is not interrupted
        src.stop()
        stats = asdict(src.stats)
        stats["mic_ppm"] = None if stats["mic_ppm"] is None else round(stats["mic_ppm"], 1)
        stats["camera_fps"] = None if stats["camera_fps"] is None else round(stats["camera_fps"], 2)
        stats["audio_gap_seconds"] = round(stats["audio_gap_seconds"], 3)
        if recorder is not None:
            recorder.close()
            stats["capture"] = recorder.stats()
        stats["time"] = times.summary()
        writer.summary(stats)
        writer.close()
        note(summary_line(stats, src.queue.policy))
        for line in times.lines():
            note(line)
    if src.fault:
        raise AvvpError(f"{src.fault}; stopped after {stats['snippets']} s of input")


def summary_line(stats: dict, policy: str) -> str:
    parts = [f"{stats['snippets']} snippets captured"]
    parts.append(f"{stats['dropped']} dropped (compute behind, --policy {policy})")
    parts.append(f"{stats['audio_gaps']} audio gaps ({stats['audio_gap_seconds']:g} s filled with silence)")
    parts.append(f"{stats['frame_gaps']} frames filled")
    parts.append(f"{stats['overflows']} microphone overflows")
    if stats["mic_ppm"] is not None:
        parts.append(f"microphone clock {stats['mic_ppm']:+.1f} ppm against the host (corrected)")
    if stats["camera_fps"] is not None:
        parts.append(f"camera {stats['camera_fps']:.2f} fps")
    capture = stats.get("capture")
    if capture:
        parts.append(f"capture saved to {capture['path']} ({capture['frames']} frames, {capture['audio_seconds']} s of "
                     f"audio, {capture['dropped_frames'] + capture['dropped_audio_seconds']} dropped"
                     + (f"; write error: {capture['error']}" if capture["error"] else "") + ")")
    return "live: " + ", ".join(parts)
