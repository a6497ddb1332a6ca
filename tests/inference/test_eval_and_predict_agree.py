"""`hrnet eval` and `hrnet predict` decode the same recipe identically: one settings object per task
(`task.inference_settings()`) feeds both the evaluator and the Predictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hrnet
from hrnet.engine.config import config_from_dict
from hrnet.engine.testing import TINY_STAGES
from hrnet.tasks import get_task
from helpers import randomize_batchnorm, shared_data

TINY = {"arch": "hrnet_w18_small_v1", "stages": TINY_STAGES, "stem_channels": 16}


def test_pose_evaluator_and_predictor_give_the_same_keypoints():
    coco = shared_data("coco_kpt")
    data = {"train_annotations": str(coco / "test_coco.json"), "train_images": str(coco),
            "val_annotations": str(coco / "test_coco.json"), "val_images": str(coco), "input_size": [64, 48],
            "decoding": "dark", "flip_test": True, "shift_heatmap": True, "dark_kernel": 5}
    recipe = {"task": "pose", "model": TINY, "data": data}
    config = config_from_dict(recipe)
    task = get_task("pose")(config)
    torch.manual_seed(0)
    model = randomize_batchnorm(task.build_model()).eval()
    for p in model.head.parameters():  # peaked heatmaps, so decoding and its refinements matter
        p.data.normal_(std=0.5)
    evaluator = task.make_evaluator(torch.device("cpu"))
    dataset = task.build_dataset("val")
    with torch.no_grad():  # one person per forward, as the predictor runs one box here (same kernels)
        for i in range(4):
            evaluator.update(model, task.collate([dataset[i]]))
    expected = np.concatenate(evaluator.keypoints)  # (4, K, 3): x, y, score in image pixels
    predictor = hrnet.Predictor(model, task="pose", config=recipe, device="cpu", oks_nms_threshold=None)
    assert predictor.settings == task.inference_settings().__class__(**{**vars(task.inference_settings()),
                                                                       "oks_nms_threshold": None})
    for i in range(4):
        record = task.records("val")[i]
        x, y, w, h = record.extra["box"]
        people = predictor(str(record.image), boxes=[[x, y, x + w, y + h]])
        np.testing.assert_allclose(people.keypoints[0], expected[i, :, :2], atol=1e-3)
        np.testing.assert_allclose(people.keypoint_scores[0], expected[i, :, 2], rtol=1e-5)
    assert people.how["decoding"] == evaluator.how["decoding"] == "dark"


def test_classification_flip_test_is_the_evaluations_rule():
    recipe = {"task": "classification", "model": TINY,
              "data": {"classes": ["a", "b", "c"], "image_size": 32, "resize_size": 36, "test_flip": True}}
    config = config_from_dict(recipe)
    task = get_task("classification")(config)
    torch.manual_seed(0)
    model = task.build_model().eval()
    predictor = hrnet.Predictor(model, task="classification", config=recipe, device="cpu")
    assert predictor.settings.flip_test  # the recipe's data.test_flip
    picture = np.random.default_rng(0).integers(0, 255, (50, 40, 3), dtype=np.uint8)
    from hrnet.tasks.classification import classification_flip

    batch = predictor.inference.prepare(picture)[None]
    with torch.no_grad():
        expected = classification_flip(model, batch).softmax(dim=1)[0]
    result = predictor(picture)
    np.testing.assert_allclose(result.scores, expected[result.indices].numpy(), rtol=1e-5)


@pytest.mark.parametrize("task_name", ["segmentation", "detection"])
def test_the_predictor_starts_from_the_recipes_test_settings(task_name):
    data = {"segmentation": {"format": "camvid", "crop_size": [32, 32], "test_flip": True, "test_scales": [0.5, 1.0]},
            "detection": {"class_names": ["thing"], "test_flip": True, "score_threshold": 0.4}}[task_name]
    recipe = {"task": task_name, "model": TINY, "data": data}
    task = get_task(task_name)(config_from_dict(recipe))
    predictor = hrnet.Predictor(task.build_model().eval(), task=task_name, config=recipe, device="cpu")
    assert predictor.settings == task.inference_settings()
    assert predictor.settings.flip_test
