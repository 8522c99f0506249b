"""NeRSemble colour correction, applied once when frames are extracted.

- v1 (``color_correction/<subject>/<serial>.npy``): an affine map on sRGB values in [0, 1], row-vector
  convention: ``rgb' = clip(rgb @ M[:3, :3] + M[:3, 3], 0, 1)`` (no linearisation).
- v2 (``calibration/color_calibration.json``, ``{serial: CCM}``): decode sRGB to linear, expand each
  pixel into the polynomial terms of Cheung et al. (2004) — as many terms as the CCM has columns —,
  apply ``CCM (3, terms)``, clip, re-encode to sRGB. (VHAP computes this and then stores the uncorrected
  image; we keep the corrected one.)

The sRGB transfer functions are the IEC 61966-2-1 piecewise curves, written here so that no colour
science package is needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vhap.errors import VhapError

#: Cheung 2004 polynomial terms per term count, as exponent triples (r, g, b); (0, 0, 0) is the constant.
_L = [(1, 0, 0), (0, 1, 0), (0, 0, 1)]
_CROSS = [(1, 1, 0), (1, 0, 1), (0, 1, 1)]
_SQ = [(2, 0, 0), (0, 2, 0), (0, 0, 2)]
_RGB = [(1, 1, 1)]
_CUBE = [(3, 0, 0), (0, 3, 0), (0, 0, 3)]
_MIX_A = [(2, 1, 0), (0, 2, 1), (1, 0, 2)]  # R²G, G²B, B²R
_MIX_B = [(2, 0, 1), (1, 2, 0), (0, 1, 2)]  # R²B, G²R, B²G
_C = [(0, 0, 0)]
CHEUNG_TERMS: dict[int, list[tuple[int, int, int]]] = {
    3: _L,
    4: _L + _C,
    5: _L + _RGB + _C,
    7: _L + _CROSS + _C,
    8: _L + _CROSS + _RGB + _C,
    10: _L + _CROSS + _SQ + _C,
    11: _L + _CROSS + _SQ + _RGB + _C,
    14: _L + _CROSS + _SQ + _RGB + _CUBE + _C,
    16: _L + _CROSS + _SQ + _RGB + _MIX_A + _CUBE,
    17: _L + _CROSS + _SQ + _RGB + _MIX_A + _CUBE + _C,
    19: _L + _CROSS + _SQ + _RGB + _MIX_A + _MIX_B + _CUBE,
    20: _L + _CROSS + _SQ + _RGB + _MIX_A + _MIX_B + _CUBE + _C,
    22: _L + _CROSS + _SQ + _RGB + _MIX_A + _MIX_B + _CUBE + [(2, 1, 1), (1, 2, 1), (1, 1, 2)],
}


def srgb_decode(v: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0,1] → linear light."""
    v = np.asarray(v, dtype=np.float32)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def srgb_encode(v: np.ndarray) -> np.ndarray:
    """Linear light in [0,1] → sRGB-encoded values (input clipped to [0,1] first)."""
    v = np.clip(np.asarray(v, dtype=np.float32), 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055).astype(np.float32)


def cheung_expand(rgb: np.ndarray, terms: int) -> np.ndarray:
    """(..., 3) → (..., terms) Cheung 2004 polynomial expansion."""
    if terms not in CHEUNG_TERMS:
        raise VhapError(f"no Cheung 2004 expansion with {terms} terms (supported: {sorted(CHEUNG_TERMS)})")
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    cols = []
    for er, eg, eb in CHEUNG_TERMS[terms]:
        t = np.ones_like(r)
        for base, e in ((r, er), (g, eg), (b, eb)):
            for _ in range(e):
                t = t * base
        cols.append(t)
    return np.stack(cols, -1)


@dataclass
class ColourCorrection:
    """One camera's correction. ``kind`` is ``affine`` (v1) or ``ccm`` (v2); ``matrix`` as stored."""

    kind: str
    matrix: np.ndarray
    source: str = ""

    def apply_float(self, rgb: np.ndarray) -> np.ndarray:
        """(..., 3) sRGB float in [0,1] → corrected (..., 3) in [0,1]."""
        if self.kind == "affine":
            M = self.matrix
            return np.clip(rgb @ M[:3, :3].astype(np.float32) + M[:3, 3].astype(np.float32), 0, 1)
        lin = srgb_decode(rgb)
        out = cheung_expand(lin, self.matrix.shape[1]) @ self.matrix.T.astype(np.float32)
        return srgb_encode(out)

    def apply(self, rgb_u8: np.ndarray) -> np.ndarray:
        """(..., 3) uint8 → corrected uint8 (rounded)."""
        out = self.apply_float(rgb_u8.astype(np.float32) / 255.0)
        return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def describe(self) -> dict:
        return {"kind": self.kind, "source": self.source, "matrix": np.asarray(self.matrix).tolist()}


def load_affine_v1(path: str | Path) -> ColourCorrection:
    path = Path(path)
    try:
        M = np.load(path)
    except Exception as e:  # noqa: BLE001
        raise VhapError(f"cannot read colour correction matrix: {e}", path=path) from e
    if M.ndim != 2 or M.shape[0] < 3 or M.shape[1] < 4:
        raise VhapError(f"colour correction matrix has shape {M.shape}, expected at least 3x4", path=path)
    if not np.all(np.isfinite(M)):
        raise VhapError("colour correction matrix contains NaN/inf", path=path)
    return ColourCorrection("affine", M.astype(np.float64), str(path))


def load_ccm_v2(path: str | Path) -> dict[str, ColourCorrection]:
    """``color_calibration.json`` → {serial: CCM (3, terms)} (a (terms, 3) matrix is transposed)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise VhapError(f"cannot read colour calibration: {e}", path=path) from e
    if not isinstance(data, dict) or not data:
        raise VhapError("expected a non-empty {serial: CCM} object", path=path)
    out = {}
    for serial, m in data.items():
        try:
            M = np.asarray(m, dtype=np.float64)
        except (TypeError, ValueError):
            raise VhapError(f"CCM of camera {serial} is not numeric", path=path) from None
        if M.ndim == 2 and M.shape[0] != 3 and M.shape[1] == 3:
            M = M.T
        if M.ndim != 2 or M.shape[0] != 3 or M.shape[1] not in CHEUNG_TERMS:
            raise VhapError(
                f"CCM of camera {serial} has shape {M.shape}; expected (3, n) with n in {sorted(CHEUNG_TERMS)}",
                path=path,
            )
        if not np.all(np.isfinite(M)):
            raise VhapError(f"CCM of camera {serial} contains NaN/inf", path=path)
        out[str(serial)] = ColourCorrection("ccm", M, str(path))
    return out


def load_colour_corrections(layout: str, root: Path, subject: str, cameras: list[str]) -> dict[str, ColourCorrection]:
    """Per-camera corrections of a NeRSemble subject; empty when the layout has none or files are absent."""
    from vhap.data.layout import colour_correction_path

    if layout not in ("nersemble_v1", "nersemble_v2") or not subject:
        return {}
    path = colour_correction_path(root, layout, subject)
    if layout == "nersemble_v1":
        return {c: load_affine_v1(path / f"{c}.npy") for c in cameras if (path / f"{c}.npy").is_file()}
    if not path.is_file():
        return {}
    ccms = load_ccm_v2(path)
    return {c: ccms[c] for c in cameras if c in ccms}
