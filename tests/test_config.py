"""The config system: defaults → presets → YAML → flags, round trips and clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from vhap.config import config_from_dict, config_to_dict, parse_config, save_config
from vhap.config.core import read_saved_config
from vhap.errors import VhapError


@dataclasses.dataclass
class Inner:
    lr: float = 1e-3
    regions: tuple[str, ...] = ("hair",)


@dataclasses.dataclass
class Root:
    name: str = "a"
    steps: int = 10
    path: Path | None = None
    inner: Inner = dataclasses.field(default_factory=Inner)


def test_dict_round_trip():
    cfg = Root(name="b", steps=3, path=Path("/x"), inner=Inner(lr=0.5, regions=("ears", "neck")))
    assert config_from_dict(Root, config_to_dict(cfg)) == cfg


def test_unknown_key_is_an_error():
    with pytest.raises(VhapError, match="inner.lrr"):
        config_from_dict(Root, {"inner": {"lrr": 1}})


def test_wrong_type_is_an_error():
    with pytest.raises(VhapError, match="steps"):
        config_from_dict(Root, {"steps": "many"})


def test_yaml_then_flags_override(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("steps: 7\ninner:\n  lr: 0.25\n")
    cfg = parse_config(Root, ["--config", str(y), "--inner.lr", "0.5"])
    assert cfg.steps == 7 and cfg.inner.lr == 0.5 and cfg.inner.regions == ("hair",)


def test_save_and_read_back(tmp_path):
    cfg = Root(steps=4, inner=Inner(regions=("a", "b")))
    save_config(cfg, tmp_path / "config.yml")
    assert read_saved_config(Root, tmp_path / "config.yml") == cfg


def test_cli_help_lists_subcommands(capsys):
    from vhap.cli import main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("preprocess", "matting", "landmarks", "track", "export", "combine", "validate-export"):
        assert name in out
    assert main(["no-such-thing"]) == 2


def test_lazy_package_exports():
    import json
    import os.path

    import vhap.export
    import vhap.track
    from vhap.utils.lazy import lazy_exports

    getattr_, names = lazy_exports("pkg", {"join": "os.path", "dumps": "json"})
    assert names == ["dumps", "join"]
    assert getattr_("dumps") is json.dumps and getattr_("join") is os.path.join
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'loads'"):
        getattr_("loads")
    assert vhap.track.Tracker.__module__ == "vhap.track.tracker"
    assert "export_nerf_dataset" in vhap.export.__all__ and callable(vhap.export.export_nerf_dataset)
    with pytest.raises(AttributeError):
        vhap.track.not_a_name  # noqa: B018


def test_every_shipped_preset_builds_its_typed_config():
    from vhap.config import load_presets, preset_names
    from vhap.preprocess.extract import PreprocessConfig
    from vhap.track.config import TrackConfig

    track = load_presets("track", TrackConfig)
    assert set(track) == {"demo", "few_views", "landmark_only", "monocular", "nersemble"}
    assert track["demo"].exp.batch_size == 8 and track["demo"].data.background_color == "white"  # via _base_
    assert track["few_views"].w.reg_tex_tv == 20000.0 and track["few_views"].exp.batch_size == 1
    pre = load_presets("preprocess", PreprocessConfig)
    assert set(pre) == {"monocular", "nersemble"} and pre["nersemble"].fps == 25.0
    assert preset_names("matting") == []


def test_preset_key_typo_names_the_key(tmp_path, monkeypatch):
    from vhap.config import core, load_presets

    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "bad.yaml").write_text("inner:\n  lrr: 1\n")
    (tmp_path / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path.parent))
    monkeypatch.setitem(core.PRESET_PACKAGES, "root", tmp_path.name)
    with pytest.raises(VhapError, match="inner.lrr"):
        load_presets("root", Root)


def test_user_preset_file_chains_a_shipped_preset(tmp_path):
    from vhap.track.config import TrackConfig

    mine = tmp_path / "mine.yaml"
    mine.write_text("_base_: demo\nexp:\n  batch_size: 4\n")
    cfg = parse_config(TrackConfig, ["--preset", str(mine), "--exp.device", "cpu"], preset_group="track")
    assert cfg.exp.batch_size == 4 and cfg.model.tex_resolution == 256  # demo's, through the chain
    with pytest.raises(VhapError, match="(?s)unknown preset 'nope'.*'demo'"):
        parse_config(TrackConfig, ["--preset", "nope"], preset_group="track")
    with pytest.raises(VhapError, match="has no presets"):
        parse_config(Root, ["--preset", "demo"])
