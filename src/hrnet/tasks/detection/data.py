"""COCO instances json -> (image, target) pairs for torchvision's detectors, and their batching.

A sample is `image` (3, H, W) float RGB in [0, 1] and `target` with `boxes` (K, 4) x1y1x2y2 in
pixels, `labels` (K,) int64 in 1..C (0 is the background), `image_id` (the json's id), and with
masks `masks` (K, H, W) uint8. Images of different sizes batch as lists: the detector resizes
and pads them itself (to a multiple of 32).

Category ids map to labels in ascending id order. A category named `_background_` or
`background` (labelme's COCO export carries one) is not a class. Crowd annotations are left out
of the targets: torchvision's detectors have no ignore regions (evaluation still honours them,
as pycocotools reads them from the ground-truth json).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch.utils.data import Dataset

from hrnet.data.coco import check_coco, report_dropped
from hrnet.data.io import DataError, read_image, read_json

BACKGROUND_NAMES = ("_background_", "background")
Target = dict[str, Any]


def read_instances(path: str | os.PathLike) -> dict[str, Any]:
    """Load a COCO instances json and check the fields this module reads, naming what is wrong."""
    path = Path(path)
    data = read_json(path, "COCO instances file")
    if not isinstance(data, dict):
        raise DataError(f"{path} holds a {type(data).__name__}, not a COCO instances json (an object with "
                        "images, annotations and categories); a results list is not ground truth")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{path}: the field {key!r} is missing or not a list; a COCO instances json "
                            "has images, annotations and categories")
    check_coco(data, path, sizes=False)
    known = {c.get("id") for c in data["categories"]}
    for index, ann in enumerate(data["annotations"]):
        if ann.get("category_id") not in known:
            raise DataError(f"{path}: annotations[{index}] has category_id {ann.get('category_id')!r}, "
                            f"which is not in categories")
    return data


def check_ground_truth(data: dict[str, Any], path: str | os.PathLike) -> None:
    """What pycocotools' COCOeval reads from every ground-truth annotation besides what
    `read_instances` checks (image_id, bbox, category_id): `area`, a number (the size ranges).
    Called when the evaluator is built, i.e. before training starts, not at the first evaluation."""
    for index, ann in enumerate(data["annotations"]):
        area = ann.get("area")
        if isinstance(area, bool) or not isinstance(area, (int, float)):
            got = "no field 'area'" if "area" not in ann else f"'area' {area!r}, not a number"
            raise DataError(f"{path}: annotations[{index}] (id {ann.get('id')}) has {got}; COCO evaluation needs "
                            "each annotation's area (pixels of its mask, or width x height of its box)")


def class_categories(categories: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The categories that are classes, in ascending id order: label i + 1 is entry i."""
    return sorted((c for c in categories if c.get("name") not in BACKGROUND_NAMES), key=lambda c: c["id"])


def decode_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """A COCO segmentation (polygons, RLE or uncompressed RLE) -> (H, W) uint8 of 0/1."""
    if isinstance(segmentation, list):
        rles = mask_utils.frPyObjects(segmentation, height, width) if segmentation else []
        if not rles:
            return np.zeros((height, width), np.uint8)
        rle = mask_utils.merge(rles)
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_utils.decode(rle).astype(np.uint8)


def hflip(image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
    """Mirror left-right: (3, H, W) image, its boxes (x -> W - x) and masks."""
    width = image.shape[-1]
    target = dict(target)
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
    target["boxes"] = boxes
    if "masks" in target:
        target["masks"] = target["masks"].flip(-1)
    return image.flip(-1), target


class CocoDetection(Dataset):
    """Images and instances of a COCO json.

    annotations: the json; images: the folder `file_name` is relative to (default: the json's
    folder). masks: also decode instance masks (for Mask R-CNN). skip_empty: leave out images
    without any non-crowd box (the official training does; keep them with False, as background
    only examples, and always for evaluation). flip: probability of a horizontal flip.
    check_files: check that every image file exists (at construction, before training).
    """

    def __init__(self, *, annotations: str | os.PathLike, images: str | os.PathLike | None = None,
                 masks: bool = False, skip_empty: bool = True, flip: float = 0.0, check_files: bool = True):
        self.annotations = Path(annotations)
        self.root = Path(images) if images is not None else self.annotations.parent
        self.masks = masks
        self.flip = flip
        data = read_instances(self.annotations)
        self.categories = class_categories(data["categories"])
        if not self.categories:
            raise DataError(f"{self.annotations}: no categories besides the background")
        self.label_of = {c["id"]: i + 1 for i, c in enumerate(self.categories)}
        self.class_names = [c["name"] for c in self.categories]
        by_image: dict[Any, list[dict]] = {image["id"]: [] for image in data["images"]}
        for ann in data["annotations"]:
            if ann["image_id"] not in by_image:
                raise DataError(f"{self.annotations}: annotation {ann.get('id')} refers to image_id "
                                f"{ann['image_id']!r}, which is not in images")
            if not ann.get("iscrowd", 0) and ann["category_id"] in self.label_of:
                by_image[ann["image_id"]].append(ann)
        report_dropped(self.annotations, [ann.get("id") for anns in by_image.values() for ann in anns
                                          if min(ann["bbox"][2:]) < 1], "their box is under one pixel wide or high")
        self.images = [image for image in data["images"] if by_image[image["id"]] or not skip_empty]
        self.instances = [by_image[image["id"]] for image in self.images]
        if check_files:
            missing = [image["file_name"] for image in self.images if not (self.root / image["file_name"]).is_file()]
            if missing:
                raise DataError(f"{self.annotations}: {len(missing)} image file(s) of 'images' do not exist under "
                                f"{self.root} (e.g. {missing[0]}); set the images folder (data.train_images / "
                                "data.val_images)")

    @property
    def num_classes(self) -> int:
        """Classes including the background, as `build_detector` takes them."""
        return len(self.categories) + 1

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        info = self.images[index]
        rgb = read_image(self.root / info["file_name"])
        height, width = rgb.shape[:2]
        image = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255)
        target = self._target(self.instances[index], info["id"], height, width)
        if self.flip and random.random() < self.flip:
            image, target = hflip(image, target)
        return image, target

    def _target(self, anns: list[dict], image_id: Any, height: int, width: int) -> Target:
        boxes, labels, masks = [], [], []
        for ann in anns:
            x, y, w, h = (float(v) for v in ann["bbox"])
            x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + w, width), min(y + h, height)
            # torchvision rejects boxes without area; the official loader drops boxes under 1 pixel.
            if x2 - x1 < 1 or y2 - y1 < 1:
                continue
            boxes.append([x1, y1, x2, y2])
            labels.append(self.label_of[ann["category_id"]])
            if self.masks:
                masks.append(decode_mask(ann.get("segmentation", []), height, width))
        target: Target = {
            "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "image_id": image_id,
        }
        if self.masks:
            stacked = np.stack(masks) if masks else np.zeros((0, height, width), np.uint8)
            target["masks"] = torch.from_numpy(stacked)
        return target


def collate(samples: list[tuple[torch.Tensor, Target]]) -> tuple[list[torch.Tensor], list[Target]]:
    """Different-size images stay a list (the detector pads them); targets a list of dicts."""
    images, targets = zip(*samples)
    return list(images), list(targets)
