"""Tiny random-weight models of every task, and pictures to predict on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hrnet
from hrnet.engine.testing import TINY_STAGES
from helpers import one_thread  # noqa: F401 (autouse)

RECIPES = {
    "classification": {"data": {"classes": ["cat", "dog", "bird"], "image_size": 32, "resize_size": 36}},
    "pose": {"data": {"input_size": [64, 48]}},
    "segmentation": {"data": {"format": "camvid", "crop_size": [32, 32]}},
    "detection": {"data": {"class_names": ["person", "car"], "min_size": 96, "max_size": 128, "fpn_channels": 16,
                           "representation_size": 32}},
}


def recipe(task: str) -> dict:
    return {"task": task, "model": {"arch": "hrnet_w18_small_v1", "stages": TINY_STAGES, "stem_channels": 16},
            **RECIPES[task]}


def tiny_model(task: str) -> torch.nn.Module:
    from hrnet.engine.config import config_from_dict
    from hrnet.tasks import get_task

    torch.manual_seed(0)
    return get_task(task)(config_from_dict(recipe(task))).build_model().eval()


@pytest.fixture(params=sorted(RECIPES))
def task(request) -> str:
    return request.param


@pytest.fixture
def predictor_of():
    """predictor_of(task, **options): a Predictor of a tiny random model of `task`."""
    def make(task: str, **options) -> hrnet.Predictor:
        return hrnet.Predictor(tiny_model(task), task=task, config=recipe(task), device="cpu", **options)

    return make


@pytest.fixture
def picture() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
