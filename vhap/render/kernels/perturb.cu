// Fused sample selection of VHAP's appearance perturbation (VHAP_SPEC §3.6) for the `cuda` backend.
// vhap.render.kernels.reference.perturb_select_reference is the pure-PyTorch reference (and the CPU path).
//
// The caller draws r, u ~ U[0,1) per pixel and groups the pixels by cluster (a stable sort of the cluster ids:
// `grouped` = pixel indices in cluster order, cluster k occupying grouped[starts[k] : starts[k] + counts[k]]).
// Per pixel i of cluster c:
//   replace = (c == 0 ? r < rate_bg : r < rate_fg) && c != 1
//   pick    = starts[c] + min(int64(u * float(counts[c])), max(counts[c] - 1, 0))
//   out[i]  = replace ? image[grouped[min(pick, n - 1)]] : image[i]      (all C channels)
// In PyTorch that is ~25 full-image kernels, half of them on int64 index tensors (a few hundred MB of index
// traffic per step at 16 x 512^2); here one thread per pixel. The backward keeps the gradient of kept
// pixels only (replaced pixels carry a detached sample): grad_image = grad_out * keep.

#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

namespace {

template <typename Id>
__global__ void perturb_select_kernel(const float* __restrict__ image, const Id* __restrict__ cid,
                                      const float* __restrict__ r, const float* __restrict__ u,
                                      const int64_t* __restrict__ grouped, const int64_t* __restrict__ starts,
                                      const int64_t* __restrict__ counts, int64_t n, int C, bool vec4,
                                      float rate_fg, float rate_bg, float* __restrict__ out,
                                      bool* __restrict__ keep) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t c = static_cast<int64_t>(cid[i]);
    const bool replace = (c == 0 ? r[i] < rate_bg : r[i] < rate_fg) && c != 1;
    int64_t src = i;
    if (replace) {
      const int64_t cnt = counts[c];
      int64_t offset = static_cast<int64_t>(u[i] * static_cast<float>(cnt));  // float32 product, as torch
      const int64_t hi = cnt - 1 > 0 ? cnt - 1 : 0;
      offset = offset < hi ? offset : hi;
      int64_t pick = starts[c] + offset;
      pick = pick < n - 1 ? pick : n - 1;
      src = grouped[pick];
    }
    keep[i] = !replace;
    if (vec4) {  // RGBA (the tracker's case), 16-byte aligned: one 16-byte load and store per pixel
      reinterpret_cast<float4*>(out)[i] = reinterpret_cast<const float4*>(image)[src];
    } else {
      const float* s = image + src * C;
      float* o = out + i * C;
      for (int ch = 0; ch < C; ++ch) o[ch] = s[ch];
    }
  }
}

__global__ void perturb_keep_grad_kernel(const float* __restrict__ grad, const bool* __restrict__ keep, int64_t n,
                                         int C, float* __restrict__ out) {
  const int64_t total = n * C;
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < total; k += (int64_t)gridDim.x * blockDim.x)
    out[k] = keep[k / C] ? grad[k] : 0.f;
}

// C == 4: one thread per pixel, 16-byte loads and stores (the generic kernel above divides per element)
__global__ void perturb_keep_grad4_kernel(const float4* __restrict__ grad, const bool* __restrict__ keep, int64_t n,
                                          float4* __restrict__ out) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = keep[i] ? grad[i] : make_float4(0.f, 0.f, 0.f, 0.f);
}

bool aligned16(const torch::Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; }

unsigned blocks_for(int64_t n, int threads) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((n + threads - 1) / threads, 65535 * 8)));
}

}  // namespace

// image (N,C) float32, cid (N) int16/int32/int64, r/u (N) float32, grouped (N) int64, starts/counts (K) int64
// -> out (N,C) float32, keep (N) bool.
std::vector<torch::Tensor> perturb_select(torch::Tensor image, torch::Tensor cid, torch::Tensor r, torch::Tensor u,
                                          torch::Tensor grouped, torch::Tensor starts, torch::Tensor counts,
                                          double rate_fg, double rate_bg) {
  TORCH_CHECK(image.is_cuda() && image.dim() == 2 && image.is_contiguous() && image.scalar_type() == torch::kFloat32,
              "perturb_select: image must be a contiguous CUDA float32 (N,C) tensor");
  const int64_t n = image.size(0);
  const int C = static_cast<int>(image.size(1));
  for (const auto* t : {&cid, &r, &u, &grouped})
    TORCH_CHECK(t->is_cuda() && t->is_contiguous() && t->numel() == n, "perturb_select: per-pixel inputs must be (N,)");
  TORCH_CHECK(r.scalar_type() == torch::kFloat32 && u.scalar_type() == torch::kFloat32 &&
                  grouped.scalar_type() == torch::kInt64 && starts.scalar_type() == torch::kInt64 &&
                  counts.scalar_type() == torch::kInt64 && starts.is_contiguous() && counts.is_contiguous(),
              "perturb_select: r, u float32; grouped, starts, counts int64");
  const at::cuda::CUDAGuard guard(image.device());
  auto out = torch::empty_like(image);
  auto keep = torch::empty({n}, image.options().dtype(torch::kBool));
  if (n == 0) return {out, keep};
  auto stream = at::cuda::getCurrentCUDAStream();
  const unsigned blocks = blocks_for(n, 256);
  const float fg = static_cast<float>(rate_fg), bg = static_cast<float>(rate_bg);
  const bool vec4 = C == 4 && aligned16(image) && aligned16(out);
#define VHAP_PERTURB_LAUNCH(T)                                                                                     \
  perturb_select_kernel<T><<<blocks, 256, 0, stream>>>(                                                           \
      image.data_ptr<float>(), cid.data_ptr<T>(), r.data_ptr<float>(), u.data_ptr<float>(),                       \
      grouped.data_ptr<int64_t>(), starts.data_ptr<int64_t>(), counts.data_ptr<int64_t>(), n, C, vec4, fg, bg,    \
      out.data_ptr<float>(), keep.data_ptr<bool>())
  switch (cid.scalar_type()) {
    case torch::kInt16: VHAP_PERTURB_LAUNCH(int16_t); break;
    case torch::kInt32: VHAP_PERTURB_LAUNCH(int32_t); break;
    case torch::kInt64: VHAP_PERTURB_LAUNCH(int64_t); break;
    default: TORCH_CHECK(false, "perturb_select: cid must be int16, int32 or int64");
  }
#undef VHAP_PERTURB_LAUNCH
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {out, keep};
}

// grad (N,C) float32, keep (N) bool -> grad * keep
torch::Tensor perturb_keep_grad(torch::Tensor grad, torch::Tensor keep) {
  TORCH_CHECK(grad.is_cuda() && grad.dim() == 2 && grad.is_contiguous() && grad.scalar_type() == torch::kFloat32 &&
                  keep.is_contiguous() && keep.scalar_type() == torch::kBool && keep.numel() == grad.size(0),
              "perturb_keep_grad: grad (N,C) float32 contiguous, keep (N) bool");
  const at::cuda::CUDAGuard guard(grad.device());
  auto out = torch::empty_like(grad);
  const int64_t total = grad.numel();
  if (total == 0) return out;
  auto stream = at::cuda::getCurrentCUDAStream();
  if (grad.size(1) == 4 && aligned16(grad) && aligned16(out)) {
    perturb_keep_grad4_kernel<<<blocks_for(grad.size(0), 256), 256, 0, stream>>>(
        reinterpret_cast<const float4*>(grad.data_ptr<float>()), keep.data_ptr<bool>(), grad.size(0),
        reinterpret_cast<float4*>(out.data_ptr<float>()));
  } else {
    perturb_keep_grad_kernel<<<blocks_for(total, 256), 256, 0, stream>>>(
        grad.data_ptr<float>(), keep.data_ptr<bool>(), grad.size(0), static_cast<int>(grad.size(1)),
        out.data_ptr<float>());
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}
