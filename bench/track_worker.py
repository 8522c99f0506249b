"""Run ``vhap track`` in this (fresh) process and record wall time and peak memory for bench/run.py.

    python bench/track_worker.py <out.json> <vhap track arguments...>

A separate process so that the peak RSS / CUDA peak belong to the tracker alone (not to data generation or
scoring done by the caller).
"""

from __future__ import annotations

import json
import resource
import sys
import time


def main(argv: list[str]) -> int:
    out_json, args = argv[0], argv[1:]
    import torch

    from vhap.cli import main as vhap_main

    t0 = time.perf_counter()
    rc = vhap_main(["track", *args])
    wall = time.perf_counter() - t0
    info = {
        "returncode": rc,
        "wall_s": wall,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cuda_max_allocated_mib": (torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_initialized() else None,
    }
    with open(out_json, "w") as fh:
        json.dump(info, fh)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
