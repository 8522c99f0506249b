// The one Python module of vhap's CUDA kernels (built by vhap/render/kernels/loader.py): the host entry point of
// each .cu file of this package, declared here and bound once. vhap/render/kernels/ops.py wraps them as autograd
// functions; vhap/render/kernels/reference.py holds the pure-PyTorch twin of each.

#include <torch/extension.h>

#include <vector>

// zbuffer.cu: (B,V,4) clip, (F,3) int32 faces, optional (B,F) bool faces to rasterise -> (B,H,W) int32 visible face
torch::Tensor visibility(torch::Tensor clip, torch::Tensor faces, torch::Tensor keep_face, int64_t H, int64_t W);
// zbuffer.cu: y-negated positions, faces, visibility -> nvdiffrast-layout rast, rast_db and depth
std::vector<torch::Tensor> attributes(torch::Tensor pos, torch::Tensor faces, torch::Tensor tri);

// shade.cu
std::vector<torch::Tensor> shade_composite_fwd(torch::Tensor normal, torch::Tensor albedo, torch::Tensor covered,
                                               torch::Tensor bg, torch::Tensor sh, torch::Tensor consts);
std::vector<torch::Tensor> shade_composite_bwd(torch::Tensor normal, torch::Tensor albedo, torch::Tensor covered,
                                               torch::Tensor sh, torch::Tensor consts, torch::Tensor g_rgba,
                                               torch::Tensor g_diffuse);

// perturb.cu
std::vector<torch::Tensor> perturb_select(torch::Tensor image, torch::Tensor cid, torch::Tensor r, torch::Tensor u,
                                          torch::Tensor grouped, torch::Tensor starts, torch::Tensor counts,
                                          double rate_fg, double rate_bg);
torch::Tensor perturb_keep_grad(torch::Tensor grad, torch::Tensor keep);

// image_loss.cu
torch::Tensor image_loss_fwd(torch::Tensor rgba, torch::Tensor target, torch::Tensor covered,
                             torch::optional<torch::Tensor> matte, bool excess);
torch::Tensor image_loss_bwd(torch::Tensor rgba, torch::Tensor target, torch::optional<torch::Tensor> matte,
                             bool excess, torch::Tensor grad_sums);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("visibility", &visibility, "z-buffer visibility (B,H,W) int32, -1 empty");
  m.def("attributes", &attributes, "nvdiffrast-layout rast, rast_db and depth from a visibility buffer");
  m.def("shade_composite_fwd", &shade_composite_fwd, "fused SH shading + compositing");
  m.def("shade_composite_bwd", &shade_composite_bwd, "its backward");
  m.def("perturb_select", &perturb_select, "fused sample selection of the appearance perturbation");
  m.def("perturb_keep_grad", &perturb_keep_grad, "its backward: the gradient of kept pixels");
  m.def("image_loss_fwd", &image_loss_fwd, "per-view photometric / coverage / silhouette sums (N,3)");
  m.def("image_loss_bwd", &image_loss_bwd, "gradient of those sums with respect to rgba");
}
