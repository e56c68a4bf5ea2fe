"""One object that turns snippets into HAN's inputs (one per feature spec), batched, on CPU or GPU."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from .. import weights as W
from ..device import resolve_device
from ..errors import AvvpError
from .spec import OFFICIAL, ByName, specs
from .timing import FRAMES_PER_SNIPPET, pool_frames


@dataclass
class Features(ByName):
    """Per-snippet features by name (``spec.py``): (N, D), or (N, k, D) for a per-frame
    feature (k frames per snippet: 8 in the full profile). ``features.audio`` and the like
    read one."""

    arrays: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def pooled(self, name: str) -> np.ndarray:
        """(N, D): a per-frame feature averaged per snippet (what HAN's projection consumes)."""
        x = self.arrays[name]
        if x.ndim == 2:
            return x
        n, k, d = x.shape
        return pool_frames(x.reshape(n * k, d), k)

    def pooled_2d(self) -> np.ndarray:
        return self.pooled("video_2d")

    def head_inputs(self) -> list[np.ndarray]:
        """HAN's inputs, in the spec order: (N, D) each."""
        return [self.pooled(name) for name in self.arrays]

    def rows(self, i: int) -> list[np.ndarray]:
        """Snippet ``i``'s features, as the parser's ``insert_snippet`` takes them."""
        return [x[i] for x in self.arrays.values()]

    def slice(self, start: int, stop: int) -> "Features":
        return Features({name: x[start:stop] for name, x in self.arrays.items()})


def frame_subset(k: int) -> np.ndarray:
    """Which of a snippet's 8 frames a feature reads when it reads k: the frame at the
    centre of each of k equal parts of the second."""
    if not 1 <= k <= FRAMES_PER_SNIPPET:
        raise AvvpError(f"frames per snippet must be 1..{FRAMES_PER_SNIPPET}, got {k}")
    return np.floor((np.arange(k) + 0.5) * FRAMES_PER_SNIPPET / k).astype(int)


def weight_files(features=OFFICIAL) -> dict:
    """Every weight file the features' networks load, by name."""
    return {name: f for spec in specs(features) for name, f in spec.weights().items()}


def _numpy_array_globals() -> list:
    """What unpickling plain numpy arrays needs (and nothing that can run code)."""
    core = getattr(np, "_core", None) or np.core
    return [core.multiarray._reconstruct, np.ndarray, np.dtype,
            *{type(np.dtype(t)) for t in (np.float32, np.float64, np.int64, np.uint8)}]


def _load_state(path) -> dict:
    """``weights_only`` loading; numpy arrays (as in the VGGish PCA file) are allowed."""
    try:
        with torch.serialization.safe_globals(_numpy_array_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise AvvpError(f"{path}: cannot read weights safely ({str(exc).splitlines()[0][:160]})") from None


class FeatureExtractor:
    """The features' networks (``features``: names of registered specs; default the three
    HAN was trained on) with their preprocessing.

    ``random_weights`` builds every network randomly initialised (seeded), needing no
    file: for smoke tests and benchmarks only. The convolutions run with channels-last
    memory, in fp16 on a GPU where the spec allows (its fast path; on the 2-core CPU it
    measured the same as fp32 eager); ``fast=False`` is the plain fp32 eager reference.
    ``resnet_frames`` < 8 is the fast live profile: only that many of each snippet's
    frames go through the per-frame networks (ResNet-152, the costliest); its deviation
    from the full profile is measured in benchmarks/extract_speed.py. ``options`` passes
    keyword arguments to a network's ``build`` by network name.
    """

    def __init__(self, device: str = "auto", random_weights: bool = False, vggish_postprocess: bool = True,
                 weight_paths: dict | None = None, frame_batch: int | None = None, seed: int = 0,
                 resnet_frames: int = FRAMES_PER_SNIPPET, files: dict | None = None, fast: bool = True,
                 features=OFFICIAL, options: dict | None = None):
        self.device = resolve_device(device)
        self.fast = fast
        self.specs = specs(features)
        self.subsets = {s.name: frame_subset(min(resnet_frames, s.count) if s.per_frame else s.count)
                        for s in self.specs if s.consumes == "frames"}
        self.half = fast and self.device.type == "cuda"
        # Frames per ResNet call: large batches feed a GPU; on a CPU they only thrash the
        # cache (ResNet-152: 179 ms/frame at 8, 237 ms/frame at 64 on 2 cores).
        self.frame_batch = frame_batch or (64 if self.device.type == "cuda" else 16)
        options = {"vggish": {"postprocess": vggish_postprocess}, **(options or {})}
        if random_weights:
            print("avvp-stream: --random-weights: every feature network is randomly initialised; "
                  "features are meaningless", file=sys.stderr)
            torch.manual_seed(seed)
            states = {s.network: None for s in self.specs}
        else:
            files = files or weight_files(features)
            names = {s.network: list(s.weights()) for s in self.specs}
            flat = [n for ns in names.values() for n in ns]
            paths = dict(zip(flat, W.resolve_all([(files[n], (weight_paths or {}).get(n)) for n in flat])))
            states = {net: {n: _load_state(paths[n]) for n in ns} for net, ns in names.items()}
        self.nets: dict[str, torch.nn.Module] = {}
        for s in self.specs:  # built in spec order: random initialisation depends on it
            net = s.build(states[s.network], **options.get(s.network, {})).eval().to(self.device)
            if self.half and s.half:
                net.half()
            if fast and s.channels_last:
                net.to(memory_format=self._layout(s))
            self.nets[s.network] = net
        self.runner = None  # the networks on another engine (``use_networks``); None: eager torch
        self.times = None  # a stages.StageTimes: where each call's time goes (set by the parse loop)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    def _layout(self, spec) -> torch.memory_format:
        if not (self.fast and spec.channels_last):
            return torch.contiguous_format
        return torch.channels_last_3d if len(spec.example) == 4 else torch.channels_last

    def use_networks(self, runner) -> None:
        """Run the networks through ``runner`` (``run(name, tensor) -> tensor``, from an
        engine's ``feature_networks``); None goes back to eager torch."""
        self.runner = runner

    def use_onnxruntime(self, int8: bool = False) -> None:
        """The networks on ONNX Runtime (CPU), exported once into the cache; ``int8``
        quantises ResNet's and R(2+1)D's weights (benchmarks/onnx_features.py)."""
        from ..backends.base import NumpyNetworks
        from ..backends.onnxruntime_backend import OnnxRuntimeExtractors

        self.use_networks(NumpyNetworks(OnnxRuntimeExtractors(self, int8=int8)))

    @property
    def networks(self) -> dict[str, tuple[torch.nn.Module, torch.memory_format]]:
        """network name -> (network, the memory layout it runs in): the names every engine uses."""
        return {s.network: (self.nets[s.network], self._layout(s)) for s in self.specs}

    def example(self, spec, batch: int = 2) -> torch.Tensor:
        """A random input of ``spec``'s network (ONNX export, graph capture)."""
        g = torch.Generator().manual_seed(0)
        return torch.randn(batch, *spec.example, generator=g)

    def input_dtype(self, spec) -> torch.dtype:
        """What ``spec``'s network takes here: fp16 on a GPU where the spec allows."""
        return torch.float16 if self.half and spec.half else torch.float32

    def prepare(self, spec, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 8, H, W, 3) -> the network inputs of a frames feature."""
        chosen = frames[:, torch.as_tensor(self.subsets[spec.name], device=frames.device)]
        return spec.prepare(chosen).to(self.input_dtype(spec))

    def _prepare(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """uint8 (N, 8, H, W, 3) -> each frames feature's network inputs. A few snippets at
        a time, so that the float copies at the input's size stay small."""
        out: dict[str, list[torch.Tensor]] = {s.name: [] for s in self.specs if s.consumes == "frames"}
        step = max(1, self.frame_batch // FRAMES_PER_SNIPPET)
        for i in range(0, frames.shape[0], step):
            part = frames[i:i + step].to(self.device)
            for s in self.specs:
                if s.consumes == "frames":
                    out[s.name].append(self.prepare(s, part))
        return {name: torch.cat(parts) for name, parts in out.items()}

    def _timed(self, stage: str):
        return self.times.stage(stage) if self.times is not None else nullcontext()

    def _forward(self, name: str, x: torch.Tensor, chunk: int) -> torch.Tensor:
        """Network ``name`` on the chosen engine, ``chunk`` inputs per call -> float32."""
        outputs = []
        with self._timed(name):
            for i in range(0, x.shape[0], chunk):
                part = x[i:i + chunk]
                if self.runner is not None:
                    out = self.runner.run(name, part)
                else:
                    net, fmt = self.networks[name]
                    out = net(part.contiguous(memory_format=fmt))
                outputs.append(out.float())
        return torch.cat(outputs)

    def chunk(self, spec, n: int) -> int:
        """Inputs per network call: every audio example at once; frames networks as many
        inputs as ``frame_batch`` frames make."""
        if spec.consumes == "audio":
            return max(1, n)
        per_input = 1 if spec.per_frame else len(self.subsets[spec.name])
        return max(1, self.frame_batch // per_input)

    def call_sizes(self, spec, snippets: int) -> list[int]:
        """The input batch sizes of ``spec``'s network calls for ``snippets`` snippets (the
        shapes engines that specialise per shape prepare for)."""
        n = snippets * (len(self.subsets[spec.name]) if spec.per_frame else 1)
        chunk = self.chunk(spec, n)
        return sorted({min(chunk, n - i) for i in range(0, n, chunk)})

    def run(self, spec, x: torch.Tensor) -> torch.Tensor:
        """One feature's network over its prepared inputs -> (inputs, D) float32."""
        return self._forward(spec.network, x, self.chunk(spec, x.shape[0]))

    def _run(self, inputs: dict[str, torch.Tensor], n: int) -> Features:
        """Every network over a batch of ``n`` snippets (any number of videos)."""
        arrays = {}
        for s in self.specs:
            out = self.run(s, inputs[s.name])
            arrays[s.name] = (out.reshape(n, len(self.subsets[s.name]), -1) if s.per_frame else out).cpu().numpy()
        return Features(arrays)

    def _audio(self, waveform: torch.Tensor, num: int) -> dict[str, torch.Tensor]:
        return {s.name: s.prepare(waveform, num).to(torch.float32) for s in self.specs if s.consumes == "audio"}

    @torch.inference_mode()
    def clips(self, items: list[tuple[np.ndarray, np.ndarray]]) -> list[Features]:
        """Several whole clips (``audio``, ``frames`` (8T, H, W, 3)) of any frame sizes,
        run through each network as one batch; audio framed as LLP's release framed a
        clip (examples every 0.96 s)."""
        def prepared(audio, frames):
            t = frames.shape[0] // FRAMES_PER_SNIPPET
            wave = torch.as_tensor(audio, dtype=torch.float32, device=self.device)
            return t, self._audio(wave, t), torch.as_tensor(frames).reshape(t, FRAMES_PER_SNIPPET, *frames.shape[1:])

        return self._many([prepared(a, f) for a, f in items])

    @torch.inference_mode()
    def snippet_groups(self, items: list[tuple[np.ndarray, np.ndarray]]) -> list[Features]:
        """``snippets`` of several videos (``audio`` (N, >=15600), ``frames`` (N, 8, H, W, 3),
        any frame sizes), run through each network as one batch."""
        def prepared(audio, frames):
            wave = torch.as_tensor(audio, dtype=torch.float32, device=self.device)
            return len(audio), {n: x[:, 0] for n, x in self._audio(wave, 1).items()}, torch.as_tensor(frames)

        return self._many([prepared(a, f) for a, f in items])

    def _many(self, prepared: list[tuple[int, dict, torch.Tensor]]) -> list[Features]:
        """(snippets, audio inputs, uint8 frames (N, 8, H, W, 3)) per video -> one batch."""
        if not prepared:
            return []
        parts: dict[str, list[torch.Tensor]] = {s.name: [] for s in self.specs}
        for _, audio, frames in prepared:
            for name, x in {**audio, **self._prepare(frames)}.items():
                parts[name].append(x)
        sizes = [n for n, _, _ in prepared]
        feats = self._run({name: torch.cat(x) for name, x in parts.items()}, sum(sizes))
        starts = np.cumsum([0, *sizes])
        return [feats.slice(a, b) for a, b in zip(starts[:-1], starts[1:])]

    @torch.inference_mode()
    def snippets(self, audio: np.ndarray, frames: np.ndarray) -> Features:
        """Independent 1 s snippets: ``audio`` (N, >=15600) 16 kHz mono, each embedded from its
        own first 0.96 s; ``frames`` (N, 8, H, W, 3)."""
        frames = torch.as_tensor(frames)
        if frames.shape[:2] != (len(audio), FRAMES_PER_SNIPPET):
            raise ValueError(f"frames must be ({len(audio)}, 8, H, W, 3), got {tuple(frames.shape)}")
        with self._timed("prepare"):
            wave = torch.as_tensor(audio, dtype=torch.float32, device=self.device)
            inputs = {**{name: x[:, 0] for name, x in self._audio(wave, 1).items()}, **self._prepare(frames)}
        return self._run(inputs, len(audio))

    def clip(self, audio: np.ndarray, frames: np.ndarray) -> Features:
        """A whole clip as LLP's extraction framed it: audio examples every 0.96 s,
        ``frames`` (8T, H, W, 3) at 8 per second."""
        return self.clips([(audio, frames)])[0]
