"""Fixtures of the detection tests: a tiny HRNet, small detector widths, real and synthetic COCO sets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import hrnet
from hrnet.data.io import write_image
from helpers import one_thread, shared_data, tiny_spec  # noqa: F401 (one_thread: autouse fixture)

# Widths and sizes that keep a detector fast on CPU (the official ones are 256, 1024, 800, 1333).
SMALL = {"fpn_channels": 32, "representation_size": 64, "min_size": 128, "max_size": 192}


@pytest.fixture
def tiny_det() -> hrnet.HRNetSpec:
    """The tests' tiny HRNet with a narrower stem."""
    return tiny_spec(stem_channels=16)


@pytest.fixture
def small() -> dict:
    return dict(SMALL)


@pytest.fixture
def voc_json() -> Path:
    """3 VOC images, 12 instances (boxes and polygons)."""
    return shared_data("voc_labelme", "instances_coco.json")


@pytest.fixture
def coco_kpt_json() -> Path:
    """4 COCO val2017 images, 14 persons."""
    return shared_data("coco_kpt", "test_coco.json")


@pytest.fixture
def tiny_coco(tmp_path: Path) -> Path:
    """Three images (64x80, 48x64, 40x40) in a COCO json: a square polygon (cat 3), an RLE box
    (cat 7), a crowd box, a box under a pixel, a background category, and an image without boxes."""
    rng = np.random.default_rng(0)
    sizes = [(64, 80), (48, 64), (40, 40)]
    images = []
    for index, (height, width) in enumerate(sizes):
        write_image(tmp_path / "img" / f"{index}.png", rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
        images.append({"id": 10 + index, "file_name": f"img/{index}.png", "height": height, "width": width})
    rle_mask = np.zeros((48, 64), np.uint8, order="F")
    rle_mask[10:30, 20:40] = 1
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(rle_mask)
    rle["counts"] = rle["counts"].decode("ascii")
    annotations = [
        {"id": 1, "image_id": 10, "category_id": 3, "bbox": [10, 20, 30, 20], "iscrowd": 0, "area": 600,
         "segmentation": [[10, 20, 40, 20, 40, 40, 10, 40]]},
        {"id": 2, "image_id": 10, "category_id": 7, "bbox": [0, 0, 5, 5], "iscrowd": 1, "area": 25,
         "segmentation": [[0, 0, 5, 0, 5, 5, 0, 5]]},
        {"id": 3, "image_id": 11, "category_id": 7, "bbox": [20, 10, 20, 20], "iscrowd": 0, "area": 400,
         "segmentation": rle},
        {"id": 4, "image_id": 11, "category_id": 3, "bbox": [50, 5, 0.5, 9], "iscrowd": 0, "area": 4,
         "segmentation": [[50, 5, 50.5, 5, 50.5, 14, 50, 14]]},
    ]
    categories = [{"id": 0, "name": "_background_"}, {"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path
