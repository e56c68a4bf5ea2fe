"""HAN's inference head with its linear maps multiplied together: the same function as
``HAN.forward`` in eval mode, with about 35% fewer multiply-adds and weights, and split
into a per-snippet half and a per-window half so that a stream computes each snippet's
half once (``avvp_stream/backends/row_cache.py``, ``StreamingHeadForExport``).

The folds are exact in real arithmetic (fp32 results differ by rounding, about 1e-7):
- ``fc_fusion(cat(fc_v(v2), fc_st(v3)))`` is affine in (v2, v3): two matrices, one bias
  (any stream fed by several features likewise: one matrix per feature, one bias).
- Attention scores ``(x Wq' + bq)(y Wk' + bk)'``: the terms that do not depend on the key
  are the same for every key of a row and cancel in the softmax, leaving
  ``(x A + a) y'`` with ``A = Wq' Wk / sqrt(d)``. The keys need no projection at all.
- Attention output ``out_proj(S (y Wv' + bv))``: the softmax rows sum to 1, so it is
  ``S (y (Wo Wv)') + (Wo bv + bo)``; ``y (Wo Wv)'`` depends on one snippet only.

So a snippet's row of the layer needs: its embedding ``x`` (d) and ``x [A_self, A_cross,
(Wo Wv)'_self, (Wo Wv)'_cross] + [a_self, a_cross, b_out, 0]`` (4d), per modality, where
``b_out`` (both attentions' output biases) rides on the self-attention's values.
Everything after (scores, softmax, norms, feed-forward, pooling) needs the whole window.

Folding applies to the official architecture (HAN layer, one head, attentive pooling);
``can_fold`` says when; other variants export unfolded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .fused_pool import attentive_pool, reference


def can_fold(model) -> bool:
    c = model.config
    return c.temporal == "han" and c.pooling == "attentive" and c.nhead == 1


class FoldedHead(nn.Module):
    """``rows``: a snippet's half, ``window``: the rest, over (B, T) windows -> video
    probabilities (B, C) and snippet probabilities (B, T, 2, C). ``forward`` is both, with
    HAN's frame-averaged inputs and the two outputs the parser needs."""

    def __init__(self, model, fused_pooling: bool = False):
        super().__init__()
        if not can_fold(model):
            raise ValueError("only the official HAN (han layer, 1 head, attentive pooling) folds")
        d = model.config.d_model
        self.fused_pooling = fused_pooling
        layer = model.hat_encoder.layers[0]
        with torch.no_grad():
            self.modalities = [spec.modality for spec in model.config.inputs]
            self.inputs = nn.ModuleList(_fold_inputs(model))
            scores, values, out_bias = [], [], 0
            for mha in (layer.self_attn, layer.cm_attn):
                w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
                b_q, _, b_v = mha.in_proj_bias.chunk(3)
                scale = d ** -0.5
                scores.append((scale * w_k.T @ w_q, scale * w_k.T @ b_q))  # as nn.Linear weight, bias
                values.append(mha.out_proj.weight @ w_v)
                out_bias = out_bias + mha.out_proj.weight @ b_v + mha.out_proj.bias
            # The output biases ride on the self-attention's values: softmax rows sum to 1.
            self.project = _linear(torch.cat([scores[0][0], scores[1][0], *values]),
                                   torch.cat([scores[0][1], scores[1][1], out_bias, out_bias.new_zeros(d)]))
        self.norm1, self.norm2 = _copy(layer.norm1), _copy(layer.norm2)
        self.linear1, self.linear2 = _copy(layer.linear1), _copy(layer.linear2)
        with torch.no_grad():
            self.pool = _linear(*model.pooling_projection())
        self.eval()

    def rows(self, *inputs: Tensor) -> Tensor:
        """(..., D) inputs, one per feature -> (..., 2, 5d): per modality, x and its four
        projections."""
        streams: dict[str, Tensor] = {}
        for modality, fold, x in zip(self.modalities, self.inputs, inputs):
            y = fold(x)
            streams[modality] = y if modality not in streams else streams[modality] + y
        x = torch.stack([streams["audio"], streams["visual"]], dim=-2)
        return torch.cat([x, self.project(x)], dim=-1)

    def window(self, x: Tensor, q_self: Tensor, q_cross: Tensor, u_self: Tensor, x_other: Tensor,
               u_other: Tensor) -> tuple[Tensor, Tensor]:
        """Inputs (B, 2, T, d): modality as a batch dimension; ``*_other``: the same arrays
        with the modalities swapped, the cross-attention's keys and values."""
        attended = (torch.softmax(q_self @ x.transpose(-2, -1), dim=-1) @ u_self
                    + torch.softmax(q_cross @ x_other.transpose(-2, -1), dim=-1) @ u_other)
        h = self.norm1(x + attended)  # the official sum of input, cross and self parts
        h = self.norm2(h + self.linear2(F.relu(self.linear1(h))))
        pool = attentive_pool if self.fused_pooling else reference  # the fused op, or its definition
        video, _, _, frame_prob = pool(h.transpose(1, 2), self.pool.weight, self.pool.bias)
        return video, frame_prob

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        return self.window(*window_inputs(self.rows(*inputs)))


def window_inputs(rows: Tensor) -> tuple[Tensor, ...]:
    """(B, T, 2, 5d) rows -> the six (B, 2, T, d) inputs of ``window``."""
    x, q_self, q_cross, u_self, u_cross = torch.split(rows.transpose(1, 2), rows.shape[-1] // 5, dim=-1)
    return x, q_self, q_cross, u_self, x.flip(1), u_cross.flip(1)


class StreamingHeadForExport(nn.Module):
    """The head with a cache of snippet rows, as one graph (one ONNX Runtime call per
    window batch): the new snippets' inputs (N, D), the rows already known (M, 2, 5d) and
    ``index`` (B, T) into [known; new] -> the two outputs, and the new rows to keep."""

    def __init__(self, head: FoldedHead):
        super().__init__()
        self.head = head

    def forward(self, *args):
        *inputs, known, index = args  # the features' new rows, then the cache's
        new = self.head.rows(*inputs)
        video_prob, snippet_prob = self.head.window(*window_inputs(torch.cat([known, new], dim=0)[index]))
        return video_prob, snippet_prob, new


def _fold_inputs(model) -> list[nn.Linear]:
    """Each feature's projection into its stream, through the stream's fusion layer when it
    has several features (``W_fuse[:, i] (P_i u + p_i)``); a stream's biases summed on its
    last feature's map."""
    from ..features.spec import by_modality
    from ..model import FUSION

    d = model.config.d_model
    folded: dict[str, nn.Linear] = {}
    for modality, group in by_modality(model.config.features).items():
        fuse = getattr(model, FUSION[modality]) if len(group) > 1 else None
        bias = 0
        for i, spec in enumerate(group):
            proj = getattr(model, spec.projection)
            part = fuse.weight[:, i * d:(i + 1) * d] if fuse is not None else None
            weight = proj.weight if part is None else part @ proj.weight
            bias = bias + (proj.bias if part is None else part @ proj.bias)
            if fuse is not None and i == len(group) - 1:
                bias = bias + fuse.bias
            folded[spec.name] = _linear(weight, bias if i == len(group) - 1 else None)
    return [folded[spec.name] for spec in model.config.inputs]


def _linear(weight: Tensor, bias: Tensor | None) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device, dtype=weight.dtype)
    layer.weight.data.copy_(weight.detach())
    if bias is not None:
        layer.bias.data.copy_(bias.detach())
    return layer.requires_grad_(False)


def _copy(module: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(module).requires_grad_(False)
