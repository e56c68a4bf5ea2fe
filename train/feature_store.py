"""LLP feature folders and the packed, memory-mapped split cache.

LLP ships one ``.npy`` per video and modality (``vggish/`` 10 x 128, ``res152/`` 80 x 2048,
``r2plus1d_18/`` 10 x 512). Reading thousands of small files every epoch dominates a CPU
epoch, so each split is packed once into three contiguous arrays (ResNet frames already
averaged per snippet, see ``avvp_stream.features.timing.pool_frames``) and memory-mapped afterwards.
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
from avvp_stream.features.timing import FRAMES_PER_SNIPPET, pool_frames

from .llp import WeakLabels, video_id
from avvp_stream.progress import progress_bar

NUM_SNIPPETS = 10

FEATURE_SHAPES = {
    "vggish": (NUM_SNIPPETS, 128),
    "res152": (NUM_SNIPPETS * FRAMES_PER_SNIPPET, 2048),
    "r2plus1d_18": (NUM_SNIPPETS, 512),
}
PACK_VERSION = 1


def feature_path(features_dir: Path, kind: str, filename: str) -> Path:
    return Path(features_dir) / kind / f"{video_id(filename)}.npy"


def load_feature(features_dir: Path, kind: str, filename: str) -> np.ndarray:
    """One feature file, shape-checked, as float32."""
    path = feature_path(features_dir, kind, filename)
    if not path.is_file():
        raise AvvpError(f"missing feature file {path} (video {filename})")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise AvvpError(f"{path}: not a readable .npy file ({exc})") from None
    if arr.shape != FEATURE_SHAPES[kind]:
        raise AvvpError(f"{path}: shape {arr.shape}, expected {FEATURE_SHAPES[kind]} for {kind}")
    return arr.astype(np.float32, copy=False)


def load_video(features_dir: Path, filename: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(audio 10x128, res152 80x2048, r2plus1d 10x512) of one video, the official way."""
    return tuple(load_feature(features_dir, kind, filename) for kind in FEATURE_SHAPES)


@dataclass
class PackedSplit:
    """A split as contiguous arrays: audio (N, T, 128), video_2d (N, T, 2048) snippet means
    of the ResNet frames, video_3d (N, T, 512), labels (N, C)."""

    filenames: list[str]
    audio: np.ndarray
    video_2d: np.ndarray
    video_3d: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.filenames)

    def batch(self, idx: np.ndarray):
        """Arrays for the given indices (sorted reads are sequential on the memmap)."""
        return self.audio[idx], self.video_2d[idx], self.video_3d[idx], self.labels[idx]


def _cache_key(features_dir: Path, split: WeakLabels) -> str:
    """Changes when the file list or any feature file (size, mtime) changes."""
    h = hashlib.sha1()
    h.update(f"v{PACK_VERSION}\0{Path(features_dir).resolve()}\0".encode())
    for filename in split.filenames:
        h.update(filename.encode() + b"\0")
        for kind in FEATURE_SHAPES:
            try:
                st = os.stat(feature_path(features_dir, kind, filename))
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
) -> PackedSplit:
    """Pack (once) and memory-map a split's features; later calls only map the cache."""
    features_dir = Path(features_dir)
    if not features_dir.is_dir():
        raise AvvpError(f"features folder not found: {features_dir}")
    for kind in FEATURE_SHAPES:
        if not (features_dir / kind).is_dir():
            raise AvvpError(f"features folder {features_dir} has no {kind}/ subfolder")
    cache_root = Path(cache_dir) if cache_dir else default_cache_dir()
    target = cache_root / f"{split.path.stem}-{_cache_key(features_dir, split)}"
    if not (target / "meta.json").is_file():
        _write_pack(features_dir, split, target, desc)
    return open_pack(target)


def _write_pack(features_dir: Path, split: WeakLabels, target: Path, desc: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        n = len(split.filenames)
        arrays = {
            "audio": (NUM_SNIPPETS, 128),
            "video_2d": (NUM_SNIPPETS, 2048),
            "video_3d": (NUM_SNIPPETS, 512),
        }
        out = {
            name: np.lib.format.open_memmap(tmp / f"{name}.npy", mode="w+", dtype=np.float32, shape=(n, *shape))
            for name, shape in arrays.items()
        }
        for i, filename in enumerate(progress_bar(split.filenames, desc=desc)):
            audio, res152, r2p1d = load_video(features_dir, filename)
            out["audio"][i] = audio
            out["video_2d"][i] = pool_frames(res152, FRAMES_PER_SNIPPET)
            out["video_3d"][i] = r2p1d
        for arr in out.values():
            arr.flush()
        del out
        np.save(tmp / "labels.npy", split.labels)
        (tmp / "filenames.txt").write_text("\n".join(split.filenames) + "\n")
        (tmp / "meta.json").write_text(json.dumps({"version": PACK_VERSION, "n": n, "source": str(features_dir)}))
        if target.exists():  # a concurrent packer finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def open_pack(path: str | Path) -> PackedSplit:
    path = Path(path)
    return PackedSplit(
        filenames=(path / "filenames.txt").read_text().splitlines(),
        audio=np.load(path / "audio.npy", mmap_mode="r"),
        video_2d=np.load(path / "video_2d.npy", mmap_mode="r"),
        video_3d=np.load(path / "video_3d.npy", mmap_mode="r"),
        labels=np.load(path / "labels.npy"),
    )
