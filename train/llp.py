"""The LLP annotation files as distributed (tab-separated csv).

Weak labels: ``filename<TAB>event_labels`` (comma-separated classes), one file per split.
Dense labels: ``filename<TAB>onset<TAB>offset<TAB>event_labels`` (whole seconds, one class
per row), one file per modality, covering the val and test videos.
A filename is ``<11-char YouTube id>_<start>_<end>``; feature files are named by the id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avvp_stream.classes import CLASS_INDEX, NUM_CLASSES
from avvp_stream.errors import AvvpError

SPLIT_FILES = {"train": "AVVP_train.csv", "val": "AVVP_val_pd.csv", "test": "AVVP_test_pd.csv"}
FULL_FILE = "AVVP_dataset_full.csv"
DENSE_FILES = {"audio": "AVVP_eval_audio.csv", "visual": "AVVP_eval_visual.csv"}
ALL_FILES = (*SPLIT_FILES.values(), FULL_FILE, *DENSE_FILES.values())

WEAK_HEADER = ["filename", "event_labels"]
DENSE_HEADER = ["filename", "onset", "offset", "event_labels"]


def video_id(filename: str) -> str:
    """Feature files are named by the YouTube id, the first 11 characters (may start with '-')."""
    return filename[:11]


@dataclass(frozen=True)
class WeakLabels:
    """One split: filenames in file order and their (N, C) multi-hot video-level labels."""

    path: Path
    filenames: list[str]
    labels: np.ndarray  # (N, C) float32


@dataclass(frozen=True)
class DenseEvent:
    onset: int
    offset: int
    class_index: int


def _rows(path: Path, header: list[str]):
    """Yield (line number, fields) of a tab-separated file after checking its header."""
    if not path.is_file():
        raise AvvpError(f"annotation file not found: {path}")
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().splitlines()
    if not lines or lines[0].strip().split("\t") != header:
        raise AvvpError(f"{path}:1: expected the header {'<TAB>'.join(header)!r}")
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.rstrip("\r").split("\t")
        if len(fields) != len(header):
            raise AvvpError(f"{path}:{lineno}: expected {len(header)} tab-separated fields, got {len(fields)}")
        yield lineno, fields


def _class_index(name: str, path: Path, lineno: int) -> int:
    try:
        return CLASS_INDEX[name.strip()]
    except KeyError:
        raise AvvpError(f"{path}:{lineno}: unknown class {name.strip()!r}") from None


def read_weak_labels(path: str | Path) -> WeakLabels:
    path = Path(path)
    filenames, rows = [], []
    for lineno, (filename, labels) in _rows(path, WEAK_HEADER):
        vec = np.zeros(NUM_CLASSES, dtype=np.float32)
        for name in labels.split(","):
            vec[_class_index(name, path, lineno)] = 1.0
        filenames.append(filename.strip())
        rows.append(vec)
    if not filenames:
        raise AvvpError(f"{path}: the split has no videos")
    return WeakLabels(path, filenames, np.stack(rows))


def read_dense_labels(path: str | Path) -> dict[str, list[DenseEvent]]:
    """Events per filename, in file order (matched to splits by the full filename, as the
    official evaluator does)."""
    path = Path(path)
    events: dict[str, list[DenseEvent]] = {}
    for lineno, (filename, onset, offset, label) in _rows(path, DENSE_HEADER):
        try:
            on, off = int(onset), int(offset)
        except ValueError:
            raise AvvpError(f"{path}:{lineno}: onset/offset must be whole seconds, got {onset!r}, {offset!r}") from None
        if on < 0 or off < 0:
            raise AvvpError(f"{path}:{lineno}: negative onset/offset [{on}, {off})")
        # offset <= onset occurs in the released files (e.g. "9 0"); like the official
        # evaluator (GT[c, onset:offset] = 1) such a row marks no snippet.
        events.setdefault(filename.strip(), []).append(DenseEvent(on, off, _class_index(label, path, lineno)))
    return events


def dense_matrix(events: list[DenseEvent] | None, num_snippets: int = 10) -> np.ndarray:
    """(C, T) binary ground truth of one video, as ``GT[c, onset:offset] = 1``."""
    gt = np.zeros((NUM_CLASSES, num_snippets))
    for ev in events or ():
        gt[ev.class_index, ev.onset:ev.offset] = 1
    return gt


@dataclass(frozen=True)
class Annotations:
    """The six LLP files of a dataset folder."""

    root: Path

    def split(self, name: str) -> WeakLabels:
        if name not in SPLIT_FILES:
            raise AvvpError(f"unknown split {name!r}: choose one of {', '.join(SPLIT_FILES)}")
        return read_weak_labels(self.root / SPLIT_FILES[name])

    def dense(self) -> tuple[dict[str, list[DenseEvent]], dict[str, list[DenseEvent]]]:
        return (read_dense_labels(self.root / DENSE_FILES["audio"]),
                read_dense_labels(self.root / DENSE_FILES["visual"]))
