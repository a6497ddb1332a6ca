"""COCO box and mask AP through pycocotools: detections -> COCO results -> the twelve numbers.

Under DDP each rank detects its shard of the images; `CocoEvaluator.synchronize` gathers every
rank's results (torch.distributed.all_gather_object) so that every rank computes the same numbers.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import nn

from hrnet.engine.distributed import all_gather_objects

from .data import check_ground_truth, read_instances
from .tta import detection_flip

# The order of COCOeval.stats.
METRIC_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
                "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")
MASK_THRESHOLD = 0.5


def load_coco(path: str | os.PathLike) -> COCO:
    """pycocotools' COCO index of a ground-truth json, without its prints.

    Annotation ids are renumbered 1..N when one is 0 or repeated: COCOeval marks a detection as
    matched by storing the ground truth's id, so a ground truth with id 0 could never be matched
    (labelme's export starts at 0).
    """
    data = read_instances(path)
    check_ground_truth(data, path)
    ids = [ann.get("id") for ann in data["annotations"]]
    if 0 in ids or None in ids or len(set(ids)) != len(ids):
        for number, ann in enumerate(data["annotations"], start=1):
            ann["id"] = number
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def to_coco_results(output: dict[str, torch.Tensor], image_id: Any,
                    category_ids: Sequence[int] | None = None) -> list[dict]:
    """One image's detector output -> COCO results (bbox as x, y, width, height; masks as RLE).

    category_ids[label - 1] is the json category of a label (label 0 is the background); None
    keeps the label as the category.
    """
    boxes = output["boxes"].detach().cpu().float()
    if len(boxes) == 0:
        return []
    xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()
    labels = output["labels"].tolist()
    scores = output["scores"].tolist()
    categories = [category_ids[label - 1] if category_ids is not None else label for label in labels]
    results = [{"image_id": image_id, "category_id": category, "bbox": [round(v, 2) for v in box],
                "score": round(score, 5)} for box, category, score in zip(xywh, categories, scores)]
    if "masks" in output:
        binary = (output["masks"][:, 0] > MASK_THRESHOLD).cpu().numpy().astype(np.uint8)
        for result, mask in zip(results, binary):
            rle = mask_utils.encode(np.asfortranarray(mask))
            rle["counts"] = rle["counts"].decode("ascii")
            result["segmentation"] = rle
    return results


def coco_metrics(gt: COCO, results: list[dict], *, iou_type: str = "bbox",
                 image_ids: Sequence[Any] | None = None) -> dict[str, float]:
    """The twelve COCO numbers (AP, AP50, ..., AR_large) of `results` against `gt`.

    iou_type: "bbox" or "segm". image_ids: evaluate these images only (default: all of `gt`).
    pycocotools reports -1 for a size range without ground truth. No results gives zeros.
    """
    if not results:
        return {name: 0.0 for name in METRIC_NAMES}
    with contextlib.redirect_stdout(io.StringIO()):
        detections = gt.loadRes(results)
        evaluation = COCOeval(gt, detections, iouType=iou_type)
        if image_ids is not None:
            evaluation.params.imgIds = sorted(set(image_ids))
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {name: float(value) for name, value in zip(METRIC_NAMES, evaluation.stats)}


def gather(items: list) -> list:
    """Concatenate every process's list, in rank order (this list alone without a process group)."""
    return [item for shard in all_gather_objects(items) for item in shard]


class CocoEvaluator:
    """The engine's Evaluator for detection: box AP (main metric "AP"), and with `masks` mask AP
    ("mask_AP", ...). Batches are (images, targets) as `data.collate` makes them.
    """

    main_metric = "AP"
    higher_is_better = True

    def __init__(self, *, annotations: str | os.PathLike | COCO, category_ids: Sequence[int],
                 masks: bool = False, device: torch.device | str = "cpu", flip: bool = False):
        self.gt = annotations if isinstance(annotations, COCO) else load_coco(Path(annotations))
        self.category_ids = list(category_ids)
        self.masks = masks
        self.device = torch.device(device)
        self.flip = flip
        self.how = {"flip": "image and mirror, boxes concatenated, class-wise NMS (mmdet DetTTAModel)" if flip
                    else "off", "metric": "COCO AP (pycocotools)" + (" box and mask" if masks else " box")}
        self.results: list[dict] = []
        self.image_ids: list[Any] = []

    def update(self, model: nn.Module, batch: tuple[list[torch.Tensor], list[dict]]) -> None:
        images, targets = batch
        images = [image.to(self.device) for image in images]
        outputs = detection_flip(model, images) if self.flip else model(images)
        for output, target in zip(outputs, targets):
            self.image_ids.append(target["image_id"])
            self.results += to_coco_results(output, target["image_id"], self.category_ids)

    def synchronize(self) -> None:
        self.results = gather(self.results)
        self.image_ids = gather(self.image_ids)

    def compute(self) -> dict[str, float]:
        metrics = coco_metrics(self.gt, self.results, iou_type="bbox", image_ids=self.image_ids)
        if self.masks:
            segm = coco_metrics(self.gt, self.results, iou_type="segm", image_ids=self.image_ids)
            metrics.update({f"mask_{name}": value for name, value in segm.items()})
        return metrics
