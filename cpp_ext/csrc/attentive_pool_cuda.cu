// CUDA implementation of avvp::attentive_pool: one launch for the whole pooling. A block
// per video: its warps compute the 3C x (2T) projection dot products (lanes stride over D,
// so x and W reads are coalesced), write the float logits, then one thread per class runs
// the sigmoid, the softmax over time, the softmax over modalities and the sums.
// The backward is one launch too (thread per video and class); the GEMMs for dx and dW
// are left to cuBLAS in the autograd formula.
// Only the headers the kernels need (not torch/extension.h): nvcc time is most of the build.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cmath>

#include "attentive_pool.h"

namespace avvp {
namespace {

constexpr int kThreads = 256;

// Math in at::opmath_type<scalar_t>: float for half / bfloat16 / float, double for double.
template <typename acc_t>
__device__ __forceinline__ acc_t sigmoid_(acc_t v) { return acc_t(1) / (acc_t(1) + exp(-v)); }

template <typename acc_t>
struct Attention {  // per (video, class, modality): the softmax-over-time constants
  acc_t mx, denom;
};

template <typename acc_t>
__device__ Attention<acc_t> time_softmax(const acc_t* ln, int64_t T, int64_t C3, int64_t C, int64_t c, int m) {
  Attention<acc_t> a{ln[m * C3 + C + c], 0};
  for (int64_t t = 1; t < T; ++t) {
    const acc_t v = ln[(t * 2 + m) * C3 + C + c];
    a.mx = v > a.mx ? v : a.mx;
  }
  for (int64_t t = 0; t < T; ++t) a.denom += exp(ln[(t * 2 + m) * C3 + C + c] - a.mx);
  return a;
}

template <typename scalar_t, typename acc_t>
__global__ void attentive_pool_forward_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ w,
                                              const scalar_t* __restrict__ b, acc_t* __restrict__ logits,
                                              scalar_t* __restrict__ video, scalar_t* __restrict__ audio,
                                              scalar_t* __restrict__ visual, scalar_t* __restrict__ frame,
                                              int64_t T, int64_t D, int64_t C) {
  const int64_t n = blockIdx.x;
  const int64_t C3 = 3 * C, rows = T * 2, dots = rows * C3;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  const scalar_t* xn = x + n * rows * D;
  acc_t* ln = logits + n * dots;
  for (int64_t k = warp; k < dots; k += warps) {
    const int64_t r = k / C3, j = k % C3;
    const scalar_t* xr = xn + r * D;
    const scalar_t* wr = w + j * D;
    acc_t acc = 0;
    for (int64_t d = lane; d < D; d += 32) acc += static_cast<acc_t>(xr[d]) * static_cast<acc_t>(wr[d]);
    for (int off = 16; off > 0; off /= 2) acc += __shfl_down_sync(0xffffffff, acc, off);
    if (lane == 0) ln[k] = acc + static_cast<acc_t>(b[j]);
  }
  __syncthreads();
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    acc_t pooled[2] = {0, 0}, video_sum = 0;
    for (int m = 0; m < 2; ++m) {
      const Attention<acc_t> att = time_softmax(ln, T, C3, C, c, m);
      for (int64_t t = 0; t < T; ++t) {
        const acc_t* row = ln + (t * 2 + m) * C3;
        const acc_t a_m = row[2 * C + c], a_o = ln[(t * 2 + 1 - m) * C3 + 2 * C + c], top = a_m > a_o ? a_m : a_o;
        const acc_t ma = exp(a_m - top) / (exp(a_m - top) + exp(a_o - top));
        const acc_t prob = sigmoid_(row[c]);
        const acc_t tp = exp(row[C + c] - att.mx) / att.denom * prob;
        frame[n * rows * C + (t * 2 + m) * C + c] = static_cast<scalar_t>(prob);
        pooled[m] += tp;
        video_sum += tp * ma;
      }
    }
    audio[n * C + c] = static_cast<scalar_t>(pooled[0]);
    visual[n * C + c] = static_cast<scalar_t>(pooled[1]);
    video[n * C + c] = static_cast<scalar_t>(video_sum);
  }
}

template <typename scalar_t, typename acc_t>
__global__ void attentive_pool_backward_kernel(const acc_t* __restrict__ logits, const scalar_t* __restrict__ gv,
                                               const scalar_t* __restrict__ ga, const scalar_t* __restrict__ gs,
                                               const scalar_t* __restrict__ gp, acc_t* __restrict__ grad,
                                               int64_t N, int64_t T, int64_t C) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= N * C) return;
  const int64_t n = i / C, c = i % C, C3 = 3 * C, rows = T * 2;
  const acc_t* ln = logits + n * rows * C3;
  acc_t* g = grad + n * rows * C3;
  const Attention<acc_t> att[2] = {time_softmax(ln, T, C3, C, c, 0), time_softmax(ln, T, C3, C, c, 1)};
  const acc_t gvid = static_cast<acc_t>(gv[n * C + c]);
  for (int m = 0; m < 2; ++m) {
    const acc_t gpool = static_cast<acc_t>(m == 0 ? ga[n * C + c] : gs[n * C + c]);
    acc_t dot = 0;
    for (int pass = 0; pass < 2; ++pass) {  // pass 0: sum_t fa * dfa; pass 1: write the gradients
      for (int64_t t = 0; t < T; ++t) {
        const acc_t* row = ln + (t * 2 + m) * C3;
        const acc_t* other = ln + (t * 2 + 1 - m) * C3;
        const acc_t fa = exp(row[C + c] - att[m].mx) / att[m].denom;
        const acc_t fa_o = exp(other[C + c] - att[1 - m].mx) / att[1 - m].denom;
        const acc_t prob = sigmoid_(row[c]), prob_o = sigmoid_(other[c]);
        const acc_t a_m = row[2 * C + c], a_o = other[2 * C + c], top = a_m > a_o ? a_m : a_o;
        const acc_t ma = exp(a_m - top) / (exp(a_m - top) + exp(a_o - top));
        const acc_t d_tp = gvid * ma + gpool;
        const acc_t dfa = d_tp * prob;
        if (pass == 0) {
          dot += fa * dfa;
          continue;
        }
        const acc_t d_prob = static_cast<acc_t>(gp[n * rows * C + (t * 2 + m) * C + c]) + d_tp * fa;
        g[(t * 2 + m) * C3 + c] = d_prob * prob * (acc_t(1) - prob);
        g[(t * 2 + m) * C3 + C + c] = fa * (dfa - dot);
        g[(t * 2 + m) * C3 + 2 * C + c] = gvid * ma * (acc_t(1) - ma) * (fa * prob - fa_o * prob_o);
      }
    }
  }
}

}  // namespace

Outputs attentive_pool_cuda(const at::Tensor& x_in, const at::Tensor& weight_in,
                                            const at::Tensor& bias_in) {
  TORCH_CHECK(x_in.dim() == 4 && x_in.size(2) == 2, "attentive_pool: x must be (N, T, 2, D), got ", x_in.sizes());
  TORCH_CHECK(weight_in.dim() == 2 && weight_in.size(1) == x_in.size(3) && weight_in.size(0) % 3 == 0,
              "attentive_pool: weight must be (3C, D)");
  TORCH_CHECK(bias_in.dim() == 1 && bias_in.size(0) == weight_in.size(0), "attentive_pool: bias must be (3C,)");
  TORCH_CHECK(x_in.size(1) >= 1, "attentive_pool: T must be >= 1");
  TORCH_CHECK(x_in.scalar_type() == weight_in.scalar_type() && x_in.scalar_type() == bias_in.scalar_type(),
              "attentive_pool: x, weight and bias must share a dtype");
  TORCH_CHECK(x_in.is_cuda() && weight_in.device() == x_in.device() && bias_in.device() == x_in.device(),
              "attentive_pool: x, weight and bias must be on the same CUDA device, got ", x_in.device(), ", ",
              weight_in.device(), ", ", bias_in.device());
  const c10::cuda::CUDAGuard guard(x_in.device());
  at::Tensor x = x_in.contiguous(), weight = weight_in.contiguous(), bias = bias_in.contiguous();
  const int64_t N = x.size(0), T = x.size(1), D = x.size(3), C = weight.size(0) / 3;
  const auto acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor logits = at::empty({N, T, 2, 3 * C}, x.options().dtype(acc));
  at::Tensor video = at::empty({N, C}, x.options()), audio = at::empty({N, C}, x.options());
  at::Tensor visual = at::empty({N, C}, x.options()), frame = at::empty({N, T, 2, C}, x.options());
  if (N == 0) return {video, audio, visual, frame, logits};
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "attentive_pool_forward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    attentive_pool_forward_kernel<scalar_t, acc_t><<<N, kThreads, 0, stream>>>(
        x.data_ptr<scalar_t>(), weight.data_ptr<scalar_t>(), bias.data_ptr<scalar_t>(), logits.data_ptr<acc_t>(),
        video.data_ptr<scalar_t>(), audio.data_ptr<scalar_t>(), visual.data_ptr<scalar_t>(),
        frame.data_ptr<scalar_t>(), T, D, C);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {video, audio, visual, frame, logits};
}

at::Tensor attentive_pool_backward_cuda(const at::Tensor& logits_in, const at::Tensor& g_video,
                                        const at::Tensor& g_audio, const at::Tensor& g_visual,
                                        const at::Tensor& g_frame) {
  TORCH_CHECK(logits_in.dim() == 4 && logits_in.size(2) == 2 && logits_in.size(3) % 3 == 0,
              "attentive_pool_backward: logits must be (N, T, 2, 3C)");
  TORCH_CHECK(logits_in.size(1) >= 1, "attentive_pool_backward: T must be >= 1");
  for (const at::Tensor* g : {&g_video, &g_audio, &g_visual, &g_frame}) {
    TORCH_CHECK(g->device() == logits_in.device(), "attentive_pool_backward: every gradient must be on ",
                logits_in.device(), ", got ", g->device());
  }
  const c10::cuda::CUDAGuard guard(logits_in.device());
  auto dtype = g_video.scalar_type();
  at::Tensor logits = logits_in.to(dtype == at::kDouble ? at::kDouble : at::kFloat).contiguous();
  const int64_t N = logits.size(0), T = logits.size(1), C = logits.size(3) / 3;
  at::Tensor gv = g_video.contiguous(), ga = g_audio.to(dtype).contiguous();
  at::Tensor gs = g_visual.to(dtype).contiguous(), gp = g_frame.to(dtype).contiguous();
  at::Tensor grad = at::empty_like(logits);
  if (N == 0) return grad;
  const int64_t total = N * C;
  const int blocks = static_cast<int>((total + kThreads - 1) / kThreads);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "attentive_pool_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    attentive_pool_backward_kernel<scalar_t, acc_t><<<blocks, kThreads, 0, stream>>>(
        logits.data_ptr<acc_t>(), gv.data_ptr<scalar_t>(), ga.data_ptr<scalar_t>(), gs.data_ptr<scalar_t>(),
        gp.data_ptr<scalar_t>(), grad.data_ptr<acc_t>(), N, T, C);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return grad;
}

}  // namespace avvp

TORCH_LIBRARY_IMPL(avvp, CUDA, m) {
  m.impl("attentive_pool", &avvp::attentive_pool_cuda);
  m.impl("attentive_pool_backward", &avvp::attentive_pool_backward_cuda);
}
