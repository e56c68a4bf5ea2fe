"""The official HAN, as the baselines of our benchmarks: AVVP-ECCV20's ``MMIL_Net`` in its
own module layout (``nets/net_audiovisual.py``), written again here because the official
repository is not a package.

What makes it the official computation rather than ours:
- attention through ``nn.MultiheadAttention`` (sequence-first, as the 2020 code calls it),
  not our written-out ``attend``;
- ``fc_v`` on all 80 ResNet frames, then average pooling over each snippet's 8;
- the HAN layer called once per modality (audio queries visual, then visual queries audio);
- the unused ``audio_encoder``, ``visual_encoder`` and ``cmt_encoder`` built too, so that the
  official checkpoint loads with ``strict=True``.

``tests/test_model.py`` checks that it reproduces ``../shared/reference/han_golden.pt``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


def _clones(module: nn.Module, n: int) -> nn.ModuleList:
    return nn.ModuleList([copy.deepcopy(module) for _ in range(n)])


class Encoder(nn.Module):
    def __init__(self, encoder_layer: nn.Module, num_layers: int, norm=None):
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm1 = nn.LayerNorm(512)
        self.norm2 = nn.LayerNorm(512)
        self.norm = norm

    def forward(self, src_a, src_v, mask=None, src_key_padding_mask=None):
        output_a, output_v = src_a, src_v
        for i in range(self.num_layers):
            output_a = self.layers[i](src_a, src_v, src_mask=mask, src_key_padding_mask=src_key_padding_mask)
            output_v = self.layers[i](src_v, src_a, src_mask=mask, src_key_padding_mask=src_key_padding_mask)
        if self.norm:
            output_a = self.norm1(output_a)
            output_v = self.norm2(output_v)
        return output_a, output_v


class CMTLayer(nn.Module):
    def __init__(self, d_model, nhead, dim_feedforward=512, dropout=0.1):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, src_q, src_v, src_mask=None, src_key_padding_mask=None):
        src2 = self.self_attn(src_q, src_v, src_v, attn_mask=src_mask, key_padding_mask=src_key_padding_mask)[0]
        src_q = self.norm1(src_q + self.dropout1(src2))
        src2 = self.linear2(self.dropout(F.relu(self.linear1(src_q))))
        return self.norm2(src_q + self.dropout2(src2))


class HANLayer(nn.Module):
    def __init__(self, d_model, nhead, dim_feedforward=512, dropout=0.1):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.cm_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout11 = nn.Dropout(dropout)
        self.dropout12 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, src_q, src_v, src_mask=None, src_key_padding_mask=None):
        src_q = src_q.permute(1, 0, 2)  # (T, B, d): nn.MultiheadAttention's sequence-first layout
        src_v = src_v.permute(1, 0, 2)
        src1 = self.cm_attn(src_q, src_v, src_v, attn_mask=src_mask, key_padding_mask=src_key_padding_mask)[0]
        src2 = self.self_attn(src_q, src_q, src_q, attn_mask=src_mask, key_padding_mask=src_key_padding_mask)[0]
        src_q = src_q + self.dropout11(src1) + self.dropout12(src2)
        src_q = self.norm1(src_q)
        src2 = self.linear2(self.dropout(F.relu(self.linear1(src_q))))
        src_q = src_q + self.dropout2(src2)
        src_q = self.norm2(src_q)
        return src_q.permute(1, 0, 2)


class MMIL_Net(nn.Module):  # noqa: N801 (the official name)
    def __init__(self):
        super().__init__()
        self.fc_prob = nn.Linear(512, 25)
        self.fc_frame_att = nn.Linear(512, 25)
        self.fc_av_att = nn.Linear(512, 25)
        self.fc_a = nn.Linear(128, 512)
        self.fc_v = nn.Linear(2048, 512)
        self.fc_st = nn.Linear(512, 512)
        self.fc_fusion = nn.Linear(1024, 512)
        self.audio_encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d_model=512, nhead=1, dim_feedforward=512), num_layers=1,
            enable_nested_tensor=False)
        self.visual_encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d_model=512, nhead=1, dim_feedforward=512), num_layers=1,
            enable_nested_tensor=False)
        self.cmt_encoder = Encoder(CMTLayer(d_model=512, nhead=1, dim_feedforward=512), num_layers=1)
        self.hat_encoder = Encoder(HANLayer(d_model=512, nhead=1, dim_feedforward=512), num_layers=1)

    def forward(self, audio, visual, visual_st):
        x1 = self.fc_a(audio)
        # 2D and 3D visual features: fc_v on every frame, averaged per snippet, then fused
        vid_s = self.fc_v(visual).permute(0, 2, 1).unsqueeze(-1)
        vid_s = F.avg_pool2d(vid_s, (8, 1)).squeeze(-1).permute(0, 2, 1)
        vid_st = self.fc_st(visual_st)
        x2 = self.fc_fusion(torch.cat((vid_s, vid_st), dim=-1))
        x1, x2 = self.hat_encoder(x1, x2)
        x = torch.cat([x1.unsqueeze(-2), x2.unsqueeze(-2)], dim=-2)
        frame_prob = torch.sigmoid(self.fc_prob(x))
        # attentive MMIL pooling
        frame_att = torch.softmax(self.fc_frame_att(x), dim=1)
        av_att = torch.softmax(self.fc_av_att(x), dim=2)
        temporal_prob = frame_att * frame_prob
        global_prob = (temporal_prob * av_att).sum(dim=2).sum(dim=1)
        a_prob = temporal_prob[:, :, 0, :].sum(dim=1)
        v_prob = temporal_prob[:, :, 1, :].sum(dim=1)
        return global_prob, a_prob, v_prob, frame_prob


def official_like(model: nn.Module) -> MMIL_Net:
    """An MMIL_Net with ``model``'s weights (our HAN uses the official key names; the
    official file's unused encoders keep their fresh initialisation)."""
    net = MMIL_Net()
    missing, unexpected = net.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(k.split(".")[0] in ("audio_encoder", "visual_encoder", "cmt_encoder") for k in missing)
    return net.to(next(model.parameters()).device).train(model.training)
