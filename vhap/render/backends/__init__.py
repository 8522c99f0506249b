"""Rasterisation backends behind ``vhap.render.MeshRenderer``: ``torch_raster`` (reference, any device) and
``nvdiffrast`` (CUDA). Both return :class:`vhap.render.backends.base.Fragments`."""
