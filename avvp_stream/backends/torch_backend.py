"""Eager PyTorch: the reference every other backend is measured against."""

from __future__ import annotations

import numpy as np
import torch

from .base import Backend, Engine


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, model, device):
        self.model = model.eval().to(device)
        self.device = torch.device(device)

    @torch.inference_mode()
    def head(self, *inputs, keys=None):
        tensors = [torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device) for x in inputs]
        video_prob, _, _, snippet_prob = self.model(*tensors)
        return video_prob.float().cpu().numpy(), snippet_prob.float().cpu().numpy()


class TorchEngine(Engine):
    """The reference: runs anywhere, the extractor keeps its own networks."""

    name = "torch"
    tolerance = 0.0

    def head(self, model, device, workload=None) -> Backend:
        return TorchBackend(model, device)
