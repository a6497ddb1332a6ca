"""Pose: the val annotations are checked for what COCO evaluation reads before the first training
step; the small-data options change the person crop, not its heatmap targets."""

from __future__ import annotations

import json

import pytest
import torch

from hrnet.engine import config_from_dict, fit
from hrnet.engine.testing import TINY_STAGES
from hrnet.errors import DataError
from hrnet.tasks.pose.task import PoseTask
from helpers import one_thread  # noqa: F401 (autouse fixture)


def _recipe(coco_dir, val_annotations=None, **data) -> dict:
    annotations = str(coco_dir / "test_coco.json")
    return {"task": "pose", "model": {"arch": "hrnet_w18_small_v1", "stages": TINY_STAGES, "stem_channels": 16},
            "data": {"train_annotations": annotations, "train_images": str(coco_dir),
                     "val_annotations": str(val_annotations or annotations), "val_images": str(coco_dir),
                     "input_size": [64, 48], **data},
            "optimizer": {"name": "adam", "lr": 0.001},
            "train": {"epochs": 1, "batch_size": 4, "max_steps": 1, "workers": 0, "device": "cpu", "plot": False}}


@pytest.mark.parametrize("field", ["area", "num_keypoints"])
def test_a_val_json_missing_an_evaluation_field_fails_before_training(tmp_path, coco_dir, field):
    coco = json.loads((coco_dir / "test_coco.json").read_text())
    del coco["annotations"][1][field]
    val = tmp_path / "val.json"
    val.write_text(json.dumps(coco))
    ident = coco["annotations"][1]["id"]
    with pytest.raises(DataError, match=rf"val\.json: annotations\[1\] \(id {ident}\) field '{field}' lacks it"):
        fit(config_from_dict(_recipe(coco_dir, val)), tmp_path / "run")
    assert not (tmp_path / "run" / "last.pth").exists()


def test_crop_options_change_the_image_not_the_targets(coco_dir):
    plain = PoseTask(config_from_dict(_recipe(coco_dir))).build_dataset("train")
    options = {"color_jitter": [0.4, 0.4, 0.4, 0.1], "blur": 1.0, "cutout": 0.3}
    augmented = PoseTask(config_from_dict(_recipe(coco_dir, **options))).build_dataset("train")
    for index in range(3):
        torch.manual_seed(index)
        a = plain[index]
        torch.manual_seed(index)
        b = augmented[index]
        assert torch.equal(a["target"], b["target"]) and torch.equal(a["target_weight"], b["target_weight"])
        assert not torch.allclose(a["image"], b["image"])
        assert (b["image"] == 0).all(dim=0).sum() >= 10  # the cutout hole (side 0.3 x 48 = 14, maybe clipped)
    val = PoseTask(config_from_dict(_recipe(coco_dir, **options))).build_dataset("val")
    assert val.augmentation is None  # evaluation crops are never augmented
