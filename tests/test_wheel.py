"""The package works from a wheel, not only from the source tree: presets are package data."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_install_runs_track_preset_help_outside_the_repo(tmp_path):
    # Build from a copy, so the source tree gets no build/ or *.egg-info.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "vhap", src / "vhap", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("vhap-*.whl")

    # A bare venv with the wheel installed (not editable); its dependencies (torch, tyro, ...) come from this
    # interpreter's site-packages, appended to sys.path by a .pth file after the venv's own.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    # without PYTHONPATH: a checkout on it (its vhap.egg-info) makes pip skip the wheel as "already installed"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    subprocess.run([*pip, "--python", str(py), "install", "--no-deps", "--no-index", str(wheel)], check=True, env=env)
    venv_site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                    check=True, capture_output=True, text=True).stdout.strip())
    (venv_site / "_outer_site.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(py), "-c", "import vhap; print(vhap.__file__)"], cwd=elsewhere, env=env,
                           check=True, capture_output=True, text=True).stdout.strip()
    assert Path(where).is_relative_to(venv_site), where  # the installed copy, not the source tree
    res = subprocess.run([str(venv / "bin" / "vhap"), "track", "--preset", "demo", "--help"], cwd=elsewhere,
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = " ".join(res.stdout.split())
    assert "Presets (--preset NAME): demo, few_views, landmark_only, monocular, nersemble" in out
    assert "(default: 256)" in out  # demo's model.tex_resolution became the shown default
    res = subprocess.run([str(venv / "bin" / "vhap"), "preprocess", "--preset", "nersemble", "--help"],
                         cwd=elsewhere, env=env, capture_output=True, text=True)
    assert res.returncode == 0 and "(default: 25.0)" in " ".join(res.stdout.split()), res.stderr
