"""What a feature is, declared once: everything else (the extractor, HAN's inputs and
projections, the engines' graphs, the packed training split, LLP's folders) reads it.

A new feature is one module that defines a ``FeatureSpec`` and one ``register`` call;
``tests/test_feature_spec.py`` adds a made-up one end to end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

MODALITIES = ("audio", "visual")  # HAN's two streams
CONSUMES = ("audio", "frames")


@dataclass(frozen=True)
class FeatureSpec:
    """One per-snippet feature.

    - ``name``: HAN's input, the packed split's array and the ONNX input of that name.
    - ``dim``: the length of one feature row.
    - ``modality``: the HAN stream it feeds. A stream fed by several features projects
      each, concatenates the projections and fuses them with one linear layer (the
      official visual stream: ``fc_v``, ``fc_st``, ``fc_fusion``).
    - ``consumes``/``count``: ``"audio"``: 16 kHz samples, ``prepare(waveform, num)``
      frames ``num`` examples of ``count`` samples from a clip; ``"frames"``: ``count`` of
      a snippet's 8 frames (spread evenly), ``prepare(uint8 (N, count, H, W, 3))``.
    - ``rows``: feature rows per snippet: 1, or one per frame (``rows == count``), which
      HAN averages per snippet (ResNet-152's 8 frames).
    - ``network``: its name in the engines and their caches; ``build(states, **options)``
      makes it (``states``: the weight files' state dicts by name, None for random
      initialisation); ``weights()``: its weight files by name.
    - ``example``: the shape of one network input (ONNX export, CUDA graph capture).
    - ``projection``: the HAN layer that projects it (official names for the three).
    - ``folder``: the LLP feature folder it is stored in.
    """

    name: str
    dim: int
    modality: str
    consumes: str
    count: int
    network: str
    build: Callable[..., Any] = field(repr=False, compare=False)
    prepare: Callable[..., Any] = field(repr=False, compare=False)
    example: tuple[int, ...]
    weights: Callable[[], dict] = field(repr=False, compare=False, default=dict)
    rows: int = 1
    projection: str = ""
    folder: str = ""
    channels_last: bool = False  # runs in channels-last memory on the fast path (convolutions)
    # may run in reduced precision: fp16 on a GPU, int8 weights on ONNX Runtime (VGGish may
    # not: its output is quantised to 8 bits, and bins would flip)
    half: bool = False

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"{self.name}: modality must be one of {MODALITIES}, got {self.modality!r}")
        if self.consumes not in CONSUMES:
            raise ValueError(f"{self.name}: consumes must be one of {CONSUMES}, got {self.consumes!r}")
        if self.rows not in (1, self.count):
            raise ValueError(f"{self.name}: rows must be 1 or one per frame ({self.count})")
        if not self.projection:
            object.__setattr__(self, "projection", f"fc_{self.name}")
        if not self.folder:
            object.__setattr__(self, "folder", self.name)

    @property
    def per_frame(self) -> bool:
        return self.rows > 1


_REGISTRY: dict[str, FeatureSpec] = {}
OFFICIAL = ("audio", "video_2d", "video_3d")  # what HAN was trained on; the default everywhere


def register(spec: FeatureSpec) -> FeatureSpec:
    if spec.name in _REGISTRY and _REGISTRY[spec.name] != spec:
        raise ValueError(f"another feature is already registered as {spec.name!r}")
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    if name in OFFICIAL:
        raise ValueError(f"{name!r} is one of the official features")
    _REGISTRY.pop(name, None)


@contextmanager
def registered(spec: FeatureSpec) -> Iterator[FeatureSpec]:
    """``spec`` registered for the block (tests, experiments)."""
    register(spec)
    try:
        yield spec
    finally:
        unregister(spec.name)


def _load_official() -> None:
    if not all(name in _REGISTRY for name in OFFICIAL):
        from . import official  # noqa: F401 (registers the three)


def get(name: str) -> FeatureSpec:
    _load_official()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown feature {name!r}; registered: {', '.join(_REGISTRY)}") from None


def specs(names=OFFICIAL) -> tuple[FeatureSpec, ...]:
    """The specs of ``names``, in that order: the order of HAN's inputs."""
    return tuple(get(n) for n in names)


class ByName:
    """Arrays kept by feature name, ``x.audio`` reading ``x.arrays["audio"]`` (extracted
    features, the packed split)."""

    arrays: dict

    def __getattr__(self, name: str):
        try:
            return self.__dict__["arrays"][name]
        except KeyError:
            raise AttributeError(name) from None


def by_modality(names=OFFICIAL) -> dict[str, list[FeatureSpec]]:
    out: dict[str, list[FeatureSpec]] = {m: [] for m in MODALITIES}
    for spec in specs(names):
        out[spec.modality].append(spec)
    return out
