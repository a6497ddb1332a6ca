"""Recipes: typed sections, errors that name the key and the file, --set overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hrnet.cli import main
from hrnet.engine import ConfigError, config_from_dict, config_to_dict, load_config
from hrnet.engine.testing import tiny_classification_recipe as tiny_recipe_dict, write_recipe
from hrnet.tasks.classification import DataConfig


def test_recipe_maps_onto_typed_sections(tmp_path):
    config = load_config(write_recipe(tmp_path / "r.yaml", tiny_recipe_dict("a", "b")))
    assert config.task == "classification"
    assert isinstance(config.data, DataConfig) and config.data.train == "a" and config.data.image_size == 32
    assert config.optimizer.weight_decay == 1e-4 and isinstance(config.optimizer.lr, float)
    assert config.model.spec().stages[3].channels == (8, 16, 32, 64)
    assert config.model.spec().stem_channels == 16
    assert config.train.batch_size == 8 and config.schedule.name == "constant"


def test_unknown_key_names_key_and_file(tmp_path):
    recipe = tiny_recipe_dict()
    recipe["optimizer"]["lrr"] = 0.1
    path = write_recipe(tmp_path / "bad.yaml", recipe)
    with pytest.raises(ConfigError, match=r"bad\.yaml.*unknown key optimizer\.lrr.*did you mean optimizer\.lr"):
        load_config(path)
    recipe = tiny_recipe_dict()
    recipe["data"]["image_sise"] = 3
    with pytest.raises(ConfigError, match=r"unknown key data\.image_sise"):
        load_config(write_recipe(tmp_path / "bad2.yaml", recipe))
    recipe = tiny_recipe_dict()
    recipe["trian"] = {}
    with pytest.raises(ConfigError, match=r"unknown key trian \(did you mean train\?\)"):
        load_config(write_recipe(tmp_path / "bad3.yaml", recipe))


@pytest.mark.parametrize("section, key, value, expected", [
    ("optimizer", "lr", "fast", r"optimizer\.lr must be float, got 'fast'"),
    ("train", "epochs", 2.5, r"train\.epochs must be int, got 2\.5"),
    ("train", "deterministic", 1, r"train\.deterministic must be bool"),
    ("optimizer", "name", "rmsprop", r"optimizer\.name must be one of 'sgd', 'adam', 'adamw'"),
    ("schedule", "milestones", [30, "x"], r"schedule\.milestones\[1\] must be int"),
    ("data", "mean", [0.5, 0.5], r"data\.mean must be tuple"),
    ("model", "arch", "hrnet_w33", r"model\.arch 'hrnet_w33' is not a registered variant"),
    ("train", "batch_size", 0, r"train\.batch_size must be >= 1"),
])
def test_ill_typed_values_name_the_key(tmp_path, section, key, value, expected):
    recipe = tiny_recipe_dict()
    recipe[section][key] = value
    with pytest.raises(ConfigError, match=r"r\.yaml: .*" + expected):
        load_config(write_recipe(tmp_path / "r.yaml", recipe))


def test_bad_inline_stages_are_reported(tmp_path):
    recipe = tiny_recipe_dict()
    recipe["model"]["stages"] = recipe["model"]["stages"][:3]
    with pytest.raises(ConfigError, match="model.stages: HRNetSpec needs 4 stages"):
        load_config(write_recipe(tmp_path / "r.yaml", recipe))


def test_overrides_are_typed(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe_dict())
    config = load_config(path, ["optimizer.lr=0.2", "schedule.milestones=[1, 2]", "train.amp=bf16",
                                "data.train=2024", "model.num_classes=7", "train.clip_grad_norm=null",
                                "model.stages=null", "model.arch=hrnet_w32"])
    assert config.optimizer.lr == 0.2 and config.schedule.milestones == [1, 2] and config.train.amp == "bf16"
    assert config.data.train == "2024"  # a str field keeps the text as written
    assert config.model.num_classes == 7 and config.train.clip_grad_norm is None
    assert config.model.spec().width == 32
    with pytest.raises(ConfigError, match=r"--set optimizer\.lr=abc.*optimizer\.lr must be float"):
        load_config(path, ["optimizer.lr=abc"])
    with pytest.raises(ConfigError, match=r"unknown key train\.epoch \(did you mean train\.epochs\?\)"):
        load_config(path, ["train.epoch=3"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(path, ["train.epochs"])


def test_config_round_trips_through_plain_data(tmp_path):
    config = load_config(write_recipe(tmp_path / "r.yaml", tiny_recipe_dict("a", "b")), ["data.scale=[0.5, 1.0]"])
    plain = config_to_dict(config)
    yaml.safe_dump(plain)  # plain YAML types only
    again = config_from_dict(plain, "saved")
    assert config_to_dict(again) == plain
    assert again.data.scale == (0.5, 1.0)


def test_missing_task_and_unknown_task(tmp_path):
    with pytest.raises(ConfigError, match="needs `task:`"):
        load_config(write_recipe(tmp_path / "r.yaml", {"model": {}}))
    with pytest.raises(ConfigError, match="unknown task 'classify'"):
        load_config(write_recipe(tmp_path / "r.yaml", {"task": "classify"}))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.yaml")


def test_cli_reports_unknown_key_in_one_line(tmp_path, capsys):
    recipe = tiny_recipe_dict()
    recipe["train"]["epochz"] = 3
    path = write_recipe(tmp_path / "bad.yaml", recipe)
    assert main(["train", "--config", str(path), "--out-dir", str(tmp_path / "run")]) == ConfigError.exit_code
    err = capsys.readouterr().err.strip()
    assert "bad.yaml" in err and "train.epochz" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("name", ["hrnet_w18_small_v1", "hrnet_w18", "hrnet_w32", "hrnet_w48"])
def test_shipped_classification_recipes_mirror_official_settings(name):
    path = Path(__file__).resolve().parents[2] / "recipes" / "classification" / f"{name}.yaml"
    config = load_config(path, ["data.classes=[a, b]"])  # class names without an ImageNet folder
    assert config.model.arch == name
    o, s, t = config.optimizer, config.schedule, config.train
    assert (o.name, o.lr, o.momentum, o.nesterov, o.weight_decay) == ("sgd", 0.05, 0.9, True, 1e-4)
    assert (s.name, s.milestones, s.gamma) == ("multistep", [30, 60, 90], 0.1)
    assert (t.batch_size, t.epochs) == (128, 100)
    assert (config.data.image_size, config.data.resize_size) == (224, 256)
    assert config.data.scale == (0.08, 1.0) and config.data.hflip


@pytest.mark.parametrize("text, value", [("1e-3", 1e-3), ("1E-4", 1e-4), ("5e+1", 50.0), ("-2.5e-1", -0.25),
                                         (".5", 0.5), ("1_000.5", 1000.5), (" 3e2 ", 300.0)])
def test_float_fields_take_every_python_float_spelling(tmp_path, text, value):
    """YAML 1.1 reads 1e-3 (no dot) as a string; a float field takes what float() takes."""
    recipe = tiny_recipe_dict()
    recipe["schedule"]["gamma"] = text  # a string in the YAML file, as `gamma: 1e-3` is read
    path = write_recipe(tmp_path / "r.yaml", recipe)
    assert load_config(path).schedule.gamma == value
    assert load_config(path, [f"schedule.min_lr={text}"]).schedule.min_lr == value
    assert load_config(path, [f"train.clip_grad_norm={text}"]).train.clip_grad_norm == value  # float | None


def test_lr_written_without_a_dot_is_a_float(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe_dict()).replace("lr: 0.01", "lr: 1e-4"))
    assert "lr: 1e-4" in path.read_text() and yaml.safe_load(path.read_text())["optimizer"]["lr"] == "1e-4"
    assert load_config(path).optimizer.lr == 1e-4
    assert load_config(path, ["optimizer.lr=1e-3"]).optimizer.lr == 1e-3
    with pytest.raises(ConfigError, match=r"optimizer\.lr must be float, got '1e-3x'"):
        load_config(path, ["optimizer.lr=1e-3x"])
    with pytest.raises(ConfigError, match="optimizer.lr must be a positive number"):
        load_config(path, ["optimizer.lr=nan"])
    with pytest.raises(ConfigError, match=r"train\.epochs must be int, got '1e3'"):
        load_config(path, ["train.epochs=1e3"])  # int fields stay strict


def test_ema_and_budget_keys(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe_dict())
    config = load_config(path, ["train.ema.decay=0.999", "train.time_budget_minutes=90", "train.budget_clock=process"])
    assert config.train.ema.decay == 0.999 and config.train.ema.warmup and config.train.ema.buffers == "average"
    assert config.train.time_budget_minutes == 90.0 and config.train.budget_clock == "process"
    assert config_from_dict(config_to_dict(config), "saved").train.ema == config.train.ema
    assert load_config(path).train.ema is None
    with pytest.raises(ConfigError, match=r"train\.ema\.decay must be in \[0, 1\)"):
        load_config(path, ["train.ema.decay=1.5"])
    with pytest.raises(ConfigError, match=r"unknown key train\.ema\.decya"):
        load_config(path, ["train.ema.decya=0.9"])
    with pytest.raises(ConfigError, match="time_budget_minutes must be positive"):
        load_config(path, ["train.time_budget_minutes=0"])
