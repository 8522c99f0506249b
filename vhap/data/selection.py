"""Frame and camera selection: VHAP's ``subset`` grammar and NeRSemble's ``division`` camera splits.

Grammar (substrings of one string, combinable, e.g. ``"tn10cs2"``):

- ``ti<i>`` keep timestep index i; ``ti<i>tj<j>`` keep the inclusive range i..j;
- ``tn<n>`` keep n evenly spaced timesteps (first and last included: ``linspace(0, T-1, n)`` rounded);
- ``ts<s>`` keep every s-th timestep (0, s, 2s, ...);
- ``ci<i>``, ``ci<i>cj<j>``, ``cn<n>``, ``cs<s>``: the same for cameras.

Indices refer to the positions in the sorted list before selection.
"""

from __future__ import annotations

import re

import numpy as np

from vhap.errors import VhapError

#: NeRSemble 16-camera splits (indices into the calibration's camera order); camera 8 is frontal.
DIVISIONS: dict[str, tuple[int, ...]] = {
    "train": (8, 7, 9, 4, 10, 5, 13, 2, 12, 1, 14, 0),
    "val": (3, 6, 11, 15),
    "front-view": (8,),
    "side-view": (0,),
    "six-view": (0, 1, 7, 8, 14, 15),
}

_TOKEN = re.compile(r"(ti|tj|tn|ts|ci|cj|cn|cs)(\d+)")


def parse_subset(subset: str | None) -> dict[str, int]:
    """Parse a subset string into ``{token: value}``; raises on anything it does not understand."""
    if not subset:
        return {}
    tokens = {}
    pos = 0
    for m in _TOKEN.finditer(subset):
        if m.start() != pos:
            break
        if m.group(1) in tokens:
            raise VhapError(f"subset '{subset}': '{m.group(1)}' given twice")
        tokens[m.group(1)] = int(m.group(2))
        pos = m.end()
    if pos != len(subset):
        raise VhapError(
            f"subset '{subset}': cannot parse '{subset[pos:]}'",
            fix="use ti<i>, ti<i>tj<j>, tn<n>, ts<s> for timesteps and ci/cj/cn/cs for cameras, e.g. 'tn10cs2'",
        )
    for axis in ("t", "c"):
        if f"{axis}j" in tokens and f"{axis}i" not in tokens:
            raise VhapError(f"subset '{subset}': '{axis}j' needs '{axis}i' (inclusive range {axis}i..{axis}j)")
        picked = [k for k in (f"{axis}i", f"{axis}n", f"{axis}s") if k in tokens]
        if len(picked) > 1:
            raise VhapError(f"subset '{subset}': use only one of {picked}")
    for k in ("tn", "ts", "cn", "cs"):
        if tokens.get(k, 1) < 1:
            raise VhapError(f"subset '{subset}': '{k}' must be ≥ 1")
    return tokens


def select_indices(n: int, tokens: dict[str, int], axis: str, what: str = "timesteps") -> list[int]:
    """Indices into a list of length ``n`` kept by the ``axis`` ('t' or 'c') part of parsed tokens."""
    i, j = tokens.get(f"{axis}i"), tokens.get(f"{axis}j")
    if i is not None:
        j = i if j is None else j
        if not (0 <= i <= j < n):
            raise VhapError(
                f"subset {axis}i{i}" + (f"{axis}j{j}" if j != i else "") + f": only {n} {what} (0..{n - 1})"
            )
        return list(range(i, j + 1))
    if f"{axis}n" in tokens:
        k = tokens[f"{axis}n"]
        if k >= n:
            return list(range(n))
        return sorted(set(np.round(np.linspace(0, n - 1, k)).astype(int).tolist()))
    if f"{axis}s" in tokens:
        return list(range(0, n, tokens[f"{axis}s"]))
    return list(range(n))


def division_indices(division: str | None, num_cameras: int) -> list[int] | None:
    """Camera indices of a NeRSemble ``division`` (None = no division)."""
    if division is None:
        return None
    if division not in DIVISIONS:
        raise VhapError(f"unknown division '{division}'", fix=f"use one of {sorted(DIVISIONS)}")
    idx = list(DIVISIONS[division])
    if max(idx) >= num_cameras:
        raise VhapError(
            f"division '{division}' uses camera index {max(idx)} but the sequence has {num_cameras} cameras",
            fix="divisions assume NeRSemble's 16-camera order; select cameras with --data.cameras instead",
        )
    return idx
