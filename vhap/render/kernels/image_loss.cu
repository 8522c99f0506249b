// Fused per-pixel sums of the tracker's image terms (vhap.render.kernels.reference.image_loss_sums_reference
// is the pure-PyTorch reference and the CPU path).
//
// Per view n, over its pixels p with render rgba r (antialiased, perturbed), target t (RGB), coverage c and
// matte m (optional):
//   sums[n,0] = sum_p sum_ch finite(|t - r|)          (photometric L1, VHAP_SPEC §4.4)
//   sums[n,1] = sum_p c                                 (covered pixels: the normaliser; no gradient)
//   sums[n,2] = sum_p finite(r.a * (1 - m))             (one-sided silhouette term, form "coverage")
//            or sum_p finite(max(0, r.a - m))          (form "excess", flag `excess`)
// where finite(x) = x if x is finite else 0 (a NaN render never reaches the loss or its gradient).
// Backward: d/dr.rgb = g0[n] * sign(r - t) where |t - r| is finite; d/dr.a = g2[n] * (1 - m) ("coverage") or
// g2[n] * [r.a > m] ("excess"), where finite.
//
// In PyTorch these are ~20 full-image kernels forward and backward (slices of rgba and their zero-filled
// gradients, subtraction, abs, isfinite, where, sums, sign, ...); here one kernel each way.

#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float finite_or_zero(float x) { return isfinite(x) ? x : 0.f; }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

__global__ void image_loss_fwd_kernel(const float4* __restrict__ rgba, const float* __restrict__ target,
                                      const bool* __restrict__ covered, const float* __restrict__ matte,
                                      bool excess, int64_t hw, float* __restrict__ sums) {
  const int n = blockIdx.y;
  float photo = 0.f, count = 0.f, sil = 0.f;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < hw; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t k = n * hw + i;
    const float4 r = rgba[k];
    const float* t = target + 3 * k;
    photo += finite_or_zero(fabsf(t[0] - r.x)) + finite_or_zero(fabsf(t[1] - r.y)) + finite_or_zero(fabsf(t[2] - r.z));
    count += covered[k] ? 1.f : 0.f;
    if (matte != nullptr) sil += finite_or_zero(excess ? fmaxf(r.w - matte[k], 0.f) : r.w * (1.f - matte[k]));
  }
  __shared__ float part[3][kThreads / 32];
  photo = warp_sum(photo);
  count = warp_sum(count);
  sil = warp_sum(sil);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    part[0][warp] = photo;
    part[1][warp] = count;
    part[2][warp] = sil;
  }
  __syncthreads();
  if (warp == 0) {
    const int nw = blockDim.x / 32;
    photo = lane < nw ? part[0][lane] : 0.f;
    count = lane < nw ? part[1][lane] : 0.f;
    sil = lane < nw ? part[2][lane] : 0.f;
    photo = warp_sum(photo);
    count = warp_sum(count);
    sil = warp_sum(sil);
    if (lane == 0) {
      atomicAdd(sums + 3 * n + 0, photo);
      atomicAdd(sums + 3 * n + 1, count);
      atomicAdd(sums + 3 * n + 2, sil);
    }
  }
}

__device__ __forceinline__ float sign_if_finite(float r, float t) {
  const float d = t - r;
  if (!isfinite(d)) return 0.f;
  return (r > t) ? 1.f : ((r < t) ? -1.f : 0.f);
}

__global__ void image_loss_bwd_kernel(const float4* __restrict__ rgba, const float* __restrict__ target,
                                      const float* __restrict__ matte, bool excess,
                                      const float* __restrict__ grad_sums, int64_t hw, int64_t total,
                                      float4* __restrict__ grad_rgba) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < total; k += (int64_t)gridDim.x * blockDim.x) {
    const int64_t n = k / hw;
    const float gp = grad_sums[3 * n + 0], gs = grad_sums[3 * n + 2];
    const float4 r = rgba[k];
    const float* t = target + 3 * k;
    float4 g;
    g.x = gp * sign_if_finite(r.x, t[0]);
    g.y = gp * sign_if_finite(r.y, t[1]);
    g.z = gp * sign_if_finite(r.z, t[2]);
    g.w = 0.f;
    if (matte != nullptr) {
      const float w = excess ? (r.w > matte[k] ? 1.f : 0.f) : 1.f - matte[k];
      g.w = isfinite(r.w * (1.f - matte[k])) ? gs * w : 0.f;
    }
    grad_rgba[k] = g;
  }
}

void check_inputs(const torch::Tensor& rgba, const torch::Tensor& target, const torch::optional<torch::Tensor>& matte) {
  TORCH_CHECK(rgba.is_cuda() && rgba.dim() == 4 && rgba.size(3) == 4 && rgba.is_contiguous() &&
                  rgba.scalar_type() == torch::kFloat32,
              "image_loss: rgba must be a contiguous CUDA float32 (N,H,W,4) tensor");
  TORCH_CHECK(target.is_cuda() && target.dim() == 4 && target.size(3) == 3 && target.is_contiguous() &&
                  target.scalar_type() == torch::kFloat32 && target.size(0) == rgba.size(0) &&
                  target.size(1) == rgba.size(1) && target.size(2) == rgba.size(2),
              "image_loss: target must be a contiguous float32 (N,H,W,3) tensor matching rgba");
  if (matte.has_value()) {
    TORCH_CHECK(matte->is_cuda() && matte->is_contiguous() && matte->scalar_type() == torch::kFloat32 &&
                    matte->numel() == rgba.numel() / 4,
                "image_loss: matte must be a contiguous float32 (N,H,W) tensor");
  }
}

}  // namespace

torch::Tensor image_loss_fwd(torch::Tensor rgba, torch::Tensor target, torch::Tensor covered,
                             torch::optional<torch::Tensor> matte, bool excess) {
  check_inputs(rgba, target, matte);
  TORCH_CHECK(covered.is_cuda() && covered.is_contiguous() && covered.scalar_type() == torch::kBool &&
                  covered.numel() == rgba.numel() / 4,
              "image_loss: covered must be a contiguous bool (N,H,W) tensor");
  const at::cuda::CUDAGuard guard(rgba.device());
  const int64_t N = rgba.size(0), hw = rgba.size(1) * rgba.size(2);
  auto sums = torch::zeros({N, 3}, rgba.options());
  if (N == 0 || hw == 0) return sums;
  const int64_t blocks_x = std::min<int64_t>((hw + kThreads * 8 - 1) / (kThreads * 8), 1024);
  const dim3 grid(static_cast<unsigned>(blocks_x), static_cast<unsigned>(N));
  image_loss_fwd_kernel<<<grid, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      reinterpret_cast<const float4*>(rgba.data_ptr<float>()), target.data_ptr<float>(), covered.data_ptr<bool>(),
      matte.has_value() ? matte->data_ptr<float>() : nullptr, excess, hw, sums.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return sums;
}

torch::Tensor image_loss_bwd(torch::Tensor rgba, torch::Tensor target, torch::optional<torch::Tensor> matte,
                             bool excess, torch::Tensor grad_sums) {
  check_inputs(rgba, target, matte);
  TORCH_CHECK(grad_sums.is_cuda() && grad_sums.is_contiguous() && grad_sums.scalar_type() == torch::kFloat32 &&
                  grad_sums.numel() == rgba.size(0) * 3,
              "image_loss: grad_sums must be a contiguous float32 (N,3) tensor");
  const at::cuda::CUDAGuard guard(rgba.device());
  auto grad = torch::empty_like(rgba);
  const int64_t hw = rgba.size(1) * rgba.size(2), total = rgba.size(0) * hw;
  if (total == 0) return grad;
  const int64_t blocks = std::min<int64_t>((total + kThreads - 1) / kThreads, 65535);
  image_loss_bwd_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      reinterpret_cast<const float4*>(rgba.data_ptr<float>()), target.data_ptr<float>(),
      matte.has_value() ? matte->data_ptr<float>() : nullptr, excess, grad_sums.data_ptr<float>(), hw, total,
      reinterpret_cast<float4*>(grad.data_ptr<float>()));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return grad;
}
