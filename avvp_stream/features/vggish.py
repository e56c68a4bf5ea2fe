"""VGGish audio features: the AudioSet log-mel front end and the VGGish network.

Front end (``vggish_input``/``mel_features`` of the TensorFlow release): 16 kHz mono,
25 ms periodic-Hann windows every 10 ms, |rFFT| of 512 points, 64 HTK-mel bands from
125 to 7500 Hz (DC bin dropped), ``log(mel + 0.01)``, grouped into 96-frame (0.96 s)
examples. One example per snippet gives LLP's one 128-d embedding per second.

Post-processing: the AudioSet release's embeddings are the network's ReLU output,
PCA-whitened, clipped to [-2, 2] and quantised to 8 bits (``vggish_postprocess``); that
is the default here (``postprocess=True``), ``postprocess=False`` gives the raw 128-d
ReLU embedding instead.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .spec import FeatureSpec
from .timing import SAMPLE_RATE

WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
FFT = 512  # next power of two
MEL_BANDS = 64
MEL_LOW_HZ, MEL_HIGH_HZ = 125.0, 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96
EMBEDDING_DIM = 128
QUANT_MIN, QUANT_MAX = -2.0, 2.0


def hz_to_mel(hz: Tensor) -> Tensor:
    """HTK mel scale."""
    return 1127.0 * torch.log1p(hz / 700.0)


def mel_matrix(dtype=torch.float64, device=None) -> Tensor:
    """(257, 64) triangular weights from |rFFT| bins to mel bands."""
    bins_mel = hz_to_mel(torch.linspace(0.0, SAMPLE_RATE / 2, FFT // 2 + 1, dtype=torch.float64))
    edges = torch.linspace(float(hz_to_mel(torch.tensor(MEL_LOW_HZ, dtype=torch.float64))),
                           float(hz_to_mel(torch.tensor(MEL_HIGH_HZ, dtype=torch.float64))),
                           MEL_BANDS + 2, dtype=torch.float64)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower) / (center - lower)
    falling = (upper - bins_mel[:, None]) / (upper - center)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    weights[0] = 0.0  # the DC bin carries no band
    return weights.to(dtype=dtype, device=device)


def log_mel(waveform: Tensor) -> Tensor:
    """(..., samples) at 16 kHz -> (..., frames, 64) log-mel, frames = 1 + (n - 400) // 160."""
    if waveform.shape[-1] < WINDOW:
        raise ValueError(f"need at least {WINDOW} samples (25 ms), got {waveform.shape[-1]}")
    frames = waveform.unfold(-1, WINDOW, HOP)  # (..., frames, 400)
    n = torch.arange(WINDOW, dtype=waveform.dtype, device=waveform.device)
    window = 0.5 - 0.5 * torch.cos(2 * math.pi * n / WINDOW)  # periodic Hann
    magnitude = torch.fft.rfft(frames * window, n=FFT).abs()
    return torch.log(magnitude @ mel_matrix(waveform.dtype, waveform.device) + LOG_OFFSET)


def examples(waveform: Tensor, num: int | None = None) -> Tensor:
    """(..., samples) -> (..., num, 96, 64): consecutive 0.96 s examples (the release's
    framing of a whole clip). ``num`` pads short input by repeating the last example."""
    mel = log_mel(waveform)
    available = mel.shape[-2] // EXAMPLE_FRAMES
    if available == 0:
        raise ValueError("need at least 0.97 s of audio for one VGGish example")
    out = mel[..., : available * EXAMPLE_FRAMES, :].unflatten(-2, (available, EXAMPLE_FRAMES))
    if num is not None and num != available:
        if num < available:
            out = out[..., :num, :, :]
        else:
            pad = out[..., -1:, :, :].expand(*out.shape[:-3], num - available, EXAMPLE_FRAMES, MEL_BANDS)
            out = torch.cat([out, pad], dim=-3)
    return out


class VGGish(nn.Module):
    """The VGGish network; parameter names follow the torchvggish port of the release."""

    def __init__(self, postprocess: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for block in ((64,), (128,), (256, 256), (512, 512)):
            for width in block:
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
                channels = width
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, EMBEDDING_DIM), nn.ReLU(inplace=True),
        )
        self.postprocess = postprocess
        self.register_buffer("pca_eigen_vectors", torch.eye(EMBEDDING_DIM))
        self.register_buffer("pca_means", torch.zeros(EMBEDDING_DIM, 1))

    def forward(self, x: Tensor) -> Tensor:
        """(N, 96, 64) log-mel examples -> (N, 128) embeddings."""
        x = self.features(x.unsqueeze(1))  # (N, 512, 6, 4)
        x = x.permute(0, 2, 3, 1).flatten(1)  # TensorFlow's NHWC flattening order
        x = self.embeddings(x)
        return self.pca_quantize(x) if self.postprocess else x

    def load_release(self, state_dict: dict, pca: dict) -> None:
        """Load the torchvggish port: network weights and the release's PCA parameters
        (``pca_eigen_vectors`` (128, 128), ``pca_means`` (128,) or (128, 1))."""
        net = {k: v for k, v in state_dict.items() if k.startswith(("features.", "embeddings."))}
        self.load_state_dict({**self.state_dict(), **net})
        self.pca_eigen_vectors.copy_(torch.as_tensor(pca["pca_eigen_vectors"]).reshape(EMBEDDING_DIM, EMBEDDING_DIM))
        self.pca_means.copy_(torch.as_tensor(pca["pca_means"]).reshape(EMBEDDING_DIM, 1))

    def pca_quantize(self, x: Tensor) -> Tensor:
        """The release's post-processing (the uint8 cast truncates), as float values 0..255."""
        pca = (x - self.pca_means.T) @ self.pca_eigen_vectors.T
        clipped = pca.clamp(QUANT_MIN, QUANT_MAX)
        return torch.floor((clipped - QUANT_MIN) * (255.0 / (QUANT_MAX - QUANT_MIN)))


def build(states: dict | None = None, postprocess: bool = True) -> VGGish:
    net = VGGish(postprocess=postprocess)
    if states is not None:
        net.load_release(states["vggish"], states["vggish_pca"])
    return net


def weight_files() -> dict:
    from .. import weights as W

    return {"vggish": W.VGGISH, "vggish_pca": W.VGGISH_PCA}


SPEC = FeatureSpec(
    name="audio", dim=EMBEDDING_DIM, modality="audio", consumes="audio", count=EXAMPLE_FRAMES * HOP,
    network="vggish", build=build, prepare=examples, example=(EXAMPLE_FRAMES, MEL_BANDS), weights=weight_files,
    projection="fc_a", folder="vggish",
)
