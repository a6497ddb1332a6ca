"""Bottom-up pose data: whole COCO images with every person, ignore masks, and the training targets.

As the official `CocoKeypoints` / `CocoDataset` (HigherHRNet `lib/dataset/`): training uses the
images with at least one annotation (crowd ones count), keeps the people that are not crowds or
that have keypoints, and masks out (weight 0 in the heatmap loss) crowd regions and people
without keypoints, decoded from their COCO segmentations with pycocotools. Evaluation uses every
image of the file, with or without people.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from hrnet.data.coco import check_coco
from hrnet.data.io import DataError, read_image

from ..pose.data import person_category_ids, read_json, to_tensor
from ..pose.metadata import KeypointMetadata
from .targets import heatmap_targets, tag_joints
from .transforms import Augmentation, random_affine, random_flip

log = logging.getLogger("hrnet")


@dataclass
class ImageRecord:
    """One image: its people's joints (N, K, 3) as COCO (x, y, v) pixels, and the segmentations of
    the regions to ignore (crowds, people without keypoints)."""

    path: Path
    image_id: int
    width: int
    height: int
    joints: np.ndarray
    ignore: list[Any] = field(default_factory=list)


def _image_entry(image: Any, path: Path, index: int) -> tuple[int, dict]:
    if not isinstance(image, dict):
        raise DataError(f"{path}: images[{index}] must be an object with id, file_name, width, height")
    missing = [f for f in ("id", "file_name", "width", "height") if f not in image]
    if missing:
        raise DataError(f"{path}: images[{index}] (id {image.get('id')}) lacks field(s) {missing}")
    return int(image["id"]), image


def _joints(ann: dict, path: Path, k: int) -> np.ndarray:
    keypoints = ann.get("keypoints")
    if not isinstance(keypoints, list) or len(keypoints) != 3 * k:
        raise DataError(f"{path}: annotation {ann.get('id')} field 'keypoints' must hold 3 x {k} numbers "
                        "(x, y, visibility)")
    try:
        return np.asarray(keypoints, dtype=np.float64).reshape(k, 3)
    except (TypeError, ValueError):
        raise DataError(f"{path}: annotation {ann.get('id')} field 'keypoints' holds non-numbers") from None


def load_coco_images(annotation_file: str | os.PathLike, image_dir: str | os.PathLike, *,
                     metadata: KeypointMetadata, with_people_only: bool) -> list[ImageRecord]:
    """The images of a COCO keypoints file with their people. `with_people_only`: only images with
    at least one person annotation (official training set); else all of them, in file order.
    A file without segmentations trains without ignore masks, and says so once."""
    path = Path(annotation_file)
    coco = read_json(path, "COCO keypoints file")
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list) or not isinstance(
            coco.get("annotations"), list):
        raise DataError(f"{path} is not a COCO keypoints file: it needs the lists 'images' and 'annotations'")
    people = person_category_ids(coco, path, metadata)
    check_coco(coco, path, keypoints=metadata.num_keypoints, people=people, boxes=False)
    images = dict(_image_entry(image, path, i) for i, image in enumerate(coco["images"]))
    joints: dict[int, list[np.ndarray]] = {i: [] for i in images}
    ignore: dict[int, list[Any]] = {i: [] for i in images}
    annotated: set[int] = set()
    unmasked = 0
    for index, ann in enumerate(coco["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann:
            raise DataError(f"{path}: annotations[{index}] (id {ann.get('id') if isinstance(ann, dict) else None}) "
                            "lacks field 'image_id'")
        if ann.get("category_id", 1) not in people:
            continue
        image_id = int(ann["image_id"])
        if image_id not in images:
            raise DataError(f"{path}: annotation {ann.get('id')} names image_id {image_id}, not in 'images'")
        annotated.add(image_id)
        crowd = bool(ann.get("iscrowd", 0))
        count = ann.get("num_keypoints")
        if count is None:
            count = int((_joints(ann, path, metadata.num_keypoints)[:, 2] > 0).sum()) if "keypoints" in ann else 0
        if crowd or count == 0:
            if ann.get("segmentation"):
                ignore[image_id].append(ann["segmentation"])
            else:
                unmasked += 1
        if not crowd or count > 0:
            joints[image_id].append(_joints(ann, path, metadata.num_keypoints))
    if unmasked:
        log.warning("%s: %d crowd or keypoint-less annotation(s) have no 'segmentation': their regions are not "
                    "masked out of the heatmap loss", path, unmasked)
    image_dir = Path(image_dir)
    k = metadata.num_keypoints
    return [ImageRecord(path=image_dir / image["file_name"], image_id=i, width=int(image["width"]),
                        height=int(image["height"]),
                        joints=np.stack(joints[i]) if joints[i] else np.zeros((0, k, 3)), ignore=ignore[i])
            for i, image in images.items() if i in annotated or not with_people_only]


def ignore_mask(record: ImageRecord) -> np.ndarray:
    """(H, W) bool, False where a crowd or a person without keypoints lies (official `get_mask`:
    the regions' decoded masks summed, valid where the sum is below 0.5)."""
    mask = np.zeros((record.height, record.width))
    if not record.ignore:
        return mask < 0.5
    from pycocotools import mask as coco_mask

    for segmentation in record.ignore:
        if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), str):
            rles = [segmentation]  # already a compressed RLE
        else:
            try:
                rles = coco_mask.frPyObjects(segmentation, record.height, record.width)
            except (TypeError, ValueError, IndexError) as error:
                raise DataError(f"image {record.image_id} ({record.path.name}): a 'segmentation' is neither "
                                f"polygons nor RLE ({error})") from None
        for rle in rles if isinstance(rles, list) else [rles]:
            decoded = coco_mask.decode(rle)
            mask += decoded if decoded.ndim == 2 else decoded.sum(axis=2)
    return mask < 0.5


class BottomUpDataset(Dataset):
    """Training samples: {image (3, S, S) normalised, heatmaps [(K, r, r)], masks [(r, r)],
    joints [(max_people, K, 2)]}, one entry per output resolution r in `output_sizes`. The tag
    indices assume one tag map per keypoint (the task converts them for a shared map)."""

    def __init__(self, records: Sequence[ImageRecord], *, metadata: KeypointMetadata, input_size: int,
                 output_sizes: Sequence[int], sigma: float, max_people: int, augmentation: Augmentation):
        self.records = list(records)
        self.metadata = metadata
        self.input_size, self.output_sizes = input_size, tuple(output_sizes)
        self.sigma, self.max_people = sigma, max_people
        self.augmentation = augmentation
        self.flip_index = metadata.flip_permutation()

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        image = read_image(record.path)
        if image.shape[:2] != (record.height, record.width):
            raise DataError(f"{record.path} is {image.shape[1]}x{image.shape[0]} but its annotation says "
                            f"{record.width}x{record.height} (fields 'width', 'height')")
        mask = ignore_mask(record).astype(np.float64)
        n = len(self.output_sizes)
        image, masks, joints = random_affine(image, [mask] * n, [record.joints] * n, input_size=self.input_size,
                                             output_sizes=self.output_sizes, aug=self.augmentation)
        image, masks, joints = random_flip(image, masks, joints, output_sizes=self.output_sizes,
                                           flip_index=self.flip_index, prob=self.augmentation.flip)
        sizes = self.output_sizes
        return {
            "image": to_tensor(image),
            "heatmaps": [torch.from_numpy(heatmap_targets(j, r, self.sigma)) for j, r in zip(joints, sizes)],
            "masks": [torch.from_numpy(m) for m in masks],
            "joints": [torch.from_numpy(tag_joints(j, r, self.max_people)) for j, r in zip(joints, sizes)],
        }


class ImageDataset(Dataset):
    """Evaluation samples: {image (H, W, 3) RGB uint8 as stored (no EXIF turn), image_id, index}."""

    def __init__(self, records: Sequence[ImageRecord]):
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        return {"image": read_image(record.path), "image_id": record.image_id, "index": index}
