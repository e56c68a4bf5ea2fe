"""Whole collections: many files extracted into LLP feature folders or parsed into one
output per video, in this process or on a Ray cluster (Ray Data), through the same stages:

    list the files -> decode (CPU tasks) -> feature networks (an actor pool, batches of
    videos) -> the driver, which writes each video once, atomically

Decoded pieces and features travel as rows (a video, or a piece of ``chunk`` seconds of a
long one), so memory stays bounded by the pieces in flight (streaming execution; nothing
is materialised). The driver skips what an earlier run finished, writes failures to
``failures.jsonl`` (path, reason) and goes on, and on Ctrl-C keeps what was written.
"""

from __future__ import annotations

import glob
import json
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import AvvpError
from .paths import atomic_write

MEDIA_SUFFIXES = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv",
                  ".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus"}
FAILURES = "failures.jsonl"


def media_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise AvvpError(f"videos folder not found: {folder}")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)


def list_inputs(spec: str | Path) -> list[Path]:
    """INPUTS: a folder (its media files), a glob, or a text file listing one path a line
    (relative to the list's folder; blank lines and # comments skipped)."""
    path = Path(spec)
    if path.is_dir():
        files = media_files(path)
    elif path.is_file() and path.suffix.lower() not in MEDIA_SUFFIXES:
        lines = [line.strip() for line in path.read_text().splitlines()]
        files = [(path.parent / line) for line in lines if line and not line.startswith("#")]
    elif any(c in str(spec) for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(str(spec), recursive=True) if Path(p).is_file())
    elif path.is_file():
        files = [path]
    else:
        raise AvvpError(f"{spec}: no such folder, file list or media file")
    if not files:
        raise AvvpError(f"{spec}: no media files")
    names = [p.stem for p in files]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise AvvpError(f"two inputs would write the same output: {', '.join(twice[:3])}")
    return files


@dataclass
class Part:
    """What flows between the stages: one video (or a piece of it), or why it failed."""

    path: str
    part: int = 0
    last: bool = True
    error: str = ""
    payload: dict = field(default_factory=dict)  # decoded media, then features

    def row(self) -> dict:
        return {"path": self.path, "part": self.part, "last": self.last, "error": self.error,
                "payload": pickle.dumps(self.payload, protocol=5)}

    @classmethod
    def from_row(cls, row: dict) -> "Part":
        return cls(str(row["path"]), int(row["part"]), bool(row["last"]), str(row["error"] or ""),
                   pickle.loads(row["payload"]))


# --- the stages (picklable: they run in Ray tasks and actors) ------------------------------

@dataclass
class ExtractStages:
    """``avvp-train extract``: each video as one clip of ``seconds`` (LLP framing)."""

    seconds: int = 10

    def decode(self, path: str, threads: int | None = None) -> Iterator[Part]:
        from .sources.clip import decode_clip

        try:
            clip = decode_clip(path, self.seconds, threads=threads)
        except AvvpError as exc:
            yield Part(path, error=str(exc))
            return
        yield Part(path, payload={"audio": clip.audio, "frames": clip.frames})

    def features(self, extractor, parts: list[Part]) -> list[dict]:
        feats = extractor.clips([(p.payload["audio"], p.payload["frames"]) for p in parts])
        return [f.arrays for f in feats]


@dataclass
class ParseStages:
    """Parsing: each video as independent 1 s snippets (a file no longer than the window
    is a clip processed whole, as ``avvp-stream FILE`` reads it), in pieces of ``chunk``."""

    window: int = 10
    chunk: int = 32

    def decode(self, path: str, threads: int | None = None) -> Iterator[Part]:
        from .sources.file import FileSource

        try:
            source = FileSource(path, clip=self.window, threads=threads)
            piece, k = [], 0
            for snippet in source:
                piece.append(snippet)
                if len(piece) == self.chunk:
                    yield self._part(path, k, piece, last=False)
                    piece, k = [], k + 1
        except AvvpError as exc:
            yield Part(path, error=str(exc))
            return
        if source.stopped:
            yield Part(path, error=f"{path}: {source.stopped}")
        elif not piece and k == 0:
            yield Part(path, error=f"{path}: nothing to parse (shorter than half a second)")
        else:  # after a full last piece, an empty closing piece says the video is complete
            yield self._part(path, k, piece, last=True)

    @staticmethod
    def _part(path: str, k: int, piece: list, last: bool) -> Part:
        if not piece:
            return Part(path, k, last, payload={"snippets": []})
        return Part(path, k, last, payload={
            "snippets": [(s.index, s.start) for s in piece],
            "audio": np.stack([s.audio for s in piece]), "frames": np.stack([s.frames for s in piece])})

    def features(self, extractor, parts: list[Part]) -> list[dict]:
        full = [p for p in parts if p.payload["snippets"]]
        feats = iter(extractor.snippet_groups([(p.payload["audio"], p.payload["frames"]) for p in full]))
        return [next(feats).arrays if p.payload["snippets"] else {} for p in parts]


def with_features(stages, extractor, parts: list[Part]) -> list[Part]:
    """The feature stage: decoded parts in, parts carrying their features out (failed
    parts pass through)."""
    ok = [p for p in parts if not p.error]
    out = {id(p): p for p in parts}
    for p, feats in zip(ok, stages.features(extractor, ok) if ok else []):
        keep = {"snippets": p.payload["snippets"]} if "snippets" in p.payload else {}
        out[id(p)] = Part(p.path, p.part, p.last, payload={**keep, "features": feats})
    return [out[id(p)] for p in parts]


# --- the driver's side: outputs --------------------------------------------------------

class FeatureFolders:
    """LLP feature folders, exactly as ``avvp-train extract`` writes them locally."""

    def __init__(self, out_dir: Path, specs):
        self.folders = {s.name: Path(out_dir) / s.folder for s in specs}
        for folder in self.folders.values():
            folder.mkdir(parents=True, exist_ok=True)

    def done(self, path: Path) -> bool:
        return all((f / f"{Path(path).stem}.npy").is_file() for f in self.folders.values())

    def save(self, path, arrays: dict[str, np.ndarray]) -> None:
        """One video's features, each file written atomically; per-frame features as one
        row per frame."""
        for name, x in arrays.items():
            atomic_write(self.folders[name] / f"{Path(path).stem}.npy",
                         lambda tmp, x=x: np.save(tmp, x.reshape(-1, x.shape[-1])), suffix=".npy")

    def write(self, path: str, parts: list[Part]) -> float:
        feats = parts[0].payload["features"]
        self.save(path, feats)
        return float(len(next(iter(feats.values()))))

    def finish(self, paths: list[Path]) -> None:
        pass


class ParseOutputs:
    """One output per video (``<stem>.<format>``) and its ended events in LLP's evaluation
    columns (``<stem>.events.tsv``); at the end, every video's events in one
    ``events.tsv``."""

    def __init__(self, out_dir: Path, fmt: str, make_parser: Callable, keep=None):
        self.out_dir, self.fmt, self.make_parser, self.keep = Path(out_dir), fmt, make_parser, keep
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def output(self, path) -> Path:
        return self.out_dir / f"{Path(path).stem}.{self.fmt}"

    def done(self, path: Path) -> bool:
        return self.output(path).is_file() and (self.out_dir / f"{Path(path).stem}.events.tsv").is_file()

    def write(self, path: str, parts: list[Part]) -> float:
        import io

        from .features.extractor import Features
        from .parser import SnippetId
        from .pipeline import parse_features
        from .writers import Writers, get_writer

        def batches():
            for part in parts:
                snippets = part.payload["snippets"]
                if snippets:
                    yield [SnippetId(i, start) for i, start in snippets], Features(part.payload["features"])

        stem = Path(path).stem
        main, events = io.StringIO(), io.StringIO()
        writer = Writers(get_writer(self.fmt, main, name=Path(path).name), get_writer("tsv", events, name=Path(path).name))
        seen = parse_features(batches(), self.make_parser(), writer, keep=self.keep)
        writer.close()
        # the events first, the main output last: a video counts as done only when both are there
        atomic_write(self.out_dir / f"{stem}.events.tsv", lambda tmp: Path(tmp).write_text(events.getvalue()))
        atomic_write(self.output(path), lambda tmp: Path(tmp).write_text(main.getvalue()))
        return float(seen)

    def finish(self, paths: list[Path]) -> None:
        rows = ["filename\tonset\toffset\tevent_labels\tmodality\n"]
        for p in paths:
            sidecar = self.out_dir / f"{Path(p).stem}.events.tsv"
            if sidecar.is_file():
                rows += sidecar.read_text().splitlines(keepends=True)[1:]
        atomic_write(self.out_dir / "events.tsv", lambda tmp: Path(tmp).write_text("".join(rows)))


@dataclass
class Summary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    media_seconds: float = 0.0
    wall_seconds: float = 0.0

    def line(self) -> str:
        rate = self.media_seconds / self.wall_seconds if self.wall_seconds else 0.0
        return (f"videos: {len(self.done)} done, {len(self.skipped)} skipped (done before), {len(self.failed)} failed; "
                f"{self.media_seconds:.0f} video-seconds in {self.wall_seconds:.1f} s ({rate:.2f} video-seconds/s)")


class Collector:
    """The driver's sink: gathers each video's pieces (in any order, duplicates from a
    retried task ignored), writes the video once when it is complete, records failures."""

    def __init__(self, outputs, out_dir: Path, summary: Summary, log):
        self.outputs, self.summary, self.log = outputs, summary, log
        self.manifest = Path(out_dir) / FAILURES
        self.manifest.parent.mkdir(parents=True, exist_ok=True)
        self.manifest.write_text("")  # this run's failures (a rerun tries failed files again)
        self.pending: dict[str, dict[int, Part]] = {}
        self.closed: set[str] = set()

    def accept(self, part: Part) -> None:
        if part.path in self.closed:
            return
        if part.error:
            self.closed.add(part.path)
            self.pending.pop(part.path, None)
            self.summary.failed[part.path] = part.error
            with open(self.manifest, "a") as f:
                f.write(json.dumps({"path": part.path, "reason": part.error}) + "\n")
            self.log(f"failed: {part.error}")
            return
        pieces = self.pending.setdefault(part.path, {})
        pieces[part.part] = part
        last = next((p.part for p in pieces.values() if p.last), None)
        if last is not None and len(pieces) == last + 1:
            del self.pending[part.path]
            self.closed.add(part.path)
            self.summary.media_seconds += self.outputs.write(part.path, [pieces[i] for i in range(last + 1)])
            self.summary.done.append(part.path)


# --- the executors -------------------------------------------------------------------------

def run_collection(stages, outputs, paths: list[Path], out_dir: Path, *, extractor_kwargs: dict, backend: str = "auto",
                   batch: int = 4, ray_address: str | None = None, actors: int | None = None, log=None) -> Summary:
    """Run ``stages`` over ``paths`` into ``outputs``: in this process, or on Ray when
    ``ray_address`` is given ("local": a local instance; else a cluster to join).
    ``actors``: the feature pool's size (default: ``pool_size``)."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    summary = Summary()
    t0 = time.perf_counter()
    todo = []
    for p in paths:
        (summary.skipped if outputs.done(p) else todo).append(str(p))
    sink = Collector(outputs, out_dir, summary, log)
    try:
        if not todo:
            pass  # every input is done: no model is loaded, no cluster joined
        elif ray_address is None:
            _local(stages, todo, sink, extractor_kwargs, backend, batch)
        else:
            _on_ray(stages, todo, sink, extractor_kwargs, backend, batch, ray_address, actors)
    finally:
        outputs.finish(paths)
        summary.wall_seconds = time.perf_counter() - t0
    return summary


def make_extractor(extractor_kwargs: dict, backend: str, batch: int):
    """The feature extractor, its networks on the engine the registry chooses."""
    from .backends.base import Workload
    from .backends.registry import choose
    from .features.extractor import FeatureExtractor

    extractor = FeatureExtractor(**extractor_kwargs)
    networks = choose(backend, extractor.device.type).feature_networks(extractor, Workload(batch=batch))
    if networks is not None:
        extractor.use_networks(networks)
    return extractor


def _local(stages, todo: list[str], sink: Collector, extractor_kwargs: dict, backend: str, batch: int) -> None:
    from .progress import progress_bar

    extractor = make_extractor(extractor_kwargs, backend, batch)
    pending: list[Part] = []

    def flush():
        for part in with_features(stages, extractor, pending):
            sink.accept(part)
        pending.clear()

    for path in progress_bar(todo, desc="videos"):
        for part in stages.decode(path):
            if part.error:
                sink.accept(part)
                continue
            pending.append(part)
            if len(pending) >= batch:
                flush()
    flush()


class _FeatureActor:
    """One actor of the feature pool: the extractor built once, batches of decoded parts."""

    def __init__(self, stages, extractor_kwargs: dict, backend: str, batch: int, cpus: int):
        import torch

        torch.set_num_threads(max(1, int(cpus)))
        self.stages = stages
        self.extractor = make_extractor(extractor_kwargs, backend, batch)
        kill_once = os.environ.get("AVVP_TEST_KILL_ACTOR_ONCE")  # tests: a worker dies mid-run
        if kill_once and not Path(kill_once).exists():
            Path(kill_once).write_text(str(os.getpid()))
            self.die = True
        else:
            self.die = False

    def __call__(self, rows: dict) -> dict:
        if self.die:
            os._exit(1)
        parts = [Part.from_row({k: rows[k][i] for k in rows}) for i in range(len(rows["path"]))]
        out = [p.row() for p in with_features(self.stages, self.extractor, parts)]
        return {k: [r[k] for r in out] for k in ("path", "part", "last", "error", "payload")}


def _decode_rows(stages):
    def decode(row: dict) -> list[dict]:
        import ray

        cpus = int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)) or 1
        return [part.row() for part in stages.decode(row["path"], threads=cpus)]
    return decode


def pool_size(resources: dict, gpu: bool) -> tuple[int, float, float]:
    """(actors, CPUs per actor, GPUs per actor): one actor per GPU on GPU nodes; on CPUs,
    half the CPUs go to actors (2 threads each) and the rest to decoding, and at least one
    CPU is always left for the decode tasks, so a 2-CPU machine cannot deadlock."""
    cpus = int(resources.get("CPU", 1))
    if gpu and resources.get("GPU", 0) >= 1:
        return int(resources["GPU"]), 1, 1.0
    if cpus < 2:  # one CPU: the actor asks for half, so that a decode task can still be scheduled
        return 1, 0.5, 0.0
    per_actor = 2 if cpus >= 6 else 1
    actors = max(1, min((cpus - 1) // per_actor, cpus // 2 // per_actor or 1))
    return actors, per_actor, 0.0


def _on_ray(stages, todo: list[str], sink: Collector, extractor_kwargs: dict, backend: str, batch: int,
            address: str, actors: int | None = None) -> None:
    from .cluster import connect

    ray, connected = connect(address)
    try:
        gpu = str(extractor_kwargs.get("device", "auto")).startswith(("cuda", "auto"))
        resources = ray.cluster_resources()
        sized, cpus, gpus = pool_size(resources, gpu)
        if actors and not gpus:  # a pool size asked for: share the CPUs, one always left to decoding
            cpus = min(cpus, max(0.25, (int(resources.get("CPU", 1)) - 1) / actors))
        actors = actors or sized
        kwargs = dict(extractor_kwargs, device="cuda" if gpus else "cpu")
        ds = ray.data.from_items([{"path": p} for p in todo], override_num_blocks=max(1, len(todo)))
        ds = ds.flat_map(_decode_rows(stages), num_cpus=1)
        # A dead actor (a node lost, a process killed) is restarted and its batch retried: Ray
        # Data's own default for actor pools (a failure in our code fails the run instead).
        ds = ds.map_batches(_FeatureActor, fn_constructor_args=(stages, kwargs, backend, batch, cpus),
                            batch_size=batch, batch_format="numpy", concurrency=actors, num_cpus=cpus, num_gpus=gpus,
                            **_test_hooks())
        for row in ds.iter_rows():
            sink.accept(Part.from_row(row))
    finally:
        if connected:  # stop the instance we started (or leave the cluster we joined)
            ray.shutdown()


def _test_hooks() -> dict:
    """The tests' hook (a feature actor that dies once) reaches the workers' environment."""
    hook = os.environ.get("AVVP_TEST_KILL_ACTOR_ONCE")
    return {"runtime_env": {"env_vars": {"AVVP_TEST_KILL_ACTOR_ONCE": hook}}} if hook else {}


def parse_collection(inputs: str, out_dir: Path, *, fmt: str = "jsonl", checkpoint: str | None = None,
                     random_weights: bool = False, device: str = "auto", backend: str = "auto", window: int = 10,
                     batch: int = 4, threshold: float = 0.5, keep=None, ray_address: str | None = None,
                     chunk: int = 32, actors: int | None = None, log=None) -> Summary:
    """``avvp-stream batch``: every input parsed offline (full windows), one output each."""
    from .backends.base import Workload
    from .backends.registry import choose_trusted
    from .checkpoint import run_model
    from .device import resolve_device
    from .parser import CommitPolicy, OnlineParser

    paths = list_inputs(inputs)
    run_device = resolve_device(device)
    model = run_model(checkpoint, random_weights, run_device)
    engine = choose_trusted(backend, model, run_device)
    head = engine.head(model, run_device, Workload(batch=batch, window=window))
    policy = CommitPolicy.offline(window)
    outputs = ParseOutputs(out_dir, fmt, lambda: OnlineParser(head, policy, threshold, run_device), keep=keep)
    extractor_kwargs = {"device": str(run_device), "random_weights": random_weights, "features": model.config.features}
    return run_collection(ParseStages(window, chunk), outputs, paths, out_dir, extractor_kwargs=extractor_kwargs,
                          backend=backend, batch=batch, ray_address=ray_address, actors=actors, log=log)
