"""The head as a graph: its input and output names, the module the engines run (folded
when the architecture folds), and example inputs to trace or check it with."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..features.spec import OFFICIAL, specs

HEAD_OUTPUTS = ("video_prob", "snippet_prob")
CACHE_INPUTS = ("known", "index")  # after the features' inputs in the row cache's graph (onnx_cache.export_streaming_head)
HEAD_FORMAT = "folded-4"  # part of the cache key: a new graph layout never reuses an old file


def input_names(model) -> tuple[str, ...]:
    """The head's inputs: one per feature, named as the feature."""
    return tuple(model.config.features)


def streaming_input_names(model) -> tuple[str, ...]:
    return (*input_names(model), *CACHE_INPUTS)


class HeadForExport(nn.Module):
    """The unfolded head (architectures that do not fold): frame-averaged inputs in, the
    two probability tensors the parser needs out."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *inputs):
        video_prob, _, _, snippet_prob = self.model(*inputs)
        return video_prob, snippet_prob


def head_inputs(batch: int = 2, time: int = 10, seed: int = 0, dtype=torch.float32,
                features=OFFICIAL) -> tuple[torch.Tensor, ...]:
    """Random (batch, time, D) inputs, one per feature."""
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, time, s.dim, generator=g).to(dtype) for s in specs(features))


def head_module(model) -> nn.Module:
    """What the engines run for ``model``: the folded head when it folds, else the plain one."""
    from .folded import FoldedHead, can_fold

    model = copy.deepcopy(model).float().cpu().eval()
    return FoldedHead(model) if can_fold(model) else HeadForExport(model).eval()


def reference(model) -> nn.Module:
    """HAN itself (unfolded, eager, fp32 on the CPU), what every engine's head is checked against."""
    return HeadForExport(copy.deepcopy(model).float().cpu()).eval()
