"""Pose datasets: COCO keypoints json (ground-truth or detected person boxes), MPII converted json.

Each loader returns `PersonRecord`s (one person to crop); `PoseDataset` crops, augments and
builds heatmap targets from them, exactly as the official `JointsDataset`.
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

from hrnet.data.augment import cutout
from hrnet.data import IMAGENET_MEAN, IMAGENET_STD
from hrnet.data.coco import check_coco, check_detection, report_dropped
from hrnet.data.io import DataError, read_image, read_json

from .metadata import KeypointMetadata
from .targets import gaussian_heatmaps
from .transforms import Augmentation, apply_affine, augment, box_to_center_scale, crop, udp_crop

log = logging.getLogger("hrnet")



def to_tensor(patch: np.ndarray) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> float (3, H, W) normalised with the ImageNet mean and std."""
    mean, std = np.asarray(IMAGENET_MEAN, np.float32), np.asarray(IMAGENET_STD, np.float32)
    return torch.from_numpy(((patch.astype(np.float32) / 255.0 - mean) / std).transpose(2, 0, 1).copy())


@dataclass
class PersonRecord:
    """One person: the image, the crop (center (2,), scale (2,)) and the labels (joints (K, 2),
    visible (K,) in {0, 1}; zeros for detected boxes). `score` is the box score (1 for GT)."""

    image: Path
    image_id: int
    center: np.ndarray
    scale: np.ndarray
    joints: np.ndarray
    visible: np.ndarray
    score: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


def person_category_ids(coco: dict, path: Path, metadata: KeypointMetadata) -> set[int]:
    """Categories with keypoints (COCO: person, id 1); their keypoint count must match the metadata."""
    categories = [c for c in coco.get("categories", []) if c.get("keypoints")]
    for category in categories:
        if len(category["keypoints"]) != metadata.num_keypoints:
            raise DataError(f"{path}: category {category.get('name')!r} has {len(category['keypoints'])} keypoints "
                            f"but the metadata {metadata.name!r} has {metadata.num_keypoints}; pass the matching "
                            "keypoint metadata (data.keypoints)")
    return {int(c["id"]) for c in categories} or {1}


def _clean_box(box: Sequence[float], width: int, height: int) -> list[float] | None:
    """The official GT box cleaning: clip to the image (inclusive pixel ends); None if empty."""
    x, y, w, h = box
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1))
    if w * h > 0 and x2 >= x1 and y2 >= y1:
        return [x1, y1, x2 - x1, y2 - y1]
    return None


class _EmptyBox(Exception):
    """The annotation's box has no area inside the image: left out, as the official loader does."""


def _gt_record(ann: dict, image: dict, image_dir: Path, path: Path, metadata: KeypointMetadata,
               aspect_ratio: float) -> PersonRecord | None:
    keypoints = ann.get("keypoints")
    if keypoints is None or len(keypoints) != 3 * metadata.num_keypoints:
        raise DataError(f"{path}: annotation {ann.get('id')} field 'keypoints' must hold 3 x "
                        f"{metadata.num_keypoints} numbers (x, y, visibility)")
    if "bbox" not in ann:
        raise DataError(f"{path}: annotation {ann.get('id')} has no field 'bbox' ([x, y, w, h])")
    keypoints = np.asarray(keypoints, dtype=np.float32).reshape(-1, 3)
    box = _clean_box(ann["bbox"], int(image["width"]), int(image["height"]))
    if box is None:
        raise _EmptyBox
    if keypoints.max() == 0:  # the official loader keeps only labelled persons
        return None
    center, scale = box_to_center_scale(box, aspect_ratio)
    return PersonRecord(image=image_dir / image["file_name"], image_id=int(image["id"]), center=center, scale=scale,
                        joints=keypoints[:, :2].copy(), visible=np.minimum(keypoints[:, 2], 1),
                        extra={"annotation_id": ann.get("id"), "box": box})


def load_coco_keypoints(annotation_file: str | os.PathLike, image_dir: str | os.PathLike, *,
                        metadata: KeypointMetadata, aspect_ratio: float,
                        detections: str | os.PathLike | None = None, score_threshold: float = 0.0
                        ) -> list[PersonRecord]:
    """Persons of a COCO keypoints file: its ground-truth boxes (non-crowd persons with at least
    one labelled keypoint), or, with `detections`, the boxes of a COCO results json scoring at
    least `score_threshold`. `aspect_ratio` is the model input's width / height."""
    path = Path(annotation_file)
    coco = read_json(path, "COCO keypoints file")
    if not isinstance(coco, dict) or "images" not in coco or "annotations" not in coco:
        raise DataError(f"{path} is not a COCO keypoints file: it needs 'images' and 'annotations'")
    person_ids = person_category_ids(coco, path, metadata)
    check_coco(coco, path, keypoints=metadata.num_keypoints, people=person_ids)
    images = {im["id"]: im for im in coco["images"]}
    image_dir = Path(image_dir)
    if detections is not None:
        return _detection_records(detections, images, image_dir, person_ids, metadata, aspect_ratio, score_threshold)
    records, empty = [], []
    for ann in coco["annotations"]:
        if ann.get("category_id", 1) not in person_ids or ann.get("iscrowd", 0):
            continue
        try:
            record = _gt_record(ann, images[ann["image_id"]], image_dir, path, metadata, aspect_ratio)
        except _EmptyBox:
            empty.append(ann.get("id"))
            continue
        if record is not None:
            records.append(record)
    report_dropped(path, empty, "their box has no area inside the image (as in the official loader)")
    return records


def _detection_records(detections: str | os.PathLike, images: dict[int, dict], image_dir: Path, person_ids: set[int],
                       metadata: KeypointMetadata, aspect_ratio: float, score_threshold: float) -> list[PersonRecord]:
    """Official `_load_coco_person_detection_results`: person boxes above the score threshold."""
    results = read_json(detections, "person detection results")
    if not isinstance(results, list):
        raise DataError(f"{detections} must be a COCO results list of {{image_id, category_id, bbox, score}}")
    records = []
    for i, det in enumerate(results):
        check_detection(det, i, detections)
        if det.get("category_id", 1) not in person_ids or det["score"] < score_threshold:
            continue
        image = images.get(det["image_id"])
        if image is None:
            raise DataError(f"{detections}: entry {i} names image_id {det['image_id']}, not in the annotation file")
        center, scale = box_to_center_scale(det["bbox"], aspect_ratio)
        k = metadata.num_keypoints
        records.append(PersonRecord(image=image_dir / image["file_name"], image_id=int(image["id"]), center=center,
                                    scale=scale, joints=np.zeros((k, 2), np.float32), visible=np.ones(k, np.float32),
                                    score=float(det["score"]), extra={"box": list(det["bbox"])}))
    without = sorted(set(images) - {record.image_id for record in records})
    if without:
        log.warning("%s: %d of %d image(s) have no person box scoring >= %g (image ids %s); they get no "
                    "keypoints", detections, len(without), len(images), score_threshold,
                    ", ".join(map(str, without[:5])) + (", ..." if len(without) > 5 else ""))
    return records


def load_mpii(annotation_file: str | os.PathLike, image_dir: str | os.PathLike, *, metadata: KeypointMetadata
              ) -> list[PersonRecord]:
    """Persons of an MPII json in the official converted form ([{image, center, scale, joints,
    joints_vis}], 1-based MATLAB pixels). As the official loader: the center moves down by 15 x
    scale pixels, the scale grows by 1.25, and everything becomes 0-based. An optional `headbox`
    ([[x1, y1], [x2, y2]]) per entry is kept for PCKh."""
    path = Path(annotation_file)
    entries = read_json(path, "MPII annotation file")
    if not isinstance(entries, list):
        raise DataError(f"{path} must be a list of {{image, center, scale, joints, joints_vis}}")
    records = []
    for i, entry in enumerate(entries):
        missing = {"image", "center", "scale", "joints", "joints_vis"} - set(entry)
        if missing:
            raise DataError(f"{path}: entry {i} lacks field(s) {sorted(missing)}")
        joints = np.asarray(entry["joints"], dtype=np.float32)
        if joints.shape != (metadata.num_keypoints, 2) or len(entry["joints_vis"]) != metadata.num_keypoints:
            raise DataError(f"{path}: entry {i} field 'joints' must be {metadata.num_keypoints} [x, y] pairs "
                            f"with as many 'joints_vis' (metadata {metadata.name!r})")
        center = np.asarray(entry["center"], dtype=np.float32)
        scale = np.array([entry["scale"], entry["scale"]], dtype=np.float32)
        if center[0] != -1:
            center[1] += 15 * scale[1]
            scale = scale * 1.25
        extra = {}
        if "headbox" in entry:
            extra["headbox"] = np.asarray(entry["headbox"], dtype=np.float64).reshape(2, 2) - 1
        records.append(PersonRecord(image=Path(image_dir) / entry["image"], image_id=i, center=center - 1,
                                    scale=scale, joints=joints - 1,
                                    visible=np.asarray(entry["joints_vis"], dtype=np.float32), extra=extra))
    return records


class PoseDataset(Dataset):
    """Records -> samples of {image (3, H, W) normalised, target (K, h, w), target_weight (K, 1),
    center (2,), scale (2,), rotation, score, index}. Sizes are (width, height) pairs.
    `augmentation=None` (evaluation) crops each person's box as is; `udp` crops the UDP way
    (`transforms.udp_crop`), as UDP weights need for evaluation."""

    def __init__(self, records: list[PersonRecord], *, metadata: KeypointMetadata, input_size: Sequence[int],
                 heatmap_size: Sequence[int], sigma: float, augmentation: Augmentation | None = None,
                 udp: bool = False):
        self.records = records
        self.metadata = metadata
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        self.sigma = sigma
        self.augmentation = augmentation
        self.udp = udp

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        image = read_image(record.image)
        joints, visible = record.joints.copy(), record.visible.copy()
        center, scale, rotation = record.center.copy(), record.scale.copy(), 0.0
        if self.augmentation is not None:
            # Seeded from torch so that DataLoader workers differ and seeded runs repeat.
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
            image, joints, visible, center, scale, rotation = augment(
                image, joints, visible, center, scale, metadata=self.metadata, aug=self.augmentation,
                aspect_ratio=self.input_size[0] / self.input_size[1], rng=rng)
        cut = udp_crop if self.udp else crop
        patch, matrix = cut(np.ascontiguousarray(image), center, scale, rotation, self.input_size)
        joints = np.where(visible[:, None] > 0, apply_affine(joints, matrix), joints).astype(np.float32)
        target, weight = gaussian_heatmaps(joints, visible, input_size=self.input_size,
                                           heatmap_size=self.heatmap_size, sigma=self.sigma)
        tensor = to_tensor(patch if self.augmentation is None else self.augmentation.patch(patch))
        if self.augmentation is not None:
            tensor = cutout(tensor, self.augmentation.cutout)
        return {
            "image": tensor,
            "target": torch.from_numpy(target),
            "target_weight": torch.from_numpy(weight),
            "center": torch.from_numpy(np.asarray(center, dtype=np.float32)),
            "scale": torch.from_numpy(np.asarray(scale, dtype=np.float32)),
            "rotation": float(rotation),
            "score": float(record.score),
            "index": index,
        }
