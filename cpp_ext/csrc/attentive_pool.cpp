// The op's schema (TORCH_LIBRARY) and its CPU implementation. The projection is one
// GEMM through ATen (BLAS); the sigmoid / two softmaxes / sums run in one pass per video.
#include "attentive_pool.h"

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace avvp {
namespace {

void check_inputs(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  TORCH_CHECK(x.dim() == 4 && x.size(2) == 2, "attentive_pool: x must be (N, T, 2, D), got ", x.sizes());
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) == x.size(3) && weight.size(0) % 3 == 0,
              "attentive_pool: weight must be (3C, D) with D = ", x.size(3), ", got ", weight.sizes());
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "attentive_pool: bias must be (3C,)");
  TORCH_CHECK(x.size(1) >= 1, "attentive_pool: T must be >= 1");
  TORCH_CHECK(x.scalar_type() == weight.scalar_type() && x.scalar_type() == bias.scalar_type(),
              "attentive_pool: x, weight and bias must share a dtype");
}

template <typename acc_t>
inline acc_t sigmoid(acc_t v) { return acc_t(1) / (acc_t(1) + std::exp(-v)); }

// Math in float (double for double inputs, so that gradcheck can run in double).
at::ScalarType math_type(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

// Per video, classes innermost (contiguous in the logits), each exponential computed once.
template <typename acc_t>
void forward_loops(const acc_t* L, acc_t* V, acc_t* A, acc_t* S, acc_t* P, int64_t N, int64_t T, int64_t C) {
  const int64_t C3 = 3 * C;
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> mx(C), denom(C), e(T * C);
    for (int64_t n = begin; n < end; ++n) {
      const acc_t* l = L + n * T * 2 * C3;
      acc_t* p = P + n * T * 2 * C;
      acc_t* video = V + n * C;
      std::fill(video, video + C, acc_t(0));
      for (int m = 0; m < 2; ++m) {
        acc_t* pooled = (m == 0 ? A : S) + n * C;
        std::copy(l + m * C3 + C, l + m * C3 + 2 * C, mx.begin());  // start from t = 0
        std::fill(denom.begin(), denom.end(), acc_t(0));
        std::fill(pooled, pooled + C, acc_t(0));
        for (int64_t t = 0; t < T; ++t) {
          const acc_t* att = l + (t * 2 + m) * C3 + C;
          for (int64_t c = 0; c < C; ++c) mx[c] = std::max(mx[c], att[c]);
        }
        for (int64_t t = 0; t < T; ++t) {
          const acc_t* att = l + (t * 2 + m) * C3 + C;
          for (int64_t c = 0; c < C; ++c) denom[c] += (e[t * C + c] = std::exp(att[c] - mx[c]));
        }
        for (int64_t t = 0; t < T; ++t) {
          const acc_t* row = l + (t * 2 + m) * C3;
          const acc_t* other = l + (t * 2 + 1 - m) * C3;
          acc_t* prob_out = p + (t * 2 + m) * C;
          for (int64_t c = 0; c < C; ++c) {
            const acc_t prob = sigmoid(row[c]);
            const acc_t ma = sigmoid(row[2 * C + c] - other[2 * C + c]);  // two-way softmax
            const acc_t tp = e[t * C + c] / denom[c] * prob;
            prob_out[c] = prob;
            pooled[c] += tp;
            video[c] += tp * ma;
          }
        }
      }
    }
  });
}

template <typename acc_t>
void backward_loops(const acc_t* L, const acc_t* GV, const acc_t* GA, const acc_t* GS, const acc_t* GP, acc_t* G,
                    int64_t N, int64_t T, int64_t C) {
  const int64_t C3 = 3 * C;
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> fa(2 * T), prob(2 * T), ma(2 * T), dfa(T);
    for (int64_t n = begin; n < end; ++n) {
      const acc_t* l = L + n * T * 2 * C3;
      acc_t* g = G + n * T * 2 * C3;
      for (int64_t c = 0; c < C; ++c) {
        for (int m = 0; m < 2; ++m) {  // the forward's attention weights, recomputed from the logits
          acc_t mx = l[m * C3 + C + c], denom = 0;
          for (int64_t t = 1; t < T; ++t) mx = std::max(mx, l[(t * 2 + m) * C3 + C + c]);
          for (int64_t t = 0; t < T; ++t) denom += std::exp(l[(t * 2 + m) * C3 + C + c] - mx);
          for (int64_t t = 0; t < T; ++t) {
            const acc_t* row = l + (t * 2 + m) * C3;
            const acc_t a_m = row[2 * C + c], a_o = l[(t * 2 + 1 - m) * C3 + 2 * C + c], top = std::max(a_m, a_o);
            fa[m * T + t] = std::exp(row[C + c] - mx) / denom;
            prob[m * T + t] = sigmoid(row[c]);
            ma[m * T + t] = std::exp(a_m - top) / (std::exp(a_m - top) + std::exp(a_o - top));
          }
        }
        const acc_t gvid = GV[n * C + c];
        for (int m = 0; m < 2; ++m) {
          const acc_t gpool = m == 0 ? GA[n * C + c] : GS[n * C + c];
          acc_t dot = 0;  // sum_t fa * dfa, for the softmax over time
          for (int64_t t = 0; t < T; ++t) {
            const int64_t i = m * T + t, o = (1 - m) * T + t;
            const acc_t tp = fa[i] * prob[i], tp_o = fa[o] * prob[o];
            const acc_t d_tp = gvid * ma[i] + gpool;
            const acc_t d_prob = GP[n * T * 2 * C + (t * 2 + m) * C + c] + d_tp * fa[i];
            dfa[t] = d_tp * prob[i];
            dot += fa[i] * dfa[t];
            g[(t * 2 + m) * C3 + c] = d_prob * prob[i] * (acc_t(1) - prob[i]);
            // two-way softmax over modalities: d video / d a_m = ma (1 - ma) (tp_m - tp_other)
            g[(t * 2 + m) * C3 + 2 * C + c] = gvid * ma[i] * (acc_t(1) - ma[i]) * (tp - tp_o);
          }
          for (int64_t t = 0; t < T; ++t) g[(t * 2 + m) * C3 + C + c] = fa[m * T + t] * (dfa[t] - dot);
        }
      }
    }
  });
}

}  // namespace

Outputs attentive_pool_cpu(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  check_inputs(x, weight, bias);
  const int64_t N = x.size(0), T = x.size(1), D = x.size(3), C3 = weight.size(0), C = C3 / 3;
  const auto acc = math_type(x.scalar_type());
  auto opts = x.options().dtype(acc);
  at::Tensor logits = at::addmm(bias.to(acc), x.reshape({N * T * 2, D}).to(acc), weight.to(acc).t())
                          .reshape({N, T, 2, C3})
                          .contiguous();
  at::Tensor video = at::empty({N, C}, opts), audio = at::empty({N, C}, opts), visual = at::empty({N, C}, opts);
  at::Tensor frame = at::empty({N, T, 2, C}, opts);
  AT_DISPATCH_FLOATING_TYPES(acc, "attentive_pool_cpu", [&] {
    forward_loops<scalar_t>(logits.data_ptr<scalar_t>(), video.data_ptr<scalar_t>(), audio.data_ptr<scalar_t>(),
                            visual.data_ptr<scalar_t>(), frame.data_ptr<scalar_t>(), N, T, C);
  });
  const auto dtype = x.scalar_type();
  return {video.to(dtype), audio.to(dtype), visual.to(dtype), frame.to(dtype), logits};
}

at::Tensor attentive_pool_backward_cpu(const at::Tensor& logits_in, const at::Tensor& g_video,
                                       const at::Tensor& g_audio, const at::Tensor& g_visual,
                                       const at::Tensor& g_frame) {
  TORCH_CHECK(logits_in.dim() == 4 && logits_in.size(2) == 2 && logits_in.size(3) % 3 == 0,
              "attentive_pool_backward: logits must be (N, T, 2, 3C)");
  const auto acc = logits_in.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor logits = logits_in.to(acc).contiguous();
  const int64_t N = logits.size(0), T = logits.size(1), C = logits.size(3) / 3;
  at::Tensor gv = g_video.to(acc).contiguous(), ga = g_audio.to(acc).contiguous();
  at::Tensor gs = g_visual.to(acc).contiguous(), gp = g_frame.to(acc).contiguous();
  at::Tensor grad = at::empty_like(logits);
  AT_DISPATCH_FLOATING_TYPES(acc, "attentive_pool_backward_cpu", [&] {
    backward_loops<scalar_t>(logits.data_ptr<scalar_t>(), gv.data_ptr<scalar_t>(), ga.data_ptr<scalar_t>(),
                             gs.data_ptr<scalar_t>(), gp.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(), N, T, C);
  });
  return grad;
}

}  // namespace avvp

TORCH_LIBRARY(avvp, m) {
  m.def("attentive_pool(Tensor x, Tensor weight, Tensor bias) -> (Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def("attentive_pool_backward(Tensor logits, Tensor g_video, Tensor g_audio, Tensor g_visual, Tensor g_frame) -> Tensor");
}

TORCH_LIBRARY_IMPL(avvp, CPU, m) {
  m.impl("attentive_pool", &avvp::attentive_pool_cpu);
  m.impl("attentive_pool_backward", &avvp::attentive_pool_backward_cpu);
}
