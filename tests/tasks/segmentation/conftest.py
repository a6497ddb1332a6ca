"""Fixtures of the segmentation tests: a tiny recipe, synthetic scenes, the real data folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpers import one_thread, shared_data  # noqa: F401 (one_thread: autouse fixture)

TINY_STAGES = [
    {"modules": 1, "block": "bottleneck", "blocks": [1], "channels": [8]},
    {"modules": 1, "block": "basic", "blocks": [1, 1], "channels": [8, 16]},
    {"modules": 1, "block": "basic", "blocks": [1, 1, 1], "channels": [8, 16, 32]},
    {"modules": 1, "block": "basic", "blocks": [1, 1, 1, 1], "channels": [8, 16, 32, 64]},
]


def tiny_recipe(root: Path | str, **data: Any) -> dict[str, Any]:
    """A recipe for a tiny HRNetV2 on generic data under `root` (2 steps, no workers, CPU)."""
    return {
        "task": "segmentation",
        "model": {"arch": "hrnet_w18_small_v1", "stages": TINY_STAGES, "stem_channels": 16},
        "data": {"format": "generic", "root": str(root), "crop_size": [48, 48], "base_size": None, **data},
        "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4},
        "schedule": {"name": "poly"},
        "train": {"epochs": 1, "batch_size": 4, "workers": 0, "device": "cpu", "max_steps": 2, "plot": False},
        "eval": {"batch_size": 4},
    }


@pytest.fixture(scope="session")
def scenes(tmp_path_factory) -> Path:
    """Synthetic scenes in the generic layout: 16 train and 8 val images of 48x48."""
    from hrnet.tasks.segmentation.synthetic import write_scenes

    return write_scenes(tmp_path_factory.mktemp("scenes"), train=16, val=8, size=48, seed=1)


@pytest.fixture
def voc_dir() -> Path:
    return shared_data("voc_labelme", "SegmentationClass").parent


@pytest.fixture
def camvid_dir() -> Path:
    return shared_data("camvid", "val.txt").parent


@pytest.fixture
def recipe():
    """`tiny_recipe(root, **data)`: a recipe dict for a tiny HRNetV2 on generic data."""
    return tiny_recipe
