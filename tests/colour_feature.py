"""A made-up fourth feature, as a user would add one: this module and one ``register``.

``colour``: the mean colours of a 4 x 4 grid over 4 of a snippet's frames, through a
small network (a linear layer) -> 16 values, fed to HAN's visual stream. ``loudness``: the
RMS of ten 96 ms blocks of each 0.96 s example, through a linear layer -> 8 values, fed
to the audio stream (so that stream gets a fusion layer too).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from avvp_stream.features.spec import FeatureSpec
from avvp_stream.weights import WeightFile


def _grid_colours(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 4, H, W, 3) -> (N, 4 * 3 * 16) mean colours of a 4 x 4 grid per frame."""
    n, k, h, w, _ = frames.shape
    x = frames.reshape(n * k, h, w, 3).permute(0, 3, 1, 2).float() / 255.0
    return F.adaptive_avg_pool2d(x, 4).reshape(n, -1)


def _colour_net(states=None) -> nn.Module:
    net = nn.Linear(4 * 3 * 16, 16)
    if states is not None:
        net.load_state_dict(states["colour_net"])
    return net


COLOUR = FeatureSpec(
    name="colour", dim=16, modality="visual", consumes="frames", count=4, network="colour_net",
    build=_colour_net, prepare=_grid_colours, example=(4 * 3 * 16,),
    # where a published feature names its file and checksum (the test serves its own)
    weights=lambda: {"colour_net": WeightFile("colour_net", "colour_net.pt", "http://127.0.0.1:9/colour_net.pt",
                                              sha256_prefix="00000000")},
)


def _block_rms(waveform: torch.Tensor, num: int) -> torch.Tensor:
    """(..., samples) -> (..., num, 10): RMS of ten 96 ms blocks of each 0.96 s example."""
    block = 1536
    n = min(num, waveform.shape[-1] // (10 * block))
    x = waveform[..., :n * 10 * block].reshape(*waveform.shape[:-1], n, 10, block)
    rms = x.pow(2).mean(-1).sqrt()
    if n < num:  # short input: the last example repeated, as VGGish's framing does
        rms = torch.cat([rms, rms[..., -1:, :].expand(*rms.shape[:-2], num - n, 10)], dim=-2)
    return rms


LOUDNESS = FeatureSpec(
    name="loudness", dim=8, modality="audio", consumes="audio", count=15360, network="loudness_net",
    build=lambda states=None: nn.Linear(10, 8), prepare=_block_rms, example=(10,),
)
