"""``vhap combine``: one union dataset from several exported sequences of one subject (VHAP_SPEC §6.6).

The union folder holds only JSON/text files and a copy of ``canonical_flame_param.npz``; frames point into
the source exports through relative paths (``../<source>/images/...`` when the union is their sibling).

- Test sequences are chosen by :func:`vhap.export.splits.select_test_sequences` (seeded with the subject).
- Sources are concatenated train sources first (in the given order), then test sources; each source's
  timestep indices are offset by the number of timesteps before it, so ``timestep_index`` is contiguous
  from 0 across train+test (GaussianAvatars needs that). Frames keep ``timestep_id`` and gain ``sequence``;
  ``timestep_index_original`` is dropped (it indexed the source's own tracking).
- ``transforms_train.json`` / ``transforms_val.json``: all timesteps of the train sources, split by camera
  (val = camera 8 with several cameras); ``transforms_test.json``: all frames of the test sources;
  ``transforms.json``: every frame (VHAP wrote none).
- Each sequence keeps its own relocation, identity shape and static offset (tracked independently);
  GaussianAvatars uses those of timestep 0, i.e. of the first train source, as in VHAP.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from vhap.config import save_config
from vhap.errors import VhapError
from vhap.export.config import CombineConfig
from vhap.export.paths import check_target_apart
from vhap.export.splits import select_test_sequences, split_cameras
from vhap.utils.atomic import atomic_dir

PATH_KEYS = ("file_path", "fg_mask_path", "flame_param_path", "exp_path", "mesh_path")
#: top-level keys that describe one sequence only (moved into the per-sequence table of the union)
PER_SEQUENCE_KEYS = ("relocation_translation", "source_run", "source_params", "timestep_indices", "camera_indices")


@dataclass
class CombineSummary:
    tgt: Path
    train_sequences: list[str]
    test_sequences: list[str]
    num_timesteps: int
    split_sizes: dict[str, int]


def subject_of(name: str) -> str:
    """The subject token of an export folder name (text before the first ``_``)."""
    return name.split("_", 1)[0]


def _load_source(src: Path) -> dict:
    path = src / "transforms.json"
    if not path.is_file():
        raise VhapError("not an export folder (no transforms.json)", path=src, fix="export it with `vhap export`")
    if not (src / "canonical_flame_param.npz").is_file():
        raise VhapError("export lacks canonical_flame_param.npz", path=src, fix="re-run `vhap export`")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise VhapError(f"invalid JSON ({e})", path=path, fix="re-run `vhap export`") from e
    if not doc.get("frames"):
        raise VhapError("transforms.json has no frames", path=path, fix="re-run `vhap export`")
    return doc


def _head_name(doc: dict) -> str | None:
    info = doc.get("head_model")
    return info.get("name") if isinstance(info, dict) else None


def combine_datasets(cfg: CombineConfig) -> CombineSummary:
    """Write the union dataset ``cfg.tgt`` of the exports ``cfg.src`` (module docstring); atomic."""
    sources = [Path(s) for s in cfg.src]
    tgt = Path(cfg.tgt)
    if str(cfg.tgt) in ("", "."):
        raise VhapError("--tgt (union folder) is required")
    if len(sources) < 2:
        raise VhapError(f"a union needs at least two sources, got {len(sources)}", fix="pass --src A B ...")
    names = [s.resolve().name for s in sources]
    if len(set(names)) != len(names):
        raise VhapError(f"sources repeat a folder name: {names}", fix="pass each export once")
    check_target_apart(tgt, sources, what="source export")
    if tgt.exists() and not cfg.overwrite:
        raise VhapError("the union folder already exists", path=tgt, fix="pass --overwrite or choose another --tgt")
    subjects = {subject_of(n) for n in names}
    if cfg.check_subject and len(subjects) > 1:
        raise VhapError(
            f"sources belong to different subjects {sorted(subjects)} (first '_' token of the folder names)",
            fix="combine sequences of one subject, or pass --no-check-subject",
        )
    subject = subject_of(names[0])
    docs = [_load_source(s) for s in sources]
    heads = {_head_name(d) for d in docs}
    if len(heads) > 1:
        raise VhapError(f"sources were exported with different head models {sorted(map(str, heads))}")

    test_idx = set(select_test_sequences(names, cfg.division_mode, seed=subject, group_size=cfg.group_size))
    order = [i for i in range(len(sources)) if i not in test_idx] + sorted(test_idx)

    frames_train: list[dict] = []
    frames_test: list[dict] = []
    table = []
    offset = 0
    for i in order:
        src, doc = sources[i], docs[i]
        rel = Path(os.path.relpath(src.resolve(), tgt.resolve())).as_posix()
        n_ts = max(int(f["timestep_index"]) for f in doc["frames"]) + 1
        out = []
        for f in doc["frames"]:
            g = {k: v for k, v in f.items() if k != "timestep_index_original"}
            g["timestep_index"] = int(f["timestep_index"]) + offset
            g["sequence"] = names[i]
            for key in PATH_KEYS:
                if isinstance(g.get(key), str):
                    g[key] = f"{rel}/{g[key]}"
            out.append(g)
        (frames_test if i in test_idx else frames_train).extend(out)
        table.append(
            {
                "name": names[i],
                "path": rel,
                "split": "test" if i in test_idx else "trainval",
                "timestep_offset": offset,
                "num_timesteps": n_ts,
                **{k: doc[k] for k in ("relocation_translation",) if k in doc},
            }
        )
        offset += n_ts

    first_train = order[0]
    top = {k: v for k, v in docs[first_train].items() if k != "frames" and k not in PER_SEQUENCE_KEYS}
    top["subject"] = subject
    top["sequences"] = table
    train, val = split_cameras(frames_train, cfg.val_camera)

    def doc_of(frames: list[dict]) -> dict:
        d = dict(top)
        d["timestep_indices"] = sorted({f["timestep_index"] for f in frames})
        d["camera_indices"] = sorted({f["camera_index"] for f in frames if "camera_index" in f})
        d["frames"] = frames
        return d

    train_names = [names[i] for i in order if i not in test_idx]
    test_names = [names[i] for i in sorted(test_idx)]
    with atomic_dir(tgt) as out:
        shutil.copyfile(sources[first_train] / "canonical_flame_param.npz", out / "canonical_flame_param.npz")
        for name, frames in (
            ("transforms.json", frames_train + frames_test),
            ("transforms_train.json", train),
            ("transforms_val.json", val),
            ("transforms_test.json", frames_test),
        ):
            (out / name).write_text(json.dumps(doc_of(frames), indent=2))
        (out / "sequences_trainval.txt").write_text("".join(f"{n}\n" for n in train_names))
        (out / "sequences_test.txt").write_text("".join(f"{n}\n" for n in test_names))
        save_config(cfg, out / "combine_config.yml")
    return CombineSummary(
        tgt=tgt,
        train_sequences=train_names,
        test_sequences=test_names,
        num_timesteps=offset,
        split_sizes={"train": len(train), "val": len(val), "test": len(frames_test)},
    )
