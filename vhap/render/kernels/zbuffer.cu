// vhap z-buffer rasteriser: visibility and nvdiffrast-compatible raster outputs without host synchronisation.
//
// Why this exists: nvdiffrast's CUDA rasteriser reads its bin counters back to the host once per call (to grow its
// buffers), so a tracker step that rasterises can never be recorded as a CUDA graph, and its ~1000 kernel launches
// per step stay bound by Python and launch overhead. These kernels have fixed launch sizes and no device->host
// traffic; everything after visibility (interpolation, texture, antialiasing, the rasteriser's gradient) is still
// nvdiffrast, fed with the buffers written here.
//
// Coverage rules are those of the pure-PyTorch reference backend (vhap/render/backends/torch_raster.py), which
// matches nvdiffrast's CUDA rasteriser: vertices snapped to a 1/16-pixel grid (x right, y up from the bottom-left
// corner), pixel centres tested with exact 64-bit integer edge functions, centres exactly on an edge owned by
// "top-left" edges of the orientation-normalised triangle, nearest depth wins (z/w quantised to 31 bits, face id as
// tie-break) through one 64-bit atomicMin per candidate pixel.
//
// Buffers are written with row 0 = image top. The caller passes the y-negated clip positions to the attribute
// kernel and to nvdiffrast, so nvdiffrast's row-0-at-NDC-y=-1 convention lands on the same rows (no flips).

#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cstdint>

namespace {

constexpr unsigned long long kEmpty = 0xFFFFFFFFFFFFFFFFull;
constexpr double kDepthLevels = 2147483647.0;  // 2^31 - 1

__device__ __forceinline__ long long snap16(float c, float w_inv, float half_px16) {
  // round-half-even, as torch.round in the reference backend
  return __float2ll_rn((c * w_inv) * half_px16);
}

__device__ __forceinline__ long long floor16(long long a) { return a >> 4; }  // floor division by 16

// One thread per (view, face): enumerate the pixel centres of the snapped bounding box and keep the nearest.
__global__ void splat_faces_kernel(const float4* __restrict__ clip, const int* __restrict__ faces,
                                   const bool* __restrict__ keep_face, int B, int V, int F, int H, int W,
                                   unsigned long long* __restrict__ zbuf) {
  long long gid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (gid >= (long long)B * F) return;
  int b = (int)(gid / F);
  int f = (int)(gid - (long long)b * F);
  if (keep_face != nullptr && !keep_face[gid]) return;

  const float4* pb = clip + (long long)b * V;
  float4 p[3];
  for (int k = 0; k < 3; ++k) {
    int vi = faces[3 * f + k];
    if (vi < 0 || vi >= V) return;
    p[k] = pb[vi];
  }
  for (int k = 0; k < 3; ++k)
    if (!(p[k].w > 1e-8f)) return;  // a vertex behind (or on) the camera plane: dropped, as the reference does

  long long sx[3], sy[3];
  double z[3];
  const float hx = 8.0f * (float)W, hy = 8.0f * (float)H;
  for (int k = 0; k < 3; ++k) {
    float inv_w = 1.0f / p[k].w;
    sx[k] = snap16(p[k].x, inv_w, hx) + 8LL * W;
    sy[k] = snap16(p[k].y, inv_w, hy) + 8LL * H;
    z[k] = (double)(p[k].z * inv_w);
  }
  if ((z[0] < -1.0 && z[1] < -1.0 && z[2] < -1.0) || (z[0] > 1.0 && z[1] > 1.0 && z[2] > 1.0)) return;
  long long area = (sx[1] - sx[0]) * (sy[2] - sy[0]) - (sy[1] - sy[0]) * (sx[2] - sx[0]);
  if (area == 0) return;
  long long orient = area > 0 ? 1 : -1;
  const double abs_area = (double)(area > 0 ? area : -area);

  long long lox = min(sx[0], min(sx[1], sx[2])), hix = max(sx[0], max(sx[1], sx[2]));
  long long loy = min(sy[0], min(sy[1], sy[2])), hiy = max(sy[0], max(sy[1], sy[2]));
  long long j0 = max(floor16(lox - 8 + 15), 0LL), j1 = min(floor16(hix - 8), (long long)W - 1);
  long long r0 = max(floor16(loy - 8 + 15), 0LL), r1 = min(floor16(hiy - 8), (long long)H - 1);
  if (j1 < j0 || r1 < r0) return;

  // Edge k runs from vertex k+1 to vertex k+2; its edge function is the doubled signed barycentric of vertex k.
  long long ex[3], ey[3], e0[3];
  bool owns[3];
  const long long cx0 = 16 * j0 + 8, cy0 = 16 * r0 + 8;
  for (int k = 0; k < 3; ++k) {
    int a = (k + 1) % 3, c = (k + 2) % 3;
    long long dx = sx[c] - sx[a], dy = sy[c] - sy[a];
    e0[k] = (dx * (cy0 - sy[a]) - dy * (cx0 - sx[a])) * orient;
    ex[k] = -dy * 16 * orient;
    ey[k] = dx * 16 * orient;
    long long dxn = dx * orient, dyn = dy * orient;
    owns[k] = (dyn < 0) || (dyn == 0 && dxn < 0);
  }
  unsigned long long* zb = zbuf + (long long)b * H * W;
  for (long long r = r0; r <= r1; ++r) {
    long long row = (long long)(H - 1 - r) * W;  // raster rows count from the bottom; buffers from the top
    for (long long j = j0; j <= j1; ++j) {
      long long e[3];
      bool inside = true;
      for (int k = 0; k < 3; ++k) {
        e[k] = e0[k] + ex[k] * (j - j0) + ey[k] * (r - r0);
        inside = inside && (e[k] > 0 || (e[k] == 0 && owns[k]));
      }
      if (!inside) continue;
      double depth = 0.0;
      for (int k = 0; k < 3; ++k) depth += ((double)e[k] / abs_area) * z[k];
      if (!(depth >= -1.0 && depth <= 1.0)) continue;
      double t = depth * 0.5 + 0.5;
      t = t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t);
      unsigned long long zq = (unsigned long long)(long long)(t * kDepthLevels);
      unsigned long long key = (zq << 32) | (unsigned long long)(unsigned int)f;
      atomicMin(zb + row + j, key);
    }
  }
}

__global__ void resolve_kernel(const unsigned long long* __restrict__ zbuf, int* __restrict__ tri, long long n) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  unsigned long long key = zbuf[i];
  tri[i] = key == kEmpty ? -1 : (int)(key & 0xFFFFFFFFull);
}

__device__ __forceinline__ float tri_to_float(int t) {  // nvdiffrast's float coding of (triangle id + 1)
  return t <= 0x01000000 ? (float)t : __int_as_float(0x4a800000 + t);
}

// One thread per pixel: perspective-correct barycentrics from homogeneous 2D edge functions at the pixel centre
// (Olano & Greer), in nvdiffrast's raster layout: rast = (b0, b1, z/w, id + 1), rast_db = screen derivatives
// (db0/dx, db0/dy, db1/dx, db1/dy), plus the camera depth (interpolated clip w).
__global__ void attributes_kernel(const float4* __restrict__ pos, const int* __restrict__ faces,
                                  const int* __restrict__ tri, int B, int V, int H, int W,
                                  float4* __restrict__ rast, float4* __restrict__ rast_db, float* __restrict__ depth) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long n = (long long)B * H * W;
  if (i >= n) return;
  int t = tri[i];
  if (t < 0) {
    rast[i] = make_float4(0.f, 0.f, 0.f, 0.f);
    rast_db[i] = make_float4(0.f, 0.f, 0.f, 0.f);
    depth[i] = 0.f;
    return;
  }
  int b = (int)(i / ((long long)H * W));
  int rem = (int)(i - (long long)b * H * W);
  int py = rem / W, px = rem - py * W;
  const float4* pb = pos + (long long)b * V;
  float4 p0 = pb[faces[3 * t]], p1 = pb[faces[3 * t + 1]], p2 = pb[faces[3 * t + 2]];
  const float sx = 2.f / (float)W, sy = 2.f / (float)H;
  float fx = sx * (float)px + (1.f / (float)W - 1.f);
  float fy = sy * (float)py + (1.f / (float)H - 1.f);
  // vertex positions relative to the pixel's ray, in homogeneous 2D
  float q0x = p0.x - fx * p0.w, q0y = p0.y - fy * p0.w;
  float q1x = p1.x - fx * p1.w, q1y = p1.y - fy * p1.w;
  float q2x = p2.x - fx * p2.w, q2y = p2.y - fy * p2.w;
  float a0 = q1x * q2y - q1y * q2x;
  float a1 = q2x * q0y - q2y * q0x;
  float a2 = q0x * q1y - q0y * q1x;
  float s = a0 + a1 + a2;
  float inv_s = 1.f / s;
  float b0 = a0 * inv_s, b1 = a1 * inv_s;
  float zc = p0.z * a0 + p1.z * a1 + p2.z * a2;
  float wc = p0.w * a0 + p1.w * a1 + p2.w * a2;
  float zw = fmaxf(fminf(zc / wc, 1.f), -1.f);
  rast[i] = make_float4(__saturatef(b0), __saturatef(b1), zw, tri_to_float(t + 1));
  depth[i] = wc * inv_s;
  // a_k is affine in (fx, fy): its partial derivatives, then d(a_k / s) = (da_k - b_k ds) / s
  float a0x = p1.y * p2.w - p2.y * p1.w, a0y = p2.x * p1.w - p1.x * p2.w;
  float a1x = p2.y * p0.w - p0.y * p2.w, a1y = p0.x * p2.w - p2.x * p0.w;
  float a2x = p0.y * p1.w - p1.y * p0.w, a2y = p1.x * p0.w - p0.x * p1.w;
  float stx = a0x + a1x + a2x, sty = a0y + a1y + a2y;
  rast_db[i] = make_float4(sx * inv_s * (a0x - b0 * stx), sy * inv_s * (a0y - b0 * sty),
                           sx * inv_s * (a1x - b1 * stx), sy * inv_s * (a1y - b1 * sty));
}

inline int blocks_for(long long n, int threads) { return (int)((n + threads - 1) / threads); }

void check_inputs(const torch::Tensor& clip, const torch::Tensor& faces) {
  TORCH_CHECK(clip.is_cuda() && faces.is_cuda(), "vhap zbuffer: clip and faces must be CUDA tensors");
  TORCH_CHECK(clip.dim() == 3 && clip.size(2) == 4 && clip.scalar_type() == torch::kFloat32 && clip.is_contiguous(),
              "vhap zbuffer: clip must be a contiguous float32 (B,V,4) tensor");
  TORCH_CHECK(faces.dim() == 2 && faces.size(1) == 3 && faces.scalar_type() == torch::kInt32 && faces.is_contiguous(),
              "vhap zbuffer: faces must be a contiguous int32 (F,3) tensor");
  TORCH_CHECK(clip.get_device() == faces.get_device(), "vhap zbuffer: clip and faces on different devices");
}

}  // namespace

// (B,V,4) clip, (F,3) faces, optional (B,F) bool faces to rasterise -> (B,H,W) int32 visible face (-1 empty).
torch::Tensor visibility(torch::Tensor clip, torch::Tensor faces, torch::Tensor keep_face, int64_t H, int64_t W) {
  check_inputs(clip, faces);
  const at::cuda::OptionalCUDAGuard guard(clip.device());
  const int B = (int)clip.size(0), V = (int)clip.size(1), F = (int)faces.size(0);
  const bool* keep = nullptr;
  if (keep_face.defined() && keep_face.numel() > 0) {
    TORCH_CHECK(keep_face.scalar_type() == torch::kBool && keep_face.is_contiguous() && keep_face.dim() == 2 &&
                    keep_face.size(0) == B && keep_face.size(1) == F && keep_face.is_cuda(),
                "vhap zbuffer: keep_face must be a contiguous bool (B,F) CUDA tensor");
    keep = keep_face.data_ptr<bool>();
  }
  auto stream = at::cuda::getCurrentCUDAStream();
  const long long n = (long long)B * H * W;
  auto zbuf = torch::full({n}, -1, clip.options().dtype(torch::kInt64));  // all bits set = empty
  auto tri = torch::empty({B, H, W}, clip.options().dtype(torch::kInt32));
  if (F > 0 && B > 0) {
    const int threads = 128;
    splat_faces_kernel<<<blocks_for((long long)B * F, threads), threads, 0, stream>>>(
        reinterpret_cast<const float4*>(clip.data_ptr<float>()), faces.data_ptr<int>(), keep, B, V, F, (int)H,
        (int)W, reinterpret_cast<unsigned long long*>(zbuf.data_ptr<int64_t>()));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  if (n > 0) {
    resolve_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(
        reinterpret_cast<const unsigned long long*>(zbuf.data_ptr<int64_t>()), tri.data_ptr<int>(), n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return tri;
}

// (B,V,4) positions (the clip positions with y negated), (F,3) faces, (B,H,W) visible face -> rast (B,H,W,4),
// rast_db (B,H,W,4), depth (B,H,W).
std::vector<torch::Tensor> attributes(torch::Tensor pos, torch::Tensor faces, torch::Tensor tri) {
  check_inputs(pos, faces);
  TORCH_CHECK(tri.is_cuda() && tri.dim() == 3 && tri.scalar_type() == torch::kInt32 && tri.is_contiguous() &&
                  tri.size(0) == pos.size(0),
              "vhap zbuffer: tri must be a contiguous int32 (B,H,W) CUDA tensor with B = pos.shape[0]");
  const at::cuda::OptionalCUDAGuard guard(pos.device());
  const int B = (int)pos.size(0), V = (int)pos.size(1), H = (int)tri.size(1), W = (int)tri.size(2);
  auto rast = torch::empty({B, H, W, 4}, pos.options());
  auto rast_db = torch::empty({B, H, W, 4}, pos.options());
  auto depth = torch::empty({B, H, W}, pos.options());
  const long long n = (long long)B * H * W;
  if (n > 0) {
    auto stream = at::cuda::getCurrentCUDAStream();
    attributes_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(
        reinterpret_cast<const float4*>(pos.data_ptr<float>()), faces.data_ptr<int>(), tri.data_ptr<int>(), B, V, H,
        W, reinterpret_cast<float4*>(rast.data_ptr<float>()), reinterpret_cast<float4*>(rast_db.data_ptr<float>()),
        depth.data_ptr<float>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {rast, rast_db, depth};
}
