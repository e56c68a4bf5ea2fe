"""HAN: the hybrid attention network with attentive MMIL pooling (Tian et al., ECCV 2020).

nn.Modules only. Parameter names follow the official ``MMIL_Net`` so that its checkpoint
loads as is; the ablation variants of the paper's Table 2 (temporal model, pooling) are
switches of ``HANConfig``, which every checkpoint carries.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .features.spec import OFFICIAL, FeatureSpec, by_modality, specs
from .features.spec import get as get_feature
from .features.timing import FRAMES_PER_SNIPPET, pool_frames

FUSION = {"audio": "fc_audio_fusion", "visual": "fc_fusion"}  # a stream fed by several features
TEMPORAL_MODELS = ("none", "gru", "transformer", "han")
POOLINGS = ("attentive", "max", "mean")


@dataclass(frozen=True)
class HANConfig:
    """Architecture of a parsing model; defaults are the official HAN."""

    num_classes: int = 25
    # HAN's inputs, in order: registered feature specs (features/spec.py) give each one's
    # dimension and stream. The official three: VGGish audio, ResNet-152 frames (8 per
    # snippet, averaged), R(2+1)D-18 clips.
    features: tuple[str, ...] = OFFICIAL
    d_model: int = 512
    ff_dim: int = 512
    nhead: int = 1
    dropout: float = 0.1
    temporal: str = "han"
    pooling: str = "attentive"
    # Training-only regulariser (the paper's suggested alternative to the guided loss): with
    # this probability a training video loses one of its modalities, which the pooling then
    # ignores, so each modality must explain the label on its own.
    modality_dropout: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        streams = by_modality(self.features)  # unknown names raise here
        if not all(streams.values()) or len(set(self.features)) != len(self.features):
            raise ValueError(f"features must be distinct and feed both streams, got {self.features}")
        if self.temporal not in TEMPORAL_MODELS:
            raise ValueError(f"temporal must be one of {TEMPORAL_MODELS}, got {self.temporal!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if not 0.0 <= self.modality_dropout < 1.0:
            raise ValueError("modality_dropout must be in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def inputs(self) -> tuple[FeatureSpec, ...]:
        return specs(self.features)

    @classmethod
    def from_dict(cls, d: dict) -> "HANConfig":
        d = dict(d)
        # Checkpoints before the feature specs named the three dimensions; they must be the specs'.
        for name, key in (("audio", "audio_dim"), ("video_2d", "video_2d_dim"), ("video_3d", "video_3d_dim")):
            if key in d and d.pop(key) != get_feature(name).dim:
                raise ValueError(f"{key} differs from the {name} feature's dimension {get_feature(name).dim}")
        if d.pop("frames_per_snippet", FRAMES_PER_SNIPPET) != FRAMES_PER_SNIPPET:
            raise ValueError(f"frames_per_snippet must be {FRAMES_PER_SNIPPET}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)


def attend(mha: nn.MultiheadAttention, query: Tensor, source: Tensor) -> Tensor:
    """``mha(query, source, source)`` written out (same weights, same result): it exports
    to ONNX with dynamic batch and time, which nn.MultiheadAttention's fused path does not."""
    heads, d = mha.num_heads, mha.embed_dim
    w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
    b, t = query.shape[0], query.shape[1]

    def split(x: Tensor) -> Tensor:  # (B, T, d) -> (B, heads, T, d / heads)
        return x.reshape(b, -1, heads, d // heads).transpose(1, 2)

    q = split(F.linear(query, w_q, b_q)) * (d // heads) ** -0.5
    k, v = split(F.linear(source, w_k, b_k)), split(F.linear(source, w_v, b_v))
    weights = F.dropout(torch.softmax(q @ k.transpose(-2, -1), dim=-1), mha.dropout, mha.training)
    return mha.out_proj((weights @ v).transpose(1, 2).reshape(b, t, d))


class HANLayer(nn.Module):
    """One hybrid attention layer: ``q = norm1(q + cm_attn(q, o, o) + self_attn(q, q, q))``,
    then a ReLU feed-forward block with ``norm2``. ``cross=False`` gives the plain
    Transformer layer of the ablation."""

    def __init__(self, d_model: int, nhead: int, ff_dim: int, dropout: float, cross: bool = True):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.cm_attn = (
            nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True) if cross else None
        )
        self.linear1 = nn.Linear(d_model, ff_dim)
        self.linear2 = nn.Linear(ff_dim, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout11 = nn.Dropout(dropout)
        self.dropout12 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, q: Tensor, other: Tensor) -> Tensor:
        self_part = self.dropout12(attend(self.self_attn, q, q))
        if self.cm_attn is None:
            q = self.norm1(q + self_part)
        else:
            cross_part = self.dropout11(attend(self.cm_attn, q, other))
            q = self.norm1(q + cross_part + self_part)  # summation order of the official code
        ff = self.linear2(self.dropout(F.relu(self.linear1(q))))
        return self.norm2(q + self.dropout2(ff))


class HANEncoder(nn.Module):
    """Applies one layer with shared weights to both modalities, each querying the other.

    Both directions run as one batch of 2B sequences. ``norm1``/``norm2`` exist in the
    official checkpoint but its forward never applies them; they are kept (unused) so that
    the key layout matches.
    """

    def __init__(self, layer: HANLayer):
        super().__init__()
        self.layers = nn.ModuleList([layer])
        d = layer.norm1.normalized_shape[0]
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)

    def forward(self, a: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        q = torch.cat([a, v], dim=0)
        other = torch.cat([v, a], dim=0)
        for layer in self.layers:
            # The official Encoder feeds the *inputs* to every layer (one layer in practice).
            out = layer(q, other)
        return out.chunk(2, dim=0)


class SharedGRU(nn.Module):
    """Bidirectional GRU shared by both modalities (ablation baseline)."""

    def __init__(self, d_model: int):
        super().__init__()
        self.gru = nn.GRU(d_model, d_model // 2, batch_first=True, bidirectional=True)

    def forward(self, a: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        out = self.gru(torch.cat([a, v], dim=0))[0]
        return out.chunk(2, dim=0)


def attentive_pool(frame_prob: Tensor, frame_att_logits: Tensor, av_att_logits: Tensor,
                   keep: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Attentive MMIL pooling (the paper's eq. 7), the one definition: snippet
    probabilities (B, T, 2, C) weighted by a softmax over time and, for the video level, one
    over modality. Returns the video-, audio- and visual-level probabilities (B, C)."""
    frame_att = torch.softmax(frame_att_logits, dim=1)
    if keep is not None:
        av_att_logits = av_att_logits.masked_fill(~keep[:, None, :, None], float("-inf"))
    av_att = torch.softmax(av_att_logits, dim=2)
    temporal_prob = frame_att * frame_prob
    video = (temporal_prob * av_att).sum(dim=2).sum(dim=1)
    return video, temporal_prob[:, :, 0, :].sum(dim=1), temporal_prob[:, :, 1, :].sum(dim=1)


def mmil_pool(
    frame_prob: Tensor,
    frame_att_logits: Tensor | None,
    av_att_logits: Tensor | None,
    kind: str = "attentive",
    keep: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Multimodal MIL pooling of snippet probabilities (B, T, 2, C).

    Returns the video-level, audio-level and visual-level probabilities (B, C) of the
    paper's eq. 7 and 10. ``keep`` (B, 2) bool drops a modality from the video-level
    probability (modality dropout).
    """
    if kind == "attentive":
        return attentive_pool(frame_prob, frame_att_logits, av_att_logits, keep)
    if kind == "max":
        per_modality = frame_prob.amax(dim=1)  # (B, 2, C)
        masked = per_modality if keep is None else per_modality.masked_fill(~keep[:, :, None], 0.0)
        return masked.amax(dim=1), per_modality[:, 0], per_modality[:, 1]
    if kind == "mean":
        per_modality = frame_prob.mean(dim=1)
        if keep is None:
            video = per_modality.mean(dim=1)
        else:
            w = keep.to(per_modality.dtype)[:, :, None]
            video = (per_modality * w).sum(dim=1) / w.sum(dim=1)
        return video, per_modality[:, 0], per_modality[:, 1]
    raise ValueError(f"unknown pooling {kind!r}")


class HAN(nn.Module):
    """Audio-visual video parser.

    ``forward(*inputs)`` takes one (B, T, D) tensor per feature of ``config.features``
    (the official three: (B, T, 128), (B, 8T, 2048) frames or their (B, T, 2048) means,
    (B, T, 512)); returns ``(video_prob, audio_prob, visual_prob, snippet_prob)`` of
    shapes (B, C), (B, C), (B, C), (B, T, 2, C), as the official forward.
    """

    def __init__(self, config: HANConfig | None = None):
        super().__init__()
        self.config = cfg = config or HANConfig()
        # Attentive pooling through the fused op (avvp-export build-ext); same outputs.
        self.fused_pooling = False
        d = cfg.d_model
        self.fc_prob = nn.Linear(d, cfg.num_classes)
        if cfg.pooling == "attentive":
            self.fc_frame_att = nn.Linear(d, cfg.num_classes)
            self.fc_av_att = nn.Linear(d, cfg.num_classes)
        for spec in cfg.inputs:  # official names: fc_a, fc_v, fc_st
            self.add_module(spec.projection, nn.Linear(spec.dim, d))
        for modality, group in by_modality(cfg.features).items():
            if len(group) > 1:  # the official visual stream: fc_fusion(cat(fc_v, fc_st))
                self.add_module(FUSION[modality], nn.Linear(len(group) * d, d))
        if cfg.temporal == "han":
            self.hat_encoder = HANEncoder(HANLayer(d, cfg.nhead, cfg.ff_dim, cfg.dropout, cross=True))
        elif cfg.temporal == "transformer":
            self.temporal_net = HANEncoder(HANLayer(d, cfg.nhead, cfg.ff_dim, cfg.dropout, cross=False))
        elif cfg.temporal == "gru":
            self.temporal_net = SharedGRU(d)

    def embed(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        """Input projections: per-snippet audio and visual features (B, T, d), each stream's
        projections fused when it has several."""
        specs_ = self.config.inputs
        if len(inputs) != len(specs_) or any(x.dim() != 3 for x in inputs):
            raise ValueError(f"HAN takes {len(specs_)} (B, T, D) tensors: {', '.join(self.config.features)}")
        t = inputs[0].shape[1]
        streams: dict[str, list[Tensor]] = {"audio": [], "visual": []}
        for spec, x in zip(specs_, inputs):
            if spec.per_frame and x.shape[1] == t * spec.rows and spec.rows != 1:
                x = pool_frames(x, spec.rows)
            elif x.shape[1] != t:
                raise ValueError(f"{spec.name} has {x.shape[1]} rows for {t} snippets: expected {t}"
                                 + (f" snippet means or {spec.rows * t} frames" if spec.per_frame else ""))
            streams[spec.modality].append(getattr(self, spec.projection)(x))
        a, v = (parts[0] if len(parts) == 1 else getattr(self, FUSION[m])(torch.cat(parts, dim=-1))
                for m, parts in streams.items())
        return a, v

    def pooling_projection(self) -> tuple[Tensor, Tensor]:
        """``fc_prob``, ``fc_frame_att`` and ``fc_av_att`` as one (3C, d) weight and bias:
        what the fused pooling op takes."""
        heads = (self.fc_prob, self.fc_frame_att, self.fc_av_att)
        return torch.cat([h.weight for h in heads]), torch.cat([h.bias for h in heads])

    def temporal(self, a: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        if self.config.temporal == "han":
            return self.hat_encoder(a, v)
        if self.config.temporal == "none":
            return a, v
        return self.temporal_net(a, v)

    def forward(self, *inputs: Tensor):
        a, v = self.embed(*inputs)
        keep = None
        if self.training and self.config.modality_dropout > 0:
            keep = _sample_modality_keep(a.shape[0], self.config.modality_dropout, a.device)
            a = a * keep[:, 0, None, None]
            v = v * keep[:, 1, None, None]
        a, v = self.temporal(a, v)
        x = torch.stack([a, v], dim=2)  # (B, T, 2, d)
        attentive = self.config.pooling == "attentive"
        if attentive and self.fused_pooling and keep is None:
            from avvp_stream.head.fused_pool import attentive_pool

            return attentive_pool(x, *self.pooling_projection())
        frame_prob = torch.sigmoid(self.fc_prob(x))
        video_prob, audio_prob, visual_prob = mmil_pool(
            frame_prob,
            self.fc_frame_att(x) if attentive else None,
            self.fc_av_att(x) if attentive else None,
            self.config.pooling,
            keep,
        )
        return video_prob, audio_prob, visual_prob, frame_prob


def _sample_modality_keep(batch: int, p: float, device) -> Tensor:
    """(B, 2) bool: with probability p a video keeps only one (random) modality."""
    keep = torch.ones(batch, 2, dtype=torch.bool, device=device)
    drop = torch.rand(batch, device=device) < p
    which = torch.randint(0, 2, (batch,), device=device)
    keep[drop, which[drop]] = False
    return keep
