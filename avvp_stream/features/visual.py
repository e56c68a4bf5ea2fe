"""Visual features: ResNet-152 (ImageNet) per frame and R(2+1)D-18 (Kinetics-400) per
snippet, with the preprocessing of the official LLP extraction."""

from __future__ import annotations

import torch
import torchvision.transforms.functional as TF
from torch import Tensor, nn

from .spec import FeatureSpec
from .timing import FRAMES_PER_SNIPPET

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
KINETICS_MEAN, KINETICS_STD = (0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)


def _normalize(x: Tensor, mean, std, channel_dim: int) -> Tensor:
    shape = [1] * x.dim()
    shape[channel_dim] = 3
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return (x - m) / s


def prepare_2d(frames: Tensor) -> Tensor:
    """uint8 RGB (N, H, W, 3) -> (N, 3, 224, 224): shorter side to 256, centre crop 224."""
    x = frames.permute(0, 3, 1, 2).float() / 255.0
    x = TF.center_crop(TF.resize(x, 256, antialias=True), [224, 224])
    return _normalize(x, IMAGENET_MEAN, IMAGENET_STD, 1)


def prepare_3d(clips: Tensor) -> Tensor:
    """uint8 RGB (B, 8, H, W, 3) -> (B, 3, 8, 112, 112): resized without crop."""
    b, t, h, w, _ = clips.shape
    x = clips.reshape(b * t, h, w, 3).permute(0, 3, 1, 2).float() / 255.0
    x = TF.resize(x, [112, 112], antialias=True)
    x = x.reshape(b, t, 3, 112, 112).permute(0, 2, 1, 3, 4)
    return _normalize(x, KINETICS_MEAN, KINETICS_STD, 1)


def _pooled_feature_net(build, state_dict: dict | None) -> nn.Module:
    """A torchvision classifier with its weights, its last layer replaced by the identity
    so that it returns the average-pooled feature."""
    net = build(weights=None)
    if state_dict is not None:
        net.load_state_dict(state_dict)
    net.fc = nn.Identity()
    return net


def resnet152(state_dict: dict | None = None) -> nn.Module:
    """ResNet-152 returning the 2048-d average-pooled feature."""
    from torchvision.models import resnet152 as build

    return _pooled_feature_net(build, state_dict)


def r2plus1d_18(state_dict: dict | None = None) -> nn.Module:
    """R(2+1)D-18 returning the 512-d average-pooled feature."""
    from torchvision.models.video import r2plus1d_18 as build

    return _pooled_feature_net(build, state_dict)


def _frames(frames: Tensor) -> Tensor:
    """(N, k, H, W, 3) -> (N * k, H, W, 3): one ResNet input per frame."""
    return prepare_2d(frames.reshape(-1, *frames.shape[2:]))


def resnet152_files() -> dict:
    from torchvision.models import ResNet152_Weights

    from .. import weights as W

    return {"resnet152": W.torchvision_file("resnet152", ResNet152_Weights.IMAGENET1K_V1)}


def r2plus1d_18_files() -> dict:
    from torchvision.models.video import R2Plus1D_18_Weights

    from .. import weights as W

    return {"r2plus1d_18": W.torchvision_file("r2plus1d_18", R2Plus1D_18_Weights.KINETICS400_V1)}


VIDEO_2D = FeatureSpec(
    name="video_2d", dim=2048, modality="visual", consumes="frames", count=FRAMES_PER_SNIPPET, rows=FRAMES_PER_SNIPPET,
    network="resnet152", build=lambda states=None: resnet152(states and states["resnet152"]), prepare=_frames,
    example=(3, 224, 224), weights=resnet152_files,
    projection="fc_v", folder="res152", channels_last=True, half=True,
)
VIDEO_3D = FeatureSpec(
    name="video_3d", dim=512, modality="visual", consumes="frames", count=FRAMES_PER_SNIPPET,
    network="r2plus1d_18", build=lambda states=None: r2plus1d_18(states and states["r2plus1d_18"]), prepare=prepare_3d,
    example=(3, FRAMES_PER_SNIPPET, 112, 112), weights=r2plus1d_18_files,
    projection="fc_st", folder="r2plus1d_18", channels_last=True, half=True,
)
