"""Loading user-supplied TorchScript models (optional detectors / matting backends) with clear errors."""

from __future__ import annotations

from pathlib import Path


def load_torchscript(path: str | Path | None, *, what: str, missing_fix: str, export_fix: str, device: str = "cpu"):
    """``torch.jit.load`` a user's model file, in eval mode; nothing is ever downloaded.

    ``what`` names the model in messages; ``missing_fix`` says how to supply it when ``path`` is None / empty /
    not a file; ``export_fix`` says how to produce a TorchScript file when the file is something else.
    """
    import torch

    from vhap.errors import VhapError

    if path is None or not str(path):
        raise VhapError(f"{what} needs a model file (user-supplied weights)", fix=missing_fix)
    path = Path(path)
    if not path.is_file():
        raise VhapError(f"{what}: model file not found", path=path, fix=missing_fix)
    try:
        return torch.jit.load(str(path), map_location=device).eval()
    except Exception as e:  # noqa: BLE001 - any loader failure means "not a TorchScript file" to the user
        raise VhapError(f"{what}: cannot load as TorchScript: {e}", path=path, fix=export_fix) from e
