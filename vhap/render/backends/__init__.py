"""Rasterisation backends behind ``vhap.render.MeshRenderer``, each a :class:`vhap.render.backends.base.RenderBackend`
that declares what it can do (:class:`~vhap.render.backends.base.BackendCaps`) and returns
:class:`~vhap.render.backends.base.Fragments`: ``torch_raster.TorchBackend`` (the reference, any device),
``nvdiffrast.NvdiffrastBackend`` (CUDA) and ``cuda.CudaBackend`` (vhap's z-buffer kernels + nvdiffrast's attribute
operations; CUDA-graph safe)."""
