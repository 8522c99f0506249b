"""Reading FLAME-format files without chumpy; HeadAssets npz round trips; landmark embeddings by content."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp
from test_model_toy import toy_assets

from vhap.errors import VhapError
from vhap.model.assets import HeadAssets
from vhap.model.io import FlameUnpickler, load_flame_masks, load_flame_pickle, load_landmark_embedding


def _fake_chumpy_modules():
    """Temporary modules `chumpy`, `chumpy.ch`, `chumpy.reordering` with FLAME's chumpy class paths."""
    chumpy = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")
    reordering = types.ModuleType("chumpy.reordering")

    class Ch:  # chumpy keeps the value in its __dict__ under 'x'
        def __init__(self, x):
            self.x = np.asarray(x)
            self._dirty_vars = set()
            self._itr = None

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"

    class Select(Ch):
        pass

    Select.__module__, Select.__qualname__ = "chumpy.reordering", "Select"
    ch.Ch, reordering.Select, chumpy.ch, chumpy.reordering = Ch, Select, ch, reordering
    return {"chumpy": chumpy, "chumpy.ch": ch, "chumpy.reordering": reordering}, Ch, Select


def _with_py2_string_item(payload: bytes, key: bytes, value: bytes) -> bytes:
    """Append `dict[key] = value` with both as Python-2 byte strings (SHORT_BINSTRING) to a protocol-2 dict pickle.

    Python 3 cannot emit Python 2 `str` opcodes, so we splice them in: such strings only load with a byte
    encoding like latin1 (FLAME's pickles contain them).
    """
    assert payload[:2] == b"\x80\x02" and payload[-1:] == b"."
    item = b"U" + bytes([len(key)]) + key + b"U" + bytes([len(value)]) + value + b"s"
    return payload[:-1] + item + b"."


def write_flame_like_pickle(path, num_verts: int = 12, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    modules, ch_cls, select_cls = _fake_chumpy_modules()
    truth = {
        "v_template": rng.normal(size=(num_verts, 3)),
        "shapedirs": rng.normal(size=(num_verts, 3, 400)).astype(np.float64),
        "posedirs": rng.normal(size=(num_verts, 3, 36)),
        "weights": rng.dirichlet(np.ones(5), size=num_verts),
        "J_regressor": rng.uniform(size=(5, num_verts)) * (rng.uniform(size=(5, num_verts)) > 0.5),
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "f": rng.integers(0, num_verts, size=(20, 3)).astype(np.uint32),
    }
    data = {
        "v_template": ch_cls(truth["v_template"]),
        "shapedirs": ch_cls(truth["shapedirs"]),
        "posedirs": select_cls(truth["posedirs"]),
        "weights": ch_cls(truth["weights"]),
        "J_regressor": sp.csc_matrix(truth["J_regressor"]),
        "J": ch_cls(np.zeros((5, 3))),
        "kintree_table": truth["kintree_table"],
        "f": truth["f"],
        "bs_style": "lbs",
    }
    sys.modules.update(modules)
    try:
        payload = pickle.dumps(data, protocol=2)
    finally:
        for name in modules:
            sys.modules.pop(name, None)
    payload = _with_py2_string_item(payload, b"bs_type", b"lrotmin\xe9")
    path.write_bytes(payload)
    return truth


def test_flame_like_pickle_needs_chumpy_with_plain_pickle(tmp_path):
    write_flame_like_pickle(tmp_path / "model.pkl")
    assert "chumpy" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        with open(tmp_path / "model.pkl", "rb") as fh:
            pickle.load(fh, encoding="latin1")


def test_flame_like_pickle_loads_without_chumpy(tmp_path):
    truth = write_flame_like_pickle(tmp_path / "model.pkl")
    with open(tmp_path / "model.pkl", "rb") as fh:
        raw = FlameUnpickler(fh).load()
    assert raw["bs_type"] == "lrotmin\xe9"  # the Python-2 string decoded as latin1
    flame = load_flame_pickle(tmp_path / "model.pkl")
    assert "chumpy" not in sys.modules
    for key in ("v_template", "shapedirs", "posedirs", "weights", "J_regressor"):
        assert isinstance(flame[key], np.ndarray), key
        assert np.array_equal(flame[key], truth[key]), key
    assert flame["parents"].tolist() == [-1, 0, 1, 1, 1]
    assert flame["f"].shape == (20, 3)


def test_masks_pickle_and_garbage_files(tmp_path):
    masks = {"face": np.arange(5), "lips": np.array([1, 2])}
    (tmp_path / "FLAME_masks.pkl").write_bytes(pickle.dumps(masks, protocol=2))
    loaded = load_flame_masks(tmp_path / "FLAME_masks.pkl")
    assert loaded["face"].tolist() == [0, 1, 2, 3, 4] and loaded["lips"].dtype == np.int64
    (tmp_path / "broken.pkl").write_bytes(b"not a pickle at all")
    with pytest.raises(VhapError, match="broken.pkl"):
        load_flame_pickle(tmp_path / "broken.pkl")
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(VhapError, match="expected a dict"):
        load_flame_pickle(tmp_path / "list.pkl")


def test_landmark_embedding_recognised_by_content(tmp_path):
    rng = np.random.default_rng(0)
    ibug = {
        "static_lmk_faces_idx": np.arange(53),
        "full_lmk_faces_idx": rng.integers(0, 100, size=(1, 70)),
        "full_lmk_bary_coords": rng.dirichlet(np.ones(3), size=(1, 70)),
    }
    # misleading names on purpose: the format comes from the content
    np.save(tmp_path / "mediapipe_landmark_embedding.npy", np.array(ibug, dtype=object), allow_pickle=True)
    np.savez(
        tmp_path / "landmark_embedding_with_eyes.npz",
        landmark_indices=np.arange(105) * 4,
        lmk_face_idx=rng.integers(0, 100, size=105),
        lmk_b_coords=rng.dirichlet(np.ones(3), size=105),
    )
    kind, emb = load_landmark_embedding(tmp_path / "mediapipe_landmark_embedding.npy")
    assert kind == "ibug70" and emb.num_landmarks == 70 and emb.landmark_ids is None
    assert np.array_equal(emb.face_idx, ibug["full_lmk_faces_idx"][0])
    kind, emb = load_landmark_embedding(tmp_path / "landmark_embedding_with_eyes.npz")
    assert kind == "mediapipe" and emb.num_landmarks == 105 and emb.landmark_ids[3] == 12
    np.savez(tmp_path / "other.npz", foo=np.zeros(3))
    with pytest.raises(VhapError, match="unrecognised"):
        load_landmark_embedding(tmp_path / "other.npz")


def test_real_embedding_file_with_torch_tensors(flame_topology_dir):
    kind, emb = load_landmark_embedding(flame_topology_dir / "landmark_embedding_with_eyes.npy")
    assert kind == "ibug70" and emb.face_idx.shape == (70,) and emb.bary_coords.shape == (70, 3)
    assert np.allclose(emb.bary_coords.sum(1), 1.0, atol=1e-5)


def test_assets_npz_compact_round_trip(tmp_path):
    assets = toy_assets()
    assets.save_npz(tmp_path / "a.npz")  # compact: float16 bases, uint8 texture
    back = HeadAssets.load_npz(tmp_path / "a.npz")
    assert back.shapedirs.dtype == np.float32 and back.base_texture.dtype == np.float32
    assert np.allclose(back.shapedirs, assets.shapedirs, rtol=1e-3, atol=1e-6)
    assert np.allclose(back.base_texture, assets.base_texture, atol=1 / 255)
    assert np.array_equal(back.regions["lip_outside_ring_upper"], assets.regions["lip_outside_ring_upper"])
    with np.load(tmp_path / "a.npz") as raw:
        assert int(raw["format_version"]) == 1 and "region/jaw" in raw.files and "lmk_ibug/face_idx" in raw.files


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.replace(faces=a.faces + 100), "faces index vertices"),
        (lambda a: a.replace(posedirs=a.posedirs[:, :, :30]), "posedirs has shape"),
        (lambda a: a.replace(parents=np.array([0, 0, 1, 1, 1])), "parents"),
        (lambda a: a.replace(regions={"x": np.array([99])}), "region 'x'"),
        (lambda a: a.replace(lbs_weights=a.lbs_weights * 2), "sum to 1"),
    ],
)
def test_validate_names_the_problem(change, message):
    with pytest.raises(VhapError, match=message):
        change(toy_assets()).validate()


def test_load_npz_errors(tmp_path):
    with pytest.raises(VhapError, match="not found"):
        HeadAssets.load_npz(tmp_path / "missing.npz")
    np.savez(tmp_path / "old.npz", format_version=np.array(99))
    with pytest.raises(VhapError, match="format_version"):
        HeadAssets.load_npz(tmp_path / "old.npz")


def test_full_size_chumpy_flame_directory_loads(flame_topology_dir, tmp_path):
    """The stand-in re-pickled exactly like the real FLAME 2023 file (chumpy arrays, sparse J_regressor, latin1)
    loads through load_head_assets(directory) and matches the plain stand-in."""
    from vhap.model import load_head_assets

    standin = load_flame_pickle(flame_topology_dir / "standin" / "flame2023.pkl")
    modules, ch_cls, _ = _fake_chumpy_modules()
    data = {
        "v_template": ch_cls(standin["v_template"]),
        "shapedirs": ch_cls(standin["shapedirs"]),
        "posedirs": ch_cls(standin["posedirs"]),
        "weights": ch_cls(standin["weights"]),
        "J_regressor": sp.csc_matrix(standin["J_regressor"]),
        "kintree_table": standin["kintree_table"].astype(np.int64),
        "f": standin["f"],
    }
    sys.modules.update(modules)
    try:
        payload = pickle.dumps(data, protocol=2)
    finally:
        for name in modules:
            sys.modules.pop(name, None)
    (tmp_path / "flame2023.pkl").write_bytes(_with_py2_string_item(payload, b"bs_style", b"lbs"))
    for src in ("standin/FLAME_masks.pkl", "head_template_mesh.obj", "landmark_embedding_with_eyes.npy"):
        (tmp_path / src.split("/")[-1]).symlink_to(flame_topology_dir / src)
    assets = load_head_assets(tmp_path)
    assert "chumpy" not in sys.modules
    assert assets.num_verts == 5023 and assets.shapedirs.shape == (5023, 3, 300) and assets.exprdirs.shape[2] == 100
    assert np.allclose(assets.J_regressor, standin["J_regressor"]) and assets.parents.tolist() == [-1, 0, 1, 1, 1]
    assert np.allclose(assets.exprdirs, standin["shapedirs"][:, :, 300:])
    assert assets.base_texture.shape == (64, 64, 3)  # no painted texture in the folder: uniform skin fallback
