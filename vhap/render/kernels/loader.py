"""The one loader of vhap's CUDA kernels: every ``.cu`` file of this package is built, on first use, into one
extension module (``torch.utils.cpp_extension``, JIT; needs nvcc and ninja matching torch's CUDA) that torch caches
between runs. :func:`load_kernels` returns it; the fused operations in :mod:`vhap.render.kernels.ops` call it."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

from vhap.errors import VhapError

KERNEL_DIR = Path(__file__).parent
#: the sources of the extension; ``ext.cu`` declares their entry points and binds them to Python
SOURCES = ("ext.cu", "zbuffer.cu", "shade.cu", "perturb.cu", "image_loss.cu")
EXTENSION_NAME = "vhap_kernels"

_EXTENSION: ModuleType | None = None
_REGISTERING = False


def register_built_modules() -> None:
    """Make ``torch.utils.cpp_extension`` register every module it builds or loads in ``sys.modules``.

    nvdiffrast 0.3.x builds its plugin with ``torch.utils.cpp_extension`` and then imports it by name; torch >= 2.9
    loads built modules through ``importlib.util.module_from_spec`` without registering them, so that import fails.
    Wrapping ``_import_module_from_library`` (used by both ``load`` and the cached-build path) fixes it for every
    extension. Idempotent, and harmless where the bug does not exist."""
    global _REGISTERING
    if _REGISTERING:
        return
    import torch.utils.cpp_extension as cpp_ext

    original = getattr(cpp_ext, "_import_module_from_library", None)
    if original is None or getattr(original, "vhap_registers_module", False):
        _REGISTERING = True
        return

    def import_and_register(module_name, path, is_python_module):
        module = original(module_name, path, is_python_module)
        if is_python_module and module is not None and module_name not in sys.modules:
            sys.modules[module_name] = module
        return module

    import_and_register.vhap_registers_module = True  # type: ignore[attr-defined]
    cpp_ext._import_module_from_library = import_and_register
    _REGISTERING = True


def load_kernels() -> ModuleType:
    """Build (first call, about a minute; cached by torch afterwards) or load the ``vhap_kernels`` extension.

    Raises :class:`vhap.errors.VhapError` when it cannot be built here (no nvcc/ninja, CUDA mismatch)."""
    global _EXTENSION
    if _EXTENSION is None:
        from torch.utils.cpp_extension import load

        register_built_modules()
        try:
            _EXTENSION = load(
                name=EXTENSION_NAME,
                sources=[str(KERNEL_DIR / s) for s in SOURCES],
                extra_cuda_cflags=["-O3"],
                verbose=False,
            )
        except Exception as e:  # compiler missing, CUDA mismatch, ...
            raise VhapError(
                f"could not build vhap's CUDA kernels: {e}",
                path=KERNEL_DIR,
                fix="install nvcc and ninja matching torch's CUDA, or use --render.backend nvdiffrast / torch",
            ) from e
    return _EXTENSION
