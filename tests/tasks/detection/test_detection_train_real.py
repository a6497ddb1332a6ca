"""A small detector learns the real boxes: the VOC instances and the COCO persons, trained and
evaluated on the same 7 images (CPU, minutes: `pytest -m slow`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hrnet.engine import config_from_dict, fit

VOC_PERSON = 15


def _merge(voc_json: Path, coco_kpt_json: Path, out: Path) -> Path:
    """One COCO json of both sets: VOC's 20 categories, the COCO persons as VOC's person, absolute
    image paths, and ids made distinct."""
    voc, people = json.loads(voc_json.read_text()), json.loads(coco_kpt_json.read_text())
    images, annotations = [], []
    for offset, data, folder in ((0, voc, voc_json.parent), (10**7, people, coco_kpt_json.parent)):
        for image in data["images"]:
            images.append({**image, "id": image["id"] + offset, "file_name": str(folder / image["file_name"])})
        for ann in data["annotations"]:
            category = VOC_PERSON if data is people else ann["category_id"]
            annotations.append({key: ann[key] for key in ("bbox", "area", "iscrowd", "segmentation")}
                               | {"id": len(annotations) + 1, "image_id": ann["image_id"] + offset,
                                  "category_id": category})
    out.write_text(json.dumps({"images": images, "annotations": annotations, "categories": voc["categories"]}))
    return out


def _stage(branches: int, width: int) -> dict:
    if branches == 1:
        return {"modules": 1, "block": "bottleneck", "blocks": [1], "channels": [width]}
    channels = [width * 2**i for i in range(branches)]
    return {"modules": 1, "block": "basic", "blocks": [1] * branches, "channels": channels}


@pytest.mark.slow
def test_a_small_detector_learns_the_real_boxes(tmp_path, voc_json, coco_kpt_json):
    annotations = str(_merge(voc_json, coco_kpt_json, tmp_path / "both.json"))
    steps = 60  # one step is one batch of all 7 images
    recipe = {
        "task": "detection",
        "model": {"stages": [_stage(n, 16) for n in (1, 2, 3, 4)], "stem_channels": 16},
        # Small images and few sampled proposals keep a step cheap on CPU; no augmentation.
        "data": {"train": annotations, "val": annotations, "flip": 0.0, "min_size": 192, "max_size": 320,
                 "fpn_channels": 32, "representation_size": 128,
                 "detector_options": {"box_batch_size_per_image": 64, "rpn_batch_size_per_image": 128,
                                      "rpn_pre_nms_top_n_train": 500, "rpn_post_nms_top_n_train": 250,
                                      "rpn_pre_nms_top_n_test": 500, "rpn_post_nms_top_n_test": 250}},
        "optimizer": {"name": "adamw", "lr": 3e-3, "weight_decay": 1e-4},
        "schedule": {"name": "multistep", "milestones": [int(steps * 0.85)], "warmup_epochs": 10, "warmup_factor": 0.1},
        "train": {"epochs": steps, "batch_size": 7, "workers": 0, "device": "cpu", "clip_grad_norm": 35.0,
                  "plot": False, "progress": False},
        "eval": {"every": steps},
    }
    summary = fit(config_from_dict(recipe), tmp_path / "run")
    assert summary["metrics"]["AP50"] >= 0.9, summary["metrics"]
