"""A generator of LLP-format data with dense ground truth (``avvp-train synth``).

Each video holds 1-3 events of the 25 LLP classes; an event is audio-only, visual-only or
audio-visual, and the two halves of some audio-visual events are temporally offset. Each
modality's features are random projections of a small latent space where classes are
prototypes, plus a per-video scene, per-snippet nuisance and per-dimension noise. Audio
classes are better separated than visual ones (and visually similar classes share part of
their prototype), so a model trained on video-level labels alone leans on audio: the
modality bias of LLP. The written folder has the layout of the LLP release: the six csv
files and ``feats/{vggish,res152,r2plus1d_18}/<id>.npy``.
"""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass
from pathlib import Path

import json
import numpy as np

from avvp_stream.classes import CLASSES, NUM_CLASSES
from avvp_stream.errors import AvvpError
from avvp_stream.features.timing import FRAMES_PER_SNIPPET
from avvp_stream.progress import progress_bar

from .feature_store import NUM_SNIPPETS, folder_shapes
from .llp import DENSE_FILES, FULL_FILE, SPLIT_FILES

ID_ALPHABET = string.ascii_letters + string.digits + "-_"
# Visually confusable families (share half of their visual prototype).
VISUAL_FAMILIES = (
    ("Cello", "Violin_fiddle", "Acoustic_guitar", "Banjo"),
    ("Car", "Motorcycle", "Lawn_mower", "Helicopter"),
    ("Dog", "Cat", "Chicken_rooster"),
    ("Baby_laughter", "Baby_cry_infant_cry", "Speech", "Singing"),
    ("Blender", "Vacuum_cleaner", "Frying_(food)"),
)


@dataclass(frozen=True)
class SynthSpec:
    """What ``avvp-train synth`` generates; saved as ``synth.json`` beside the data."""

    train: int = 600
    val: int = 100
    test: int = 200
    seed: int = 0
    latent_dim: int = 24
    audio_strength: float = 4.0  # prototype norm (nuisance: std 1 per latent dim)
    visual_strength: float = 2.5
    p_audio_visual: float = 0.5
    p_audio_only: float = 0.3  # the rest are visual-only
    p_offset: float = 0.3  # audio-visual events whose visual half is shifted
    noise: float = 0.3  # per-dimension noise added after the projection


class _World:
    """Class prototypes and projections shared by every video of a dataset."""

    def __init__(self, spec: SynthSpec, rng: np.random.Generator):
        k = spec.latent_dim
        self.spec = spec

        def unit(n):
            x = rng.standard_normal((n, k))
            return x / np.linalg.norm(x, axis=1, keepdims=True)

        self.audio_proto = unit(NUM_CLASSES) * spec.audio_strength
        visual = unit(NUM_CLASSES)
        for family in VISUAL_FAMILIES:
            shared = unit(1)[0]
            for name in family:
                c = CLASSES.index(name)
                v = 0.5 * visual[c] + 0.5 * shared
                visual[c] = v / np.linalg.norm(v)
        self.visual_proto = visual * spec.visual_strength
        dims = {kind: shape[1] for kind, shape in folder_shapes().items()}
        self.proj = {kind: rng.standard_normal((k, d)).astype(np.float32) / np.sqrt(k) for kind, d in dims.items()}
        # Class frequencies skewed like LLP (Speech by far the most common).
        freq = np.linspace(1.0, 0.25, NUM_CLASSES)
        freq[CLASSES.index("Speech")] = 4.0
        self.class_p = freq / freq.sum()


def _random_id(rng: np.random.Generator, used: set[str]) -> str:
    while True:
        vid = "".join(rng.choice(list(ID_ALPHABET), 11))
        if vid not in used:
            used.add(vid)
            return vid


def _segment(rng: np.random.Generator) -> tuple[int, int]:
    length = int(rng.choice([1, 2, 3, 4, 5, 6, 8, 10], p=[0.08, 0.12, 0.15, 0.15, 0.12, 0.1, 0.1, 0.18]))
    onset = int(rng.integers(0, NUM_SNIPPETS - length + 1))
    return onset, onset + length


def _events(world: _World, rng: np.random.Generator):
    """Dense events of one video: lists of (onset, offset, class) per modality."""
    spec = world.spec
    n = int(rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15]))
    classes = rng.choice(NUM_CLASSES, size=n, replace=False, p=world.class_p)
    audio, visual = [], []
    for c in classes:
        kind = rng.choice(3, p=[spec.p_audio_visual, spec.p_audio_only, 1 - spec.p_audio_visual - spec.p_audio_only])
        on, off = _segment(rng)
        if kind in (0, 1):
            audio.append((on, off, int(c)))
        if kind == 0:
            if rng.random() < spec.p_offset:
                shift = int(rng.choice([-3, -2, -1, 1, 2, 3]))
                on, off = max(0, on + shift), min(NUM_SNIPPETS, off + shift)
                if off <= on:
                    on, off = _segment(rng)
            visual.append((on, off, int(c)))
        elif kind == 2:
            visual.append((on, off, int(c)))
    return audio, visual


def _latent(events, protos: np.ndarray, rng: np.random.Generator, k: int) -> np.ndarray:
    """(T, k) latent sequence: scene + nuisance + active class prototypes."""
    z = 0.7 * rng.standard_normal((1, k)) + 0.7 * rng.standard_normal((NUM_SNIPPETS, k))
    for on, off, c in events:
        z[on:off] += protos[c] * rng.uniform(0.7, 1.3)
    return z


def _features(world: _World, audio_events, visual_events, rng: np.random.Generator):
    spec = world.spec
    k = spec.latent_dim
    za = _latent(audio_events, world.audio_proto, rng, k)
    zv = _latent(visual_events, world.visual_proto, rng, k)
    # 8 frames per snippet: the snippet's visual latent plus per-frame jitter.
    frames = np.repeat(zv, FRAMES_PER_SNIPPET, axis=0) + 0.5 * rng.standard_normal((NUM_SNIPPETS * FRAMES_PER_SNIPPET, k))
    out = {
        "vggish": za @ world.proj["vggish"],
        "res152": np.maximum(frames @ world.proj["res152"], 0.0),  # ResNet features are post-ReLU
        "r2plus1d_18": np.maximum(zv @ world.proj["r2plus1d_18"], 0.0),
    }
    return {
        kind: (x + spec.noise * rng.standard_normal(x.shape)).astype(np.float32)
        for kind, x in out.items()
    }


def _labels(events) -> str:
    names = []
    for _, _, c in events:
        if CLASSES[c] not in names:
            names.append(CLASSES[c])
    return ",".join(names)


def generate(out: str | Path, spec: SynthSpec = SynthSpec()) -> Path:
    """Write a synthetic LLP-format dataset to ``out`` and return it."""
    out = Path(out)
    if spec.train < 1 or spec.val < 1 or spec.test < 1:
        raise AvvpError("synth: every split needs at least one video")
    if (out / "synth.json").is_file() and json.loads((out / "synth.json").read_text()) == asdict(spec):
        return out  # already generated with this spec (generation is deterministic)
    if out.exists() and any(out.iterdir()):
        raise AvvpError(f"synth: output folder {out} is not empty (and holds no dataset of this spec)")
    feats = out / "feats"
    for kind in folder_shapes():
        (feats / kind).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    world = _World(spec, rng)
    used: set[str] = set()
    weak = {split: [] for split in SPLIT_FILES}
    dense = {"audio": [], "visual": []}
    plan = [split for split in SPLIT_FILES for _ in range(getattr(spec, split))]
    for split in progress_bar(plan, desc="generating"):
        vid = _random_id(rng, used)
        start = int(rng.integers(0, 30)) * 10
        filename = f"{vid}_{start}_{start + 10}"
        audio_events, visual_events = _events(world, rng)
        for kind, arr in _features(world, audio_events, visual_events, rng).items():
            np.save(feats / kind / f"{vid}.npy", arr)
        weak[split].append((filename, _labels(audio_events + visual_events)))
        if split != "train":  # LLP has dense labels for val and test only
            for modality, events in (("audio", audio_events), ("visual", visual_events)):
                dense[modality].extend((filename, on, off, CLASSES[c]) for on, off, c in events)
    for split, rows in weak.items():
        _write_tsv(out / SPLIT_FILES[split], ("filename", "event_labels"), rows)
    _write_tsv(out / FULL_FILE, ("filename", "event_labels"), [r for rows in weak.values() for r in rows])
    for modality, rows in dense.items():
        _write_tsv(out / DENSE_FILES[modality], ("filename", "onset", "offset", "event_labels"), rows)
    (out / "synth.json").write_text(json.dumps(asdict(spec), indent=1) + "\n")
    return out


def _write_tsv(path: Path, header, rows) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join(str(x) for x in row) + "\n")
