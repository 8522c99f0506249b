"""``vhap validate-export``: check an export (or union) against what GaussianAvatars reads (VHAP_SPEC §6.7).

Every problem becomes an :class:`Issue` with a stable ``check`` code; ``error`` issues make the dataset
invalid (exit code 1), ``warning`` issues are things GA tolerates but a user should know about.

Checks (code → what):
  required_file      canonical_flame_param.npz and transforms_{train,val,test}.json exist (transforms.json: warning)
  json               the JSON files parse and hold a ``frames`` list
  frame_keys         per frame: file_path (str), transform_matrix (4x4 numbers), camera_angle_x (frame or top
                     level), timestep_index (int >= 0), flame_param_path (str), w/h (positive ints, both or none)
  camera_index       a frame with camera_id also has an int camera_index
  c2w_rigid          transform_matrix is finite, last row 0 0 0 1, rotation orthonormal with det +1
  fov                camera_angle_x == 2 atan(w / (2 fl_x)) (and _y with h, fl_y; warning)
  principal_point    cx, cy away from the image centre (warning: GA assumes a centred principal point)
  timesteps          timestep_index over train+test is contiguous from 0
  split_disjoint     train and test (and val and test) share no timestep
  file_exists        every referenced file exists (paths relative to the dataset, ``../`` allowed)
  image              images readable, with the declared w x h
  flame_param        per-timestep npz keys and shapes (leading singleton dims, shape (300,), expr (1,100)); one
                     file per timestep
  static_offset      (1, V, 3) with V = the recorded head model's vertex count (V0 + 120 with teeth)
  head_model         recorded head-model facts are consistent (and GA needs FLAME 2023: warning otherwise)
  gaussian_avatars   the export is for GaussianAvatars (default): its vertex count must be FLAME's 5143 (GA
                     crops static_offset to 5143 rows); a val/test split of 1-9 frames (GA evaluates every
                     len//10-th frame: none)
  head_in_view       the tracked head (the FLAME translation of its timestep) lies in front of each camera,
                     projects into the image and onto the foreground mask (catches a wrong axis convention)
  camera_distance    camera centres within MAX_CAMERA_DISTANCE_M of the head
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vhap.export.flame import FLAME_PARAM_SHAPES, NUM_TEETH_VERTS

SPLITS = ("train", "val", "test")
FLAME_NUM_VERTS = 5023
PATH_KEYS = ("file_path", "fg_mask_path", "flame_param_path", "exp_path", "mesh_path")
MAX_ISSUES_PER_CHECK = 20
RIGID_TOL = 1e-4
FOV_TOL = 1e-5
#: FLAME 2023 + 120 teeth vertices: GaussianAvatars reads this many static_offset rows
GA_NUM_VERTS = FLAME_NUM_VERTS + NUM_TEETH_VERTS
#: a camera further from the head than this is a unit or convention mistake (head rigs: ~1 m, phones: < 3 m)
MAX_CAMERA_DISTANCE_M = 20.0
#: projected head points may lie this fraction of the image size outside it (a face at the border)
IN_VIEW_MARGIN = 0.1
#: frames whose foreground mask is read for the head-on-mask check (evenly spread)
MAX_MASK_CHECKS = 64


@dataclass
class Issue:
    severity: str  # "error" | "warning"
    check: str
    where: str
    message: str


@dataclass
class ValidationReport:
    root: Path
    issues: list[Issue] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors and not any(k.startswith("error:") for k in self.suppressed)

    def add(self, severity: str, check: str, where: str, message: str) -> None:
        n = sum(1 for i in self.issues if i.check == check and i.severity == severity)
        if n >= MAX_ISSUES_PER_CHECK:
            key = f"{severity}:{check}"
            self.suppressed[key] = self.suppressed.get(key, 0) + 1
            return
        self.issues.append(Issue(severity, check, where, message))

    def error(self, check: str, where: str, message: str) -> None:
        self.add("error", check, where, message)

    def warn(self, check: str, where: str, message: str) -> None:
        self.add("warning", check, where, message)

    def has(self, check: str, text: str = "") -> bool:
        """Whether an issue of ``check`` whose message contains ``text`` was reported (for tests)."""
        return any(i.check == check and text in i.message for i in self.issues)

    def to_dict(self) -> dict:
        return {
            "dataset": str(self.root),
            "ok": self.ok,
            "num_errors": len(self.errors) + sum(v for k, v in self.suppressed.items() if k.startswith("error:")),
            "num_warnings": len(self.warnings) + sum(v for k, v in self.suppressed.items() if k.startswith("warning:")),
            "issues": [asdict(i) for i in self.issues],
            "suppressed": self.suppressed,
            "stats": self.stats,
        }


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_matrix(rep: ValidationReport, where: str, m) -> None:
    try:
        arr = np.asarray(m, dtype=np.float64)
    except (TypeError, ValueError):
        rep.error("frame_keys", where, "transform_matrix is not a 4x4 list of numbers")
        return
    if arr.shape != (4, 4):
        rep.error("frame_keys", where, f"transform_matrix has shape {arr.shape}, expected (4, 4)")
        return
    if not np.all(np.isfinite(arr)):
        rep.error("c2w_rigid", where, "transform_matrix has NaN/Inf entries")
        return
    if np.abs(arr[3] - np.array([0, 0, 0, 1.0])).max() > 1e-6:
        rep.error("c2w_rigid", where, f"transform_matrix last row is {arr[3].tolist()}, expected [0, 0, 0, 1]")
    rot = arr[:3, :3]
    ortho = np.abs(rot.T @ rot - np.eye(3)).max()
    if ortho > RIGID_TOL:
        rep.error("c2w_rigid", where, f"transform_matrix is not rigid: |R^T R - I| = {ortho:.3g}")
    elif np.linalg.det(rot) < 0:
        rep.error("c2w_rigid", where, "transform_matrix rotation has det -1 (a reflection, not a rotation)")


def _check_frame(rep: ValidationReport, where: str, frame, top: dict) -> bool:
    """Keys and types of one frame; returns False when the frame is unusable for later checks."""
    if not isinstance(frame, dict):
        rep.error("frame_keys", where, "frame is not a JSON object")
        return False
    usable = True
    if not isinstance(frame.get("file_path"), str):
        rep.error("frame_keys", where, "file_path missing or not a string")
        usable = False
    if "transform_matrix" not in frame:
        rep.error("frame_keys", where, "transform_matrix missing")
    else:
        _check_matrix(rep, where, frame["transform_matrix"])
    ti = frame.get("timestep_index")
    if not _is_int(ti) or ti < 0:
        rep.error("frame_keys", where, f"timestep_index missing or not an int >= 0 (got {ti!r})")
        usable = False
    if not isinstance(frame.get("flame_param_path"), str):
        rep.error("frame_keys", where, "flame_param_path missing or not a string")
        usable = False
    if "camera_id" in frame and not _is_int(frame.get("camera_index")):
        rep.error("camera_index", where, "frame has camera_id but no integer camera_index")
    has_w, has_h = "w" in frame, "h" in frame
    if has_w != has_h:
        rep.error("frame_keys", where, "frame has only one of w / h")
    for key in ("w", "h"):
        if key in frame and (not _is_int(frame[key]) or frame[key] <= 0):
            rep.error("frame_keys", where, f"{key} is not a positive int (got {frame[key]!r})")
    angle = frame.get("camera_angle_x", top.get("camera_angle_x"))
    if angle is None:
        rep.error("frame_keys", where, "camera_angle_x missing (neither per frame nor top level)")
    elif not _is_num(angle) or not 0 < angle < math.pi:
        rep.error("frame_keys", where, f"camera_angle_x must be a number in (0, pi), got {angle!r}")
    else:
        w, fx = frame.get("w", top.get("w")), frame.get("fl_x", top.get("fl_x"))
        if _is_num(w) and _is_num(fx) and fx > 0:
            expect = 2.0 * math.atan(w / (2.0 * fx))
            if abs(expect - angle) > FOV_TOL:
                rep.error(
                    "fov",
                    where,
                    f"camera_angle_x = {angle:.6f} inconsistent with w = {w} and fl_x = {fx:.3f} "
                    f"(expected {expect:.6f})",
                )
        h, fy, ay = frame.get("h", top.get("h")), frame.get("fl_y", top.get("fl_y")), frame.get("camera_angle_y")
        if _is_num(h) and _is_num(fy) and fy > 0 and _is_num(ay):
            expect = 2.0 * math.atan(h / (2.0 * fy))
            if abs(expect - ay) > FOV_TOL:
                rep.warn("fov", where, f"camera_angle_y = {ay:.6f} inconsistent with h and fl_y ({expect:.6f})")
        for key, size in (("cx", frame.get("w")), ("cy", frame.get("h"))):
            c = frame.get(key)
            if _is_num(c) and _is_num(size) and abs(c - size / 2.0) > 0.01 * size:
                rep.warn(
                    "principal_point",
                    where,
                    f"{key} = {c:.2f} is off the image centre {size / 2.0:.1f}; GaussianAvatars assumes a centred "
                    "principal point",
                )
    return usable


def _load_docs(rep: ValidationReport, root: Path) -> dict[str, dict]:
    docs = {}
    for name in (*[f"transforms_{s}" for s in SPLITS], "transforms"):
        path = root / f"{name}.json"
        if not path.is_file():
            if name == "transforms":
                rep.warn("required_file", path.name, "transforms.json missing (GaussianAvatars does not need it)")
            else:
                rep.error("required_file", path.name, "missing (GaussianAvatars reads all three split files)")
            continue
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            rep.error("json", path.name, f"invalid JSON: {e}")
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("frames"), list):
            rep.error("json", path.name, "top level must be an object with a 'frames' list")
            continue
        docs[name] = doc
    return docs


def _expected_verts(rep: ValidationReport, docs: dict, head_model_override: str | None) -> tuple[int | None, str]:
    """The static-offset vertex count the export promises, checked against the head model when loadable."""
    info = None
    for doc in docs.values():
        if isinstance(doc.get("head_model"), dict):
            info = doc["head_model"]
            break
    name = head_model_override or (info or {}).get("name")
    base = None
    if name:
        try:
            from vhap.model import load_head_assets

            base = load_head_assets(name).num_verts
        except Exception:  # assets absent on this machine: rely on the recorded numbers
            base = None
    if info is None and name is None:
        # a VHAP export: FLAME with teeth
        return FLAME_NUM_VERTS + NUM_TEETH_VERTS, "flame (assumed)"
    recorded_v = info.get("num_verts") if info else None
    recorded_base = info.get("num_verts_base") if info else None
    teeth = bool(info.get("teeth", True)) if info else True
    if base is not None and recorded_base is not None and base != recorded_base:
        rep.error(
            "head_model",
            "head_model",
            f"recorded num_verts_base {recorded_base} but head model '{name}' has {base} vertices",
        )
    base = base if base is not None else recorded_base
    expected = None
    if base is not None:
        expected = base + (NUM_TEETH_VERTS if teeth else 0)
        if recorded_v is not None and recorded_v != expected:
            rep.error(
                "head_model",
                "head_model",
                f"recorded num_verts {recorded_v} != {base} + {NUM_TEETH_VERTS if teeth else 0} (teeth={teeth})",
            )
    elif _is_int(recorded_v):
        expected = recorded_v
    label = str((info or {}).get("model_name") or name or "")
    if label and not label.lower().startswith("flame"):
        rep.warn(
            "head_model",
            "head_model",
            f"head model '{label}' is not FLAME: GaussianAvatars poses FLAME 2023 and needs the same model",
        )
    elif label and label.lower() not in ("flame2023", "flame2023_open"):
        rep.warn(
            "head_model",
            "head_model",
            f"head model '{label}': GaussianAvatars uses FLAME 2023; both must use the same model file",
        )
    return expected, str(name)


def _check_npz(path: Path, expected_verts: int | None, canonical: bool) -> list[tuple[str, str, str]]:
    """Issues (severity, check, message) of one flame_param npz."""
    out = []
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as e:
        return [("error", "flame_param", f"cannot read npz ({e})")]
    for key, shape in FLAME_PARAM_SHAPES.items():
        if key not in arrays:
            out.append(("error", "flame_param", f"key '{key}' missing"))
        elif arrays[key].shape != shape:
            out.append(("error", "flame_param", f"'{key}' has shape {arrays[key].shape}, expected {shape}"))
        elif not np.all(np.isfinite(arrays[key])):
            out.append(("error", "flame_param", f"'{key}' has NaN/Inf"))
    for key in ("static_offset", "dynamic_offset"):
        if key not in arrays:
            continue
        arr = arrays[key]
        if arr.ndim != 3 or arr.shape[0] != 1 or arr.shape[2] != 3:
            out.append(("error", "static_offset", f"'{key}' has shape {arr.shape}, expected (1, V, 3)"))
        elif not np.all(np.isfinite(arr)):
            out.append(("error", "static_offset", f"'{key}' has NaN/Inf"))
        elif expected_verts is not None and arr.shape[1] != expected_verts:
            out.append(
                (
                    "error",
                    "static_offset",
                    f"'{key}' has {arr.shape[1]} vertices, expected {expected_verts} (head model incl. teeth)",
                )
            )
    if "static_offset" not in arrays and not canonical:
        out.append(
            (
                "warning",
                "static_offset",
                "no static_offset: GaussianAvatars needs --disable_flame_static_offset for this dataset",
            )
        )
    return out


def _check_image(path: Path, size: tuple[int, int] | None, decode: bool) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as img:
            w, h = img.size
            if decode:
                img.load()
    except Exception as e:
        return f"unreadable image ({e})"
    if size is not None and (w, h) != size:
        return f"image is {w}x{h} but the frame declares w x h = {size[0]}x{size[1]}"
    return None


def _camera(frame: dict, top: dict) -> tuple[np.ndarray, np.ndarray, float, float, float, float, int, int] | None:
    """(R c2w OpenCV, centre, fx, fy, cx, cy, w, h) of a frame, or None when its numbers are unusable."""
    try:
        m = np.asarray(frame["transform_matrix"], dtype=np.float64).reshape(4, 4)
    except (KeyError, TypeError, ValueError):
        return None
    w, h = frame.get("w", top.get("w")), frame.get("h", top.get("h"))
    angle = frame.get("camera_angle_x", top.get("camera_angle_x"))
    if not (_is_int(w) and _is_int(h) and _is_num(angle) and 0 < angle < math.pi) or not np.all(np.isfinite(m)):
        return None
    fx = frame.get("fl_x", top.get("fl_x"))
    fx = fx if _is_num(fx) and fx > 0 else w / (2.0 * math.tan(angle / 2.0))
    fy = frame.get("fl_y", top.get("fl_y"))
    fy = fy if _is_num(fy) and fy > 0 else fx
    cx, cy = frame.get("cx", top.get("cx")), frame.get("cy", top.get("cy"))
    cx = cx if _is_num(cx) else w / 2.0
    cy = cy if _is_num(cy) else h / 2.0
    c2w = m @ np.diag([1.0, -1.0, -1.0, 1.0])  # OpenGL (y up, looking down -z) -> OpenCV (y down, +z forward)
    return c2w[:3, :3], c2w[:3, 3], fx, fy, cx, cy, w, h


def _check_head_in_view(rep: ValidationReport, root: Path, frames: list[tuple[str, dict, dict]], heads: dict) -> None:
    """The head point of each frame's timestep in front of its camera, in the image, on the foreground mask."""
    from PIL import Image

    behind = outside = far = 0
    checked: list[tuple[str, dict, float, float]] = []
    for where, f, top in frames:
        head = heads.get(f.get("flame_param_path"))
        cam = _camera(f, top)
        if head is None or cam is None:
            continue
        R, centre, fx, fy, cx, cy, w, h = cam
        x = R.T @ (head - centre)
        dist = float(np.linalg.norm(head - centre))
        if dist > MAX_CAMERA_DISTANCE_M:
            far += 1
            rep.error(
                "camera_distance",
                where,
                f"camera is {dist:.1f} m from the head (more than {MAX_CAMERA_DISTANCE_M:g} m: a unit or convention "
                "mistake)",
            )
            continue
        if x[2] <= 0:
            behind += 1
            rep.error(
                "head_in_view",
                where,
                "the tracked head is behind the camera (transform_matrix must be OpenGL camera-to-world: x right, "
                "y up, looking down -z)",
            )
            continue
        u, v = fx * x[0] / x[2] + cx, fy * x[1] / x[2] + cy
        mu, mv = IN_VIEW_MARGIN * w, IN_VIEW_MARGIN * h
        if not (-mu <= u <= w + mu and -mv <= v <= h + mv):
            outside += 1
            rep.error(
                "head_in_view", where, f"the tracked head projects to ({u:.0f}, {v:.0f}), outside the {w}x{h} image"
            )
            continue
        if isinstance(f.get("fg_mask_path"), str):
            checked.append((where, f, u, v))
    rep.stats["head_in_view"] = {"frames": len(frames), "behind": behind, "outside": outside, "far": far}
    # the head point on the foreground mask: a few pixels around it, on an even sample of the frames
    step = max(1, len(checked) // MAX_MASK_CHECKS)
    off_mask = 0
    for where, f, u, v in checked[::step]:
        path = root / f["fg_mask_path"]
        try:
            with Image.open(path) as img:
                mask = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
        except Exception:  # unreadable masks are reported by file_exists / image
            continue
        H, W = mask.shape
        r = max(1, round(0.02 * max(H, W)))
        ui, vi = int(np.clip(round(u), 0, W - 1)), int(np.clip(round(v), 0, H - 1))
        patch = mask[max(0, vi - r) : vi + r + 1, max(0, ui - r) : ui + r + 1]
        if float(patch.max()) < 0.5:
            off_mask += 1
            rep.error(
                "head_in_view",
                where,
                f"the tracked head projects to ({u:.0f}, {v:.0f}), where the foreground mask is empty: the camera or "
                "the head is misplaced",
            )
    rep.stats["head_in_view"]["off_mask"] = off_mask


def validate_export(
    root: str | Path,
    decode_images: bool = True,
    head_model: str | None = None,
    workers: int = 4,
    for_gaussian_avatars: bool = True,
) -> ValidationReport:
    """Validate the dataset folder ``root``; never raises for dataset problems (they become issues).

    ``decode_images``: fully decode every image (a truncated file has an intact header); ``for_gaussian_avatars``:
    what GaussianAvatars silently mishandles is an error (vertex counts other than FLAME's) or a warning."""
    root = Path(root)
    rep = ValidationReport(root=root)
    if not root.is_dir():
        rep.error("required_file", str(root), "dataset folder not found")
        return rep
    if not (root / "canonical_flame_param.npz").is_file():
        rep.error(
            "required_file",
            "canonical_flame_param.npz",
            "missing (GaussianAvatars uses its existence to detect a dynamic FLAME dataset)",
        )
    docs = _load_docs(rep, root)
    expected_verts, model_name = _expected_verts(rep, docs, head_model)
    rep.stats["head_model"] = model_name
    rep.stats["expected_num_verts"] = expected_verts
    if for_gaussian_avatars and expected_verts is not None and expected_verts != GA_NUM_VERTS:
        rep.error(
            "gaussian_avatars",
            "head_model",
            f"the export has {expected_verts} vertices; GaussianAvatars poses FLAME ({GA_NUM_VERTS} with teeth) and "
            f"crops static_offset to {GA_NUM_VERTS} rows. Pass --no-for-gaussian-avatars if it is for another reader",
        )

    # ---- per-frame keys
    usable: dict[str, list[dict]] = {}
    for name, doc in docs.items():
        usable[name] = []
        for i, frame in enumerate(doc["frames"]):
            if _check_frame(rep, f"{name}.json frame {i}", frame, doc):
                usable[name].append(frame)
    rep.stats["frames"] = {name: len(doc["frames"]) for name, doc in docs.items()}
    for split in ("val", "test"):
        n = len(docs.get(f"transforms_{split}", {}).get("frames", []))
        if for_gaussian_avatars and 1 <= n <= 9:
            rep.warn(
                "gaussian_avatars",
                f"transforms_{split}.json",
                f"{n} frames: GaussianAvatars evaluates every (len // 10)-th {split} frame, i.e. none (or fails)",
            )

    # ---- timesteps and splits
    ts = {s: {f["timestep_index"] for f in usable.get(f"transforms_{s}", [])} for s in SPLITS}
    all_ts = ts["train"] | ts["test"]
    if all_ts:
        n = max(all_ts) + 1
        missing = sorted(set(range(n)) - all_ts)
        if missing:
            rep.error(
                "timesteps",
                "transforms_train/test.json",
                f"timestep_index not contiguous from 0: {len(missing)} of 0..{n - 1} missing (e.g. {missing[:5]})",
            )
        rep.stats["num_timesteps"] = n
    elif "transforms_train" in docs:
        rep.error("timesteps", "transforms_train/test.json", "no frames in train or test")
    for a, b in (("train", "test"), ("val", "test")):
        shared = sorted(ts[a] & ts[b])
        if shared:
            rep.error(
                "split_disjoint",
                f"transforms_{a}/{b}.json",
                f"{a} and test share {len(shared)} timesteps (e.g. {shared[:5]})",
            )
    if ts["val"] and ts["train"] and not ts["val"] <= ts["train"]:
        rep.warn("split_disjoint", "transforms_val.json", "val has timesteps that are not in train")

    # ---- one flame_param file per timestep (GA loads one per timestep_index)
    by_ts: dict[int, set[str]] = defaultdict(set)
    for s in ("train", "val", "test"):
        for f in usable.get(f"transforms_{s}", []):
            by_ts[f["timestep_index"]].add(f["flame_param_path"])
    for t, paths in sorted(by_ts.items()):
        if len(paths) > 1:
            rep.error("flame_param", f"timestep {t}", f"frames of one timestep use different files {sorted(paths)}")

    # ---- referenced files
    referenced: dict[Path, str] = {}
    images: dict[Path, tuple[tuple[int, int] | None, str]] = {}
    for name, frames in usable.items():
        for i, f in enumerate(frames):
            for key in PATH_KEYS:
                if isinstance(f.get(key), str):
                    rel = f[key]
                    if key == "file_path" and not Path(rel).suffix:
                        rel += ".png"  # what GA does
                    path = root / rel
                    referenced.setdefault(path, f"{name}.json frame {i} {key}")
                    if key == "file_path":
                        size = (f["w"], f["h"]) if _is_int(f.get("w")) and _is_int(f.get("h")) else None
                        images.setdefault(path, (size, f"{name}.json frame {i}"))
    existing = set()
    for path, where in referenced.items():
        if path.is_file():
            existing.add(path)
        else:
            rep.error("file_exists", where, f"missing file {path}")
    rep.stats["referenced_files"] = len(referenced)

    # ---- images
    img_items = [(p, s, w) for p, (s, w) in images.items() if p in existing]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(lambda it: _check_image(it[0], it[1], decode_images), img_items))
    for (path, _, where), msg in zip(img_items, results, strict=True):
        if msg:
            rep.error("image", where, f"{path.name}: {msg}")
    rep.stats["images_checked"] = len(img_items)

    # ---- flame parameter files
    npz_paths = sorted({root / p for paths in by_ts.values() for p in paths} & existing)
    shapes = set()
    heads: dict[str, np.ndarray] = {}  # flame_param_path -> the head's world position (FLAME translation)
    rel_of = {root / p: p for paths in by_ts.values() for p in paths}
    for path in npz_paths:
        for severity, check, msg in _check_npz(path, expected_verts, canonical=False):
            rep.add(severity, check, str(path.relative_to(root)) if path.is_relative_to(root) else str(path), msg)
        try:
            with np.load(path) as d:
                if "shape" in d.files:
                    shapes.add(d["shape"].tobytes())
                if "translation" in d.files and d["translation"].size == 3:
                    t = np.asarray(d["translation"], dtype=np.float64).reshape(3)
                    if np.all(np.isfinite(t)):
                        heads[rel_of[path]] = t
        except Exception:
            pass
    frames_for_view = [
        (f"{name}.json frame {i}", f, docs[name])
        for name, frames in usable.items()
        if name != "transforms"  # the union of the split files: checked there
        for i, f in enumerate(frames)
    ]
    _check_head_in_view(rep, root, frames_for_view, heads)
    if len(shapes) > 1:
        rep.warn(
            "flame_param",
            "flame_param/*.npz",
            f"{len(shapes)} different identity shapes (a union of separately tracked sequences): GaussianAvatars "
            "uses the shape and static_offset of timestep 0 for all",
        )
    rep.stats["flame_param_files"] = len(npz_paths)
    canonical = root / "canonical_flame_param.npz"
    if canonical.is_file():
        for severity, check, msg in _check_npz(canonical, expected_verts, canonical=True):
            rep.add(severity, check, canonical.name, msg)
    return rep


def format_report(rep: ValidationReport) -> str:
    """A plain-text table of the report (the CLI prints it with rich when available)."""
    lines = [f"dataset: {rep.root}"]
    for k, v in rep.stats.items():
        lines.append(f"  {k}: {v}")
    if rep.issues:
        w_check = max(len(i.check) for i in rep.issues)
        w_where = min(48, max(len(i.where) for i in rep.issues))
        for i in rep.issues:
            lines.append(
                f"{i.severity.upper():8s} {i.check.ljust(w_check)}  {i.where[:48].ljust(w_where)}  {i.message}"
            )
    for key, n in rep.suppressed.items():
        lines.append(f"... {n} more {key} issues not shown")
    d = rep.to_dict()
    verdict = "VALID" if rep.ok else "INVALID"
    lines.append(f"{verdict}: {d['num_errors']} error(s), {d['num_warnings']} warning(s)")
    return "\n".join(lines)


def print_report(rep: ValidationReport) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(format_report(rep))
        return
    console = Console()
    console.print(f"[bold]dataset[/bold] {rep.root}")
    for k, v in rep.stats.items():
        console.print(f"  {k}: {v}")
    if rep.issues:
        table = Table(show_lines=False)
        for col in ("severity", "check", "where", "message"):
            table.add_column(col, overflow="fold")
        for i in rep.issues:
            style = "red" if i.severity == "error" else "yellow"
            table.add_row(f"[{style}]{i.severity}[/{style}]", i.check, i.where, i.message)
        console.print(table)
    for key, n in rep.suppressed.items():
        console.print(f"... {n} more {key} issues not shown")
    d = rep.to_dict()
    verdict = "[green]VALID[/green]" if rep.ok else "[red]INVALID[/red]"
    console.print(f"{verdict}: {d['num_errors']} error(s), {d['num_warnings']} warning(s)")
