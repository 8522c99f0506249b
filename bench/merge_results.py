"""Merge per-seed benchmark results (``bench/run.py`` runs started in parallel, one seed each) into one file.

    python bench/merge_results.py --name synthetic_mono_monocular_cuda bench/results/tmp_s0.json tmp_s1.json ...

The merged file has the same layout as a multi-seed ``bench/run.py`` result: ``per_seed`` concatenated in
seed order and ``mean`` recomputed over all seeds; the first file's metadata is kept, and the inputs'
commands are listed under ``bench_commands``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # started as `python bench/<name>.py`: make `bench` and `vhap` importable
    sys.path.insert(0, str(REPO))
from bench.run import mean_over_seeds  # noqa: E402
from vhap.utils.atomic import write_text_atomic  # noqa: E402


def merge(paths: list[Path], name: str) -> dict:
    docs = [json.loads(Path(p).read_text()) for p in paths]
    records = sorted((r for d in docs for r in d["per_seed"]), key=lambda r: r["seed"])
    out = dict(docs[0])
    out.update(
        name=name,
        seeds=[r["seed"] for r in records],
        per_seed=records,
        mean=mean_over_seeds(records),
        bench_commands=[d.get("bench_command") for d in docs],
        note="seeds run as parallel processes on one device (timings are contended; see the solo runs)",
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--out-dir", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("files", nargs="+")
    args = ap.parse_args(argv)
    doc = merge([Path(f) for f in args.files], args.name)
    out = Path(args.out_dir) / f"{args.name}.json"
    write_text_atomic(out, json.dumps(doc, indent=1, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
