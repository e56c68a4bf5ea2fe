"""Weak-label objectives of the paper: L_wsl on the video-level prediction, the individual
guided loss L_g on each modality, and the handling of the noisy guided targets."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

LOSSES = ("wsl", "guided", "both")
NOISY_LABEL_METHODS = ("none", "bootstrap", "smoothing")
EPS = 1e-7


def guided_targets(
    y: Tensor,
    audio_prob: Tensor,
    visual_prob: Tensor,
    method: str = "smoothing",
    audio_confidence: float = 1.0,
    visual_confidence: float = 0.9,
    bootstrap_beta: float = 0.95,
) -> tuple[Tensor, Tensor]:
    """Targets for the audio and visual guided losses.

    A video label is noise for a modality where the event is not present in it, so the
    official code softens the visual targets to ``0.9 y + 0.05`` (audio kept at ``y``);
    ``bootstrap`` (Reed et al. 2014, soft) mixes in the model's own detached prediction.
    """
    if method == "none":
        return y, y
    if method == "smoothing":
        a, v = audio_confidence, visual_confidence
        return a * y + (1 - a) * 0.5, v * y + (1 - v) * 0.5
    if method == "bootstrap":
        b = bootstrap_beta
        return b * y + (1 - b) * audio_prob.detach(), b * y + (1 - b) * visual_prob.detach()
    raise ValueError(f"unknown noisy-label method {method!r}")


def mmil_loss(
    video_prob: Tensor,
    audio_prob: Tensor,
    visual_prob: Tensor,
    y: Tensor,
    loss: str = "both",
    noisy_labels: str = "smoothing",
    **target_options,
) -> Tensor:
    """BCE on probabilities clamped to [1e-7, 1 - 1e-7], as the official training loop."""
    video_prob = video_prob.clamp(EPS, 1 - EPS)
    audio_prob = audio_prob.clamp(EPS, 1 - EPS)
    visual_prob = visual_prob.clamp(EPS, 1 - EPS)
    total = video_prob.new_zeros(())
    if loss in ("guided", "both"):
        ya, yv = guided_targets(y, audio_prob, visual_prob, noisy_labels, **target_options)
        total = total + F.binary_cross_entropy(audio_prob, ya) + F.binary_cross_entropy(visual_prob, yv)
    if loss in ("wsl", "both"):
        total = total + F.binary_cross_entropy(video_prob, y)
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}")
    return total
