"""The official recipes keep the official pipelines: every small-data option of this engine (weight
average, time budget, extra augmentation, test-time flip where the official test has none,
group-held-out validation) is off in them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hrnet.engine import load_config

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
OFFICIAL = sorted(p for p in RECIPES.glob("*/*.yaml") if not p.name.startswith("camvid"))
OFF = {"color_jitter": None, "blur": 0.0, "cutout": 0.0, "rotation": 0.0, "aspect_range": (1.0, 1.0),
       "val_groups": None}


@pytest.mark.parametrize("path", OFFICIAL, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_official_recipes_have_the_small_data_options_off(path):
    config = load_config(path, ["data.classes=[a, b]"] if path.parent.name == "classification" else [])
    assert config.train.ema is None and config.train.time_budget_minutes is None
    for key, value in OFF.items():
        if key == "rotation" and config.task == "pose":
            continue  # pose's own official rotation is rotation_factor; it has no `rotation` key
        assert getattr(config.data, key, value) == value, key
    if config.task in ("classification", "detection"):
        assert config.data.test_flip is False  # the official tests have no flip
