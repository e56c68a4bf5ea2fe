"""LLP feature folders and the packed, memory-mapped split cache.

LLP ships one ``.npy`` per video and feature (``vggish/`` 10 x 128, ``res152/`` 80 x 2048,
``r2plus1d_18/`` 10 x 512; folders and shapes come from the feature specs). Reading
thousands of small files every epoch dominates a CPU epoch, so each split is packed once
into one contiguous array per feature (per-frame features already averaged per snippet,
see ``avvp_stream.features.timing.pool_frames``) and memory-mapped afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avvp_stream.errors import AvvpError
from avvp_stream.features.spec import OFFICIAL, ByName, FeatureSpec, specs
from avvp_stream.features.timing import pool_frames

from .llp import WeakLabels, video_id
from avvp_stream.progress import progress_bar

NUM_SNIPPETS = 10

PACK_VERSION = 2


def file_shape(spec: FeatureSpec, snippets: int = NUM_SNIPPETS) -> tuple[int, int]:
    """A video's feature file: ``rows`` per snippet (80 x 2048 for ResNet's frames)."""
    return (snippets * spec.rows, spec.dim)


def folder_shapes(features=OFFICIAL) -> dict[str, tuple[int, int]]:
    """LLP feature folder -> the shape of a video's file in it."""
    return {spec.folder: file_shape(spec) for spec in specs(features)}


def feature_path(features_dir: Path, kind: str, filename: str) -> Path:
    return Path(features_dir) / kind / f"{video_id(filename)}.npy"


def load_feature(features_dir: Path, spec: FeatureSpec, filename: str) -> np.ndarray:
    """One feature file, shape-checked, as float32."""
    kind = spec.folder
    path = feature_path(features_dir, kind, filename)
    if not path.is_file():
        raise AvvpError(f"missing feature file {path} (video {filename})")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise AvvpError(f"{path}: not a readable .npy file ({exc})") from None
    if arr.shape != file_shape(spec):
        raise AvvpError(f"{path}: shape {arr.shape}, expected {file_shape(spec)} for {kind}")
    return arr.astype(np.float32, copy=False)


def load_video(features_dir: Path, filename: str, features=OFFICIAL) -> tuple[np.ndarray, ...]:
    """One array per feature of one video, as stored (official: audio 10x128, res152
    80x2048, r2plus1d 10x512)."""
    return tuple(load_feature(features_dir, spec, filename) for spec in specs(features))


@dataclass
class PackedSplit(ByName):
    """A split as contiguous arrays: one (N, T, D) per feature (per-frame features as their
    snippet means), in HAN's input order, and labels (N, C). ``split.audio`` reads one."""

    filenames: list[str]
    arrays: dict[str, np.ndarray]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.filenames)

    def batch(self, idx: np.ndarray):
        """HAN's inputs and the labels for the given indices (sorted reads are sequential
        on the memmap)."""
        return (*(x[idx] for x in self.arrays.values()), self.labels[idx])


def _cache_key(features_dir: Path, split: WeakLabels, features) -> str:
    """Changes when the features, the file list or any feature file (size, mtime) changes."""
    h = hashlib.sha1()
    h.update(f"v{PACK_VERSION}\0{Path(features_dir).resolve()}\0{','.join(features)}\0".encode())
    for filename in split.filenames:
        h.update(filename.encode() + b"\0")
        for spec in specs(features):
            try:
                st = os.stat(feature_path(features_dir, spec.folder, filename))
                h.update(f"{st.st_size}:{st.st_mtime_ns};".encode())
            except OSError:
                h.update(b"missing;")
    h.update(split.labels.tobytes())
    return h.hexdigest()[:20]


def default_cache_dir() -> Path:
    from avvp_stream.paths import cache_home

    return cache_home() / "packed"


def pack_split(
    features_dir: str | Path,
    split: WeakLabels,
    cache_dir: str | Path | None = None,
    desc: str = "packing",
    features=OFFICIAL,
) -> PackedSplit:
    """Pack (once) and memory-map a split's ``features``; later calls only map the cache."""
    features_dir = Path(features_dir)
    if not features_dir.is_dir():
        raise AvvpError(f"features folder not found: {features_dir}")
    for spec in specs(features):
        if not (features_dir / spec.folder).is_dir():
            raise AvvpError(f"features folder {features_dir} has no {spec.folder}/ subfolder")
    cache_root = Path(cache_dir) if cache_dir else default_cache_dir()
    target = cache_root / f"{split.path.stem}-{_cache_key(features_dir, split, features)}"
    if not (target / "meta.json").is_file():
        _write_pack(features_dir, split, target, desc, features)
    return open_pack(target)


def _write_pack(features_dir: Path, split: WeakLabels, target: Path, desc: str, features) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        n = len(split.filenames)
        out = {spec.name: np.lib.format.open_memmap(tmp / f"{spec.name}.npy", mode="w+", dtype=np.float32,
                                                    shape=(n, NUM_SNIPPETS, spec.dim))
               for spec in specs(features)}
        for i, filename in enumerate(progress_bar(split.filenames, desc=desc)):
            for spec, x in zip(specs(features), load_video(features_dir, filename, features)):
                out[spec.name][i] = pool_frames(x, spec.rows) if spec.per_frame else x
        for arr in out.values():
            arr.flush()
        del out
        np.save(tmp / "labels.npy", split.labels)
        (tmp / "filenames.txt").write_text("\n".join(split.filenames) + "\n")
        (tmp / "meta.json").write_text(json.dumps({"version": PACK_VERSION, "n": n, "source": str(features_dir),
                                                   "features": list(features)}))
        if target.exists():  # a concurrent packer finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def open_pack(path: str | Path) -> PackedSplit:
    path = Path(path)
    meta = json.loads((path / "meta.json").read_text())
    return PackedSplit(
        filenames=(path / "filenames.txt").read_text().splitlines(),
        arrays={name: np.load(path / f"{name}.npy", mmap_mode="r") for name in meta["features"]},
        labels=np.load(path / "labels.npy"),
    )
