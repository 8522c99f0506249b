// Fused per-pixel SH shading + compositing for the tracker's photometric pipeline (VHAP_SPEC §3.3-3.5).
//
// The pure-PyTorch version (vhap.render.kernels.reference.shade_composite_reference) runs ~15 full-image
// passes forward and as many backward: normalise the interpolated normal, build 9 SH basis values, multiply-sum
// with the lights, multiply the albedo, concatenate an alpha channel to foreground and background, composite —
// at 16 x 512^2 pixels each pass moves 50-450 MB. Here one thread per pixel does all of it, and one more does
// the backward, including the lights' gradient (per-block partial sums, reduced by the caller).
//
// Forward, per pixel with coverage c (0/1), raw normal m, albedo a, background g, lights L (9x3):
//   n = m / max(|m|, 1e-12); b_k = C_k * [1, x, y, z, xy, xz, yz, x^2 - y^2, 3z^2 - 1]_k; d = b^T L
//   rgba = c ? (a * d, 1) : (g, 0);     diffuse = c * d   (its gradient reaches L only: "detached normals")

#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ void sh_basis9(const float n[3], const float* C, float b[9]) {
  const float x = n[0], y = n[1], z = n[2];
  b[0] = C[0];
  b[1] = C[1] * x;
  b[2] = C[2] * y;
  b[3] = C[3] * z;
  b[4] = C[4] * x * y;
  b[5] = C[5] * x * z;
  b[6] = C[6] * y * z;
  b[7] = C[7] * (x * x - y * y);
  b[8] = C[8] * (3.f * z * z - 1.f);
}

struct ShadeArgs {
  const float* normal;   // (B,H,W,3)
  const float* albedo;   // (B,H,W,3)
  const bool* covered;   // (B,H,W)
  const float* bg;       // (Bg,H,W,3) or (3,) when bg_constant
  const float* sh;       // (Bs,9,3)
  const float* consts;   // (9,)
  long long hw;
  int batch;
  int bg_batch;          // 1 or B (ignored when bg_constant)
  bool bg_constant;
  int sh_batch;          // 1 or B
};

__global__ void shade_fwd_kernel(ShadeArgs a, float* __restrict__ rgba, float* __restrict__ diffuse) {
  const int b = blockIdx.y;
  const long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= a.hw) return;
  const long long i = (long long)b * a.hw + p;
  if (!a.covered[i]) {
    const float* g = a.bg_constant ? a.bg : a.bg + ((a.bg_batch == 1 ? 0 : (long long)b * a.hw) + p) * 3;
    rgba[4 * i + 0] = g[0];
    rgba[4 * i + 1] = g[1];
    rgba[4 * i + 2] = g[2];
    rgba[4 * i + 3] = 0.f;
    diffuse[3 * i + 0] = 0.f;
    diffuse[3 * i + 1] = 0.f;
    diffuse[3 * i + 2] = 0.f;
    return;
  }
  const float* m = a.normal + 3 * i;
  const float len = sqrtf(m[0] * m[0] + m[1] * m[1] + m[2] * m[2]);
  const float inv = 1.f / fmaxf(len, 1e-12f);
  const float n[3] = {m[0] * inv, m[1] * inv, m[2] * inv};
  float basis[9];
  sh_basis9(n, a.consts, basis);
  const float* L = a.sh + (a.sh_batch == 1 ? 0 : (long long)b * 27);
  for (int c = 0; c < 3; ++c) {
    float d = 0.f;
    for (int k = 0; k < 9; ++k) d += basis[k] * L[3 * k + c];
    rgba[4 * i + c] = a.albedo[3 * i + c] * d;
    diffuse[3 * i + c] = d;
  }
  rgba[4 * i + 3] = 1.f;
}

// Backward: d(normal), d(albedo) per pixel; d(lights) as one partial sum per block (grid.x, grid.y = batch).
__global__ void shade_bwd_kernel(ShadeArgs a, const float* __restrict__ g_rgba, const float* __restrict__ g_diffuse,
                                 float* __restrict__ g_normal, float* __restrict__ g_albedo,
                                 float* __restrict__ g_sh_partial) {
  __shared__ float warp_sums[kThreads / 32][27];
  const int b = blockIdx.y;
  const long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  float gl[27];
  for (int j = 0; j < 27; ++j) gl[j] = 0.f;
  if (p < a.hw) {
    const long long i = (long long)b * a.hw + p;
    if (a.covered[i]) {
      const float* m = a.normal + 3 * i;
      const float len = sqrtf(m[0] * m[0] + m[1] * m[1] + m[2] * m[2]);
      const bool clamped = !(len > 1e-12f);
      const float inv = 1.f / fmaxf(len, 1e-12f);
      const float n[3] = {m[0] * inv, m[1] * inv, m[2] * inv};
      float basis[9];
      sh_basis9(n, a.consts, basis);
      const float* L = a.sh + (a.sh_batch == 1 ? 0 : (long long)b * 27);
      float g_basis[9];
      for (int k = 0; k < 9; ++k) g_basis[k] = 0.f;
      for (int c = 0; c < 3; ++c) {
        float d = 0.f;
        for (int k = 0; k < 9; ++k) d += basis[k] * L[3 * k + c];
        const float gr = g_rgba[4 * i + c];
        const float alb = a.albedo[3 * i + c];
        g_albedo[3 * i + c] = gr * d;
        const float gd_rgb = gr * alb;                 // reaches the normal and the lights
        const float gd_all = gd_rgb + g_diffuse[3 * i + c];  // the detached-normal output reaches the lights only
        for (int k = 0; k < 9; ++k) {
          gl[3 * k + c] += basis[k] * gd_all;
          g_basis[k] += L[3 * k + c] * gd_rgb;
        }
      }
      const float* C = a.consts;
      const float x = n[0], y = n[1], z = n[2];
      float gn[3];
      gn[0] = C[1] * g_basis[1] + C[4] * y * g_basis[4] + C[5] * z * g_basis[5] + 2.f * C[7] * x * g_basis[7];
      gn[1] = C[2] * g_basis[2] + C[4] * x * g_basis[4] + C[6] * z * g_basis[6] - 2.f * C[7] * y * g_basis[7];
      gn[2] = C[3] * g_basis[3] + C[5] * x * g_basis[5] + C[6] * y * g_basis[6] + 6.f * C[8] * z * g_basis[8];
      if (clamped) {  // n = m / eps: a plain scale (the clamp has no gradient)
        for (int c = 0; c < 3; ++c) g_normal[3 * i + c] = gn[c] * inv;
      } else {        // n = m / |m|: project out the radial part
        const float dot = n[0] * gn[0] + n[1] * gn[1] + n[2] * gn[2];
        for (int c = 0; c < 3; ++c) g_normal[3 * i + c] = (gn[c] - n[c] * dot) * inv;
      }
    } else {
      for (int c = 0; c < 3; ++c) {
        g_normal[3 * i + c] = 0.f;
        g_albedo[3 * i + c] = 0.f;
      }
    }
  }
  // block reduction of the 27 lights gradients: warp shuffles, then one warp over the warp sums
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int j = 0; j < 27; ++j) {
    float v = gl[j];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if (lane == 0) warp_sums[warp][j] = v;
  }
  __syncthreads();
  if (warp == 0) {
    for (int j = 0; j < 27; ++j) {
      float v = lane < kThreads / 32 ? warp_sums[lane][j] : 0.f;
      for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
      if (lane == 0) g_sh_partial[((long long)b * gridDim.x + blockIdx.x) * 27 + j] = v;
    }
  }
}

ShadeArgs make_args(const torch::Tensor& normal, const torch::Tensor& albedo, const torch::Tensor& covered,
                    const torch::Tensor& bg, const torch::Tensor& sh, const torch::Tensor& consts) {
  TORCH_CHECK(normal.is_cuda() && normal.dim() == 4 && normal.size(3) == 3 && normal.is_contiguous() &&
                  normal.scalar_type() == torch::kFloat32,
              "shade_composite: normal must be a contiguous float32 (B,H,W,3) CUDA tensor");
  TORCH_CHECK(albedo.sizes() == normal.sizes() && albedo.is_contiguous() && albedo.scalar_type() == torch::kFloat32,
              "shade_composite: albedo must be a contiguous float32 tensor shaped like normal");
  const int B = (int)normal.size(0);
  const long long hw = normal.size(1) * normal.size(2);
  TORCH_CHECK(covered.scalar_type() == torch::kBool && covered.is_contiguous() && covered.numel() == B * hw,
              "shade_composite: covered must be a contiguous bool (B,H,W) tensor");
  TORCH_CHECK(sh.dim() == 3 && sh.size(1) == 9 && sh.size(2) == 3 && sh.is_contiguous() &&
                  sh.scalar_type() == torch::kFloat32 && (sh.size(0) == 1 || sh.size(0) == B),
              "shade_composite: sh must be a contiguous float32 (1|B,9,3) tensor");
  TORCH_CHECK(consts.numel() == 9 && consts.scalar_type() == torch::kFloat32, "shade_composite: 9 SH constants");
  ShadeArgs a;
  a.normal = normal.data_ptr<float>();
  a.albedo = albedo.data_ptr<float>();
  a.covered = covered.data_ptr<bool>();
  a.sh = sh.data_ptr<float>();
  a.consts = consts.data_ptr<float>();
  a.hw = hw;
  a.batch = B;
  a.sh_batch = (int)sh.size(0);
  TORCH_CHECK(bg.is_contiguous() && bg.scalar_type() == torch::kFloat32, "shade_composite: contiguous float32 bg");
  if (bg.numel() == 3) {
    a.bg_constant = true;
    a.bg_batch = 1;
  } else {
    TORCH_CHECK(bg.dim() == 4 && bg.size(1) == normal.size(1) && bg.size(2) == normal.size(2) && bg.size(3) == 3 &&
                    (bg.size(0) == 1 || bg.size(0) == B),
                "shade_composite: bg must be (3,) or (1|B,H,W,3)");
    a.bg_constant = false;
    a.bg_batch = (int)bg.size(0);
  }
  a.bg = bg.data_ptr<float>();
  return a;
}

}  // namespace

std::vector<torch::Tensor> shade_composite_fwd(torch::Tensor normal, torch::Tensor albedo, torch::Tensor covered,
                                               torch::Tensor bg, torch::Tensor sh, torch::Tensor consts) {
  const at::cuda::OptionalCUDAGuard guard(normal.device());
  ShadeArgs a = make_args(normal, albedo, covered, bg, sh, consts);
  auto rgba = torch::empty({normal.size(0), normal.size(1), normal.size(2), 4}, normal.options());
  auto diffuse = torch::empty_like(normal);
  if (a.hw > 0 && a.batch > 0) {
    dim3 grid((unsigned)((a.hw + kThreads - 1) / kThreads), (unsigned)a.batch);
    shade_fwd_kernel<<<grid, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(a, rgba.data_ptr<float>(),
                                                                               diffuse.data_ptr<float>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {rgba, diffuse};
}

// -> d(normal) (B,H,W,3), d(albedo) (B,H,W,3), d(sh) (1|B,9,3)
std::vector<torch::Tensor> shade_composite_bwd(torch::Tensor normal, torch::Tensor albedo, torch::Tensor covered,
                                               torch::Tensor sh, torch::Tensor consts, torch::Tensor g_rgba,
                                               torch::Tensor g_diffuse) {
  const at::cuda::OptionalCUDAGuard guard(normal.device());
  auto dummy_bg = torch::zeros({3}, normal.options());
  ShadeArgs a = make_args(normal, albedo, covered, dummy_bg, sh, consts);
  TORCH_CHECK(g_rgba.is_contiguous() && g_rgba.numel() == a.batch * a.hw * 4, "shade_composite: g_rgba (B,H,W,4)");
  TORCH_CHECK(g_diffuse.is_contiguous() && g_diffuse.numel() == a.batch * a.hw * 3,
              "shade_composite: g_diffuse (B,H,W,3)");
  auto g_normal = torch::empty_like(normal);
  auto g_albedo = torch::empty_like(albedo);
  const unsigned blocks = (unsigned)((a.hw + kThreads - 1) / kThreads);
  auto partial = torch::empty({(long long)a.batch, (long long)blocks, 9, 3}, normal.options());
  if (a.hw > 0 && a.batch > 0) {
    dim3 grid(blocks, (unsigned)a.batch);
    shade_bwd_kernel<<<grid, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        a, g_rgba.data_ptr<float>(), g_diffuse.data_ptr<float>(), g_normal.data_ptr<float>(),
        g_albedo.data_ptr<float>(), partial.data_ptr<float>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  auto g_sh = partial.sum(1);  // (B,9,3)
  if (sh.size(0) == 1) g_sh = g_sh.sum(0, true);
  return {g_normal, g_albedo, g_sh};
}
