"""The config system: defaults → presets → YAML → flags, round trips and clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import pytest

from vhap.config import UNIT, Range, check_ranges, config_from_dict, config_to_dict, parse_config, save_config
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


@pytest.mark.parametrize(
    "argv, flag, value, allowed",
    [
        (["track", "--exp.batch-size", "0"], "--exp.batch-size", "0", "≥ 1"),
        (["track", "--pipeline.rgb-global-tracking.num-epochs", "-1"], "--pipeline.rgb-global-tracking.num-epochs",
         "-1", "≥ 0"),
        (["track", "--pipeline.lmk-init-rigid.num-steps", "-5"], "--pipeline.lmk-init-rigid.num-steps", "-5", "≥ 0"),
        (["track", "--lr.base", "-0.01"], "--lr.base", "-0.01", "≥ 0"),
        (["track", "--w.landmark", "-1"], "--w.landmark", "-1.0", "≥ 0"),
        (["track", "--w.photo", "nan"], "--w.photo", "nan", "≥ 0 and finite"),
        (["track", "--render.disturb-rate-fg", "1.5"], "--render.disturb-rate-fg", "1.5", "≥ 0 and ≤ 1"),
        (["track", "--data.downsample", "0"], "--data.downsample", "0", "≥ 1"),
        (["track", "--data.scale-factor", "0"], "--data.scale-factor", "0.0", "> 0 and ≤ 1"),
        (["track", "--pipeline.global-lr-gamma", "1.5"], "--pipeline.global-lr-gamma", "1.5", "> 0 and ≤ 1"),
        (
            ["track", "--pipeline.global-shared-lr-scale", "0"],
            "--pipeline.global-shared-lr-scale",
            "0.0",
            "> 0 and ≤ 1",
        ),
        (["track", "--pipeline.eval-epochs", "0", "-3"], "--pipeline.eval-epochs", "-3", "≥ 0"),
        (["preprocess", "video.mp4", "--downsample", "1", "0"], "--downsample", "0", "≥ 1"),
        (["preprocess", "video.mp4", "--quality", "101"], "--quality", "101", "≥ 1 and ≤ 100"),
        (["preprocess", "video.mp4", "--fps", "-25"], "--fps", "-25.0", "≥ 0"),
        (["matting", "seq", "--downsample", "0"], "--downsample", "0", "≥ 1"),
        (["matting", "seq", "--plate-low", "-6"], "--plate-low", "-6.0", "≥ 0"),
        (["landmarks", "seq", "--downsample", "-2"], "--downsample", "-2", "≥ 1"),
        (["export", "--src", "run", "--tgt", "out", "--train-ratio", "1.5"], "--train-ratio", "1.5", "≥ 0 and ≤ 1"),
        (["export", "--src", "run", "--tgt", "out", "--epoch", "-2"], "--epoch", "-2", "≥ -1"),
        (["export", "--src", "run", "--tgt", "out", "--workers", "0"], "--workers", "0", "≥ 1"),
        (["combine", "--src", "a", "b", "--tgt", "u", "--group-size", "0"], "--group-size", "0", "≥ 1"),
        (["view", "run", "--port", "70000"], "--port", "70000", "≥ 0 and ≤ 65535"),
        (["regions", "--image-size", "0"], "--image-size", "0", "≥ 1"),
    ],
)  # fmt: skip
def test_out_of_range_numbers_are_one_clear_error(argv, flag, value, allowed, capsys, tmp_path, monkeypatch):
    """Every numeric option is range-checked when parsed: exit 2, one line naming the flag, value and range."""
    from vhap.cli import main

    monkeypatch.chdir(tmp_path)  # nothing may be written, whatever the relative paths
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vhap {argv[0]}: error: {flag} {value} is out of range: "), err
    assert f"must be {allowed}" in err.splitlines()[0], err
    assert list(tmp_path.iterdir()) == []


def test_out_of_range_preset_or_yaml_value_is_refused(tmp_path):
    from vhap.track.config import TrackConfig

    mine = tmp_path / "mine.yaml"
    mine.write_text("_base_: demo\nexp:\n  batch_size: -4\n")
    with pytest.raises(VhapError, match=r"--exp.batch-size -4 is out of range: exp.batch_size must be ≥ 1"):
        parse_config(TrackConfig, ["--preset", str(mine)], preset_group="track")
    conf = tmp_path / "conf.yaml"
    conf.write_text("render:\n  disturb_rate_bg: 2\n")
    with pytest.raises(VhapError, match=r"--render.disturb-rate-bg 2.0 is out of range"):
        parse_config(TrackConfig, ["--config", str(conf)], preset_group="track")
    # the flag wins over the file: a bad file value fixed on the command line passes
    fixed = parse_config(TrackConfig, ["--config", str(conf), "--render.disturb-rate-bg", "0.2"])
    assert fixed.render.disturb_rate_bg == 0.2


@dataclasses.dataclass
class Ranged:
    count: int = 3  # no declaration: ≥ 0
    rate: Annotated[float, UNIT] = 0.5
    sizes: Annotated[tuple[int, ...], Range(gt=0, lt=10)] = (1, 9)
    maybe: Annotated[float | None, Range(ge=-1)] = None
    flag: bool = False
    inner: Inner = dataclasses.field(default_factory=Inner)


def test_range_declarations_and_the_default_range():
    check_ranges(Ranged())
    check_ranges(Ranged(count=0, rate=1.0, maybe=-1.0))
    for bad, msg in [
        (Ranged(count=-1), "--count -1 is out of range: count must be ≥ 0"),
        (Ranged(rate=1.01), "--rate 1.01 is out of range: rate must be ≥ 0 and ≤ 1"),
        (Ranged(sizes=(3, 10)), "--sizes 10 is out of range: sizes must be > 0 and < 10"),
        (Ranged(maybe=-2.0), "--maybe -2.0 is out of range: maybe must be ≥ -1"),
        (Ranged(inner=Inner(lr=float("inf"))), "--inner.lr inf is out of range: inner.lr must be ≥ 0 and finite"),
    ]:
        with pytest.raises(VhapError) as e:
            check_ranges(bad)
        assert str(e.value).splitlines()[0] == msg
    assert parse_config(Root, ["--steps", "0"]).steps == 0
    with pytest.raises(VhapError, match="--steps -2 is out of range"):
        parse_config(Root, ["--steps", "-2"])


def test_every_step_config_default_is_in_range():
    """A new numeric field whose default breaks its range would refuse every call of its subcommand."""
    from vhap.export.config import CombineConfig, ExportConfig, ValidateConfig
    from vhap.model.cli import AssetsCheckConfig
    from vhap.preprocess.extract import PreprocessConfig
    from vhap.preprocess.landmarks import LandmarkConfig
    from vhap.preprocess.matting import MattingConfig
    from vhap.synth.generate import SynthConfig
    from vhap.track.config import TrackConfig
    from vhap.track.report import ReportConfig
    from vhap.viewer.cli import RegionsConfig, ViewConfig

    for cls in (TrackConfig, PreprocessConfig, MattingConfig, LandmarkConfig, ExportConfig, CombineConfig,
                ValidateConfig, ViewConfig, RegionsConfig, ReportConfig, AssetsCheckConfig, SynthConfig):  # fmt: skip
        check_ranges(cls())
