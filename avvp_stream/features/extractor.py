"""One object that turns snippets into HAN's three inputs, batched, on CPU or GPU."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch

from .. import weights as W
from ..device import resolve_device
from ..errors import AvvpError
from . import vggish, visual
from .timing import FRAMES_PER_SNIPPET, pool_frames


@dataclass
class Features:
    audio: np.ndarray  # (N, 128) VGGish
    video_2d: np.ndarray  # (N, k, 2048) ResNet-152, one row per frame (k = 8 in the full profile)
    video_3d: np.ndarray  # (N, 512) R(2+1)D-18

    def pooled_2d(self) -> np.ndarray:
        """(N, 2048) snippet means: what HAN's ``fc_v`` consumes."""
        n, k, d = self.video_2d.shape
        return pool_frames(self.video_2d.reshape(n * k, d), k)


def resnet_frame_subset(k: int) -> np.ndarray:
    """Which of a snippet's 8 frames go through ResNet-152 when only k do: the frame at the
    centre of each of k equal parts of the second."""
    if not 1 <= k <= FRAMES_PER_SNIPPET:
        raise AvvpError(f"ResNet frames per snippet must be 1..{FRAMES_PER_SNIPPET}, got {k}")
    return np.floor((np.arange(k) + 0.5) * FRAMES_PER_SNIPPET / k).astype(int)


def weight_files():
    from torchvision.models import ResNet152_Weights
    from torchvision.models.video import R2Plus1D_18_Weights

    return {
        "vggish": W.VGGISH,
        "vggish_pca": W.VGGISH_PCA,
        "resnet152": W.torchvision_file("resnet152", ResNet152_Weights.IMAGENET1K_V1),
        "r2plus1d_18": W.torchvision_file("r2plus1d_18", R2Plus1D_18_Weights.KINETICS400_V1),
    }


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
    """VGGish + ResNet-152 + R(2+1)D-18 with LLP's preprocessing.

    ``random_weights`` builds every network randomly initialised (seeded), needing no
    file: for smoke tests and benchmarks only. The convolutions run with channels-last
    memory, in fp16 on a GPU (its fast path; on the 2-core CPU it measured the same as
    fp32 eager); ``fast=False`` is the plain fp32 eager reference. ``resnet_frames`` < 8 is the fast live
    profile: only that many of each snippet's frames go through ResNet-152 (the costliest
    network); its deviation from the full profile is measured in benchmarks/extract_speed.py.
    """

    def __init__(self, device: str = "auto", random_weights: bool = False, vggish_postprocess: bool = True,
                 weight_paths: dict | None = None, frame_batch: int | None = None, seed: int = 0,
                 resnet_frames: int = FRAMES_PER_SNIPPET, files: dict | None = None, fast: bool = True):
        self.device = resolve_device(device)
        self.fast = fast
        self.resnet_subset = resnet_frame_subset(resnet_frames)
        self.half = fast and self.device.type == "cuda"
        # Frames per ResNet call: large batches feed a GPU; on a CPU they only thrash the
        # cache (ResNet-152: 179 ms/frame at 8, 237 ms/frame at 64 on 2 cores).
        self.frame_batch = frame_batch or (64 if self.device.type == "cuda" else 16)
        states = {name: None for name in ("vggish", "vggish_pca", "resnet152", "r2plus1d_18")}
        if random_weights:
            print("avvp-stream: --random-weights: every feature network is randomly initialised; "
                  "features are meaningless", file=sys.stderr)
            torch.manual_seed(seed)
        else:
            files = files or weight_files()
            paths = W.resolve_all([(files[n], (weight_paths or {}).get(n)) for n in states])
            states = {n: _load_state(p) for n, p in zip(states, paths)}
        self.vggish = vggish.VGGish(postprocess=vggish_postprocess)
        if states["vggish"] is not None:
            self.vggish.load_release(states["vggish"], states["vggish_pca"])
        self.resnet = visual.resnet152(states["resnet152"])
        self.r2plus1d = visual.r2plus1d_18(states["r2plus1d_18"])
        for net in (self.vggish, self.resnet, self.r2plus1d):
            net.eval().to(self.device)
        if self.half:
            self.resnet.half()
            self.r2plus1d.half()
        if fast:
            self.resnet.to(memory_format=torch.channels_last)
            self.r2plus1d.to(memory_format=torch.channels_last_3d)

        self.runner = None  # the networks on another engine (``use_networks``); None: eager torch

    def use_networks(self, runner) -> None:
        """Run the three networks through ``runner`` (``run(name, tensor) -> tensor``, from
        an engine's ``feature_networks``); None goes back to eager torch."""
        self.runner = runner

    def use_onnxruntime(self, int8: bool = False) -> None:
        """The three networks on ONNX Runtime (CPU), exported once into the cache; ``int8``
        quantises ResNet's and R(2+1)D's weights (benchmarks/onnx_features.py)."""
        from ..backends.base import NumpyNetworks
        from ..backends.onnxruntime_backend import OnnxRuntimeExtractors

        self.use_networks(NumpyNetworks(OnnxRuntimeExtractors(self, int8=int8)))

    @torch.inference_mode()
    def embed(self, mel: torch.Tensor, frames: torch.Tensor) -> Features:
        """``mel`` (N, 96, 64) log-mel examples and ``frames`` (N, 8, H, W, 3) uint8 RGB."""
        if frames.shape[:2] != (mel.shape[0], FRAMES_PER_SNIPPET):
            raise ValueError(f"frames must be ({mel.shape[0]}, 8, H, W, 3), got {tuple(frames.shape)}")
        return self._run(mel, *self._prepare(frames))

    def _prepare(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (N, 8, H, W, 3) -> ResNet input (N*k, 3, 224, 224), R(2+1)D input (N, 3, 8, 112, 112).
        A few snippets at a time, so that the float copies at the input's size stay small."""
        x2d, x3d = [], []
        step = max(1, self.frame_batch // FRAMES_PER_SNIPPET)
        for i in range(0, frames.shape[0], step):
            part = frames[i:i + step].to(self.device)
            x2d.append(self.prepare_2d(part))
            x3d.append(self.prepare_3d(part))
        return torch.cat(x2d), torch.cat(x3d)

    @property
    def _dtype(self) -> torch.dtype:
        return torch.float16 if self.half else torch.float32

    def prepare_2d(self, frames: torch.Tensor) -> torch.Tensor:
        """The profile's frames of each snippet, preprocessed for ResNet-152."""
        chosen = frames[:, torch.as_tensor(self.resnet_subset, device=frames.device)]
        return visual.prepare_2d(chosen.reshape(-1, *frames.shape[2:])).to(self._dtype)

    def prepare_3d(self, frames: torch.Tensor) -> torch.Tensor:
        return visual.prepare_3d(frames).to(self._dtype)

    @property
    def networks(self) -> dict[str, tuple[torch.nn.Module, torch.memory_format]]:
        """name -> (network, the memory layout it runs in): the names every engine uses."""
        return {"vggish": (self.vggish, torch.contiguous_format),
                "resnet152": (self.resnet, torch.channels_last if self.fast else torch.contiguous_format),
                "r2plus1d_18": (self.r2plus1d, torch.channels_last_3d if self.fast else torch.contiguous_format)}

    def _forward(self, name: str, x: torch.Tensor, chunk: int) -> torch.Tensor:
        """Network ``name`` on the chosen engine, ``chunk`` inputs per call -> float32."""
        outputs = []
        for i in range(0, x.shape[0], chunk):
            part = x[i:i + chunk]
            if self.runner is not None:
                out = self.runner.run(name, part)
            else:
                net, fmt = self.networks[name]
                out = net(part.contiguous(memory_format=fmt))
            outputs.append(out.float())
        return torch.cat(outputs)

    def run_2d(self, x2d: torch.Tensor) -> torch.Tensor:
        """ResNet-152 in calls of ``frame_batch`` frames -> (N*k, 2048) float32."""
        return self._forward("resnet152", x2d, self.frame_batch)

    def run_3d(self, x3d: torch.Tensor) -> torch.Tensor:
        """R(2+1)D-18 on as many clips as ``frame_batch`` frames -> (N, 512) float32."""
        return self._forward("r2plus1d_18", x3d, max(1, self.frame_batch // FRAMES_PER_SNIPPET))

    def _run(self, mel: torch.Tensor, x2d: torch.Tensor, x3d: torch.Tensor) -> Features:
        """The three networks over a batch of snippets (any number of videos)."""
        n = mel.shape[0]
        audio = self._forward("vggish", mel.to(self.device, torch.float32), max(1, n))  # one call
        return Features(
            audio=audio.cpu().numpy(),
            video_2d=self.run_2d(x2d).reshape(n, len(self.resnet_subset), -1).cpu().numpy(),
            video_3d=self.run_3d(x3d).cpu().numpy(),
        )

    @torch.inference_mode()
    def clips(self, items: list[tuple[np.ndarray, np.ndarray]]) -> list[Features]:
        """Several whole clips (``audio``, ``frames`` (8T, H, W, 3)) of any frame sizes,
        run through each network as one batch."""
        mels, x2ds, x3ds, sizes = [], [], [], []
        for audio, frames in items:
            t = frames.shape[0] // FRAMES_PER_SNIPPET
            mels.append(vggish.examples(torch.as_tensor(audio, dtype=torch.float32, device=self.device), num=t))
            x2d, x3d = self._prepare(torch.as_tensor(frames).reshape(t, FRAMES_PER_SNIPPET, *frames.shape[1:]))
            x2ds.append(x2d)
            x3ds.append(x3d)
            sizes.append(t)
        feats = self._run(torch.cat(mels), torch.cat(x2ds), torch.cat(x3ds))
        out, start = [], 0
        for t in sizes:
            out.append(Features(feats.audio[start:start + t], feats.video_2d[start:start + t], feats.video_3d[start:start + t]))
            start += t
        return out

    def snippets(self, audio: np.ndarray, frames: np.ndarray) -> Features:
        """Independent 1 s snippets: ``audio`` (N, >=15600) 16 kHz mono, each embedded from its
        own first 0.96 s; ``frames`` (N, 8, H, W, 3)."""
        mel = vggish.examples(torch.as_tensor(audio, dtype=torch.float32, device=self.device), num=1)[:, 0]
        return self.embed(mel, torch.as_tensor(frames))

    def clip(self, audio: np.ndarray, frames: np.ndarray) -> Features:
        """A whole clip as LLP's extraction framed it: VGGish examples every 0.96 s,
        ``frames`` (8T, H, W, 3) at 8 per second."""
        return self.clips([(audio, frames)])[0]
