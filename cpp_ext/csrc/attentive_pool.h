// Fused attentive MMIL pooling (HAN's head after the temporal network).
//
// x (N, T, 2, D) -> logits = x W^T + b, W (3C, D): the rows of fc_prob, fc_frame_att and
// fc_av_att stacked. p = sigmoid(prob logits); frame attention = softmax over T; modality
// attention = softmax over the 2 modalities; tp = frame_att * p;
// audio = sum_t tp[:, :, 0], visual = sum_t tp[:, :, 1], video = sum_t sum_m tp * av_att.
// Outputs: video, audio, visual (N, C), frame_prob p (N, T, 2, C) and the float logits
// (N, T, 2, 3C), which the backward needs.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace avvp {

using Outputs = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

Outputs attentive_pool_cpu(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);
at::Tensor attentive_pool_backward_cpu(const at::Tensor& logits, const at::Tensor& g_video, const at::Tensor& g_audio,
                                       const at::Tensor& g_visual, const at::Tensor& g_frame);

}  // namespace avvp
