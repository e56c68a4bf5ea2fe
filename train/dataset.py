"""Where a dataset's two parts live: the LLP csv files and the feature folders.

``--data DIR`` is the layout ``avvp-train synth`` writes (csv files + ``feats/``); the LLP
download keeps annotations and features apart, hence ``--labels`` and ``--features``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from avvp_stream.errors import AvvpError
from avvp_stream.features.spec import OFFICIAL

from .feature_store import PackedSplit, pack_split
from .llp import Annotations, DenseEvent, WeakLabels


@dataclass(frozen=True)
class DatasetLayout:
    labels_dir: Path
    features_dir: Path
    cache_dir: Path | None = None

    @classmethod
    def resolve(cls, data: Path | None, features: Path | None, labels: Path | None,
                cache_dir: Path | None = None) -> "DatasetLayout":
        if data is None and (features is None or labels is None):
            raise AvvpError("give --data DIR, or both --features DIR and --labels DIR")
        labels_dir = Path(labels) if labels else Path(data)
        features_dir = Path(features) if features else Path(data) / "feats"
        if not labels_dir.is_dir():
            raise AvvpError(f"labels folder not found: {labels_dir}")
        return cls(labels_dir, features_dir, cache_dir)

    @property
    def annotations(self) -> Annotations:
        return Annotations(self.labels_dir)

    def weak(self, split: str) -> WeakLabels:
        return self.annotations.split(split)

    def packed(self, split: str, features=OFFICIAL) -> PackedSplit:
        return pack_split(self.features_dir, self.weak(split), self.cache_dir, desc=f"packing {split}",
                          features=features)

    def dense(self) -> tuple[dict[str, list[DenseEvent]], dict[str, list[DenseEvent]]]:
        return self.annotations.dense()
