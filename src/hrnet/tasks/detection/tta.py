"""Test-time flip for the detectors: detect on each image and on its mirror, map the mirror's
boxes (and masks) back, merge.

The merge is mmdetection 3.x's `DetTTAModel` (mmdet/models/test_time_augs/det_tta.py): the
detections of both views are concatenated and reduced by class-wise NMS (`batched_nms`), then the
best `max_per_img` are kept. Here the NMS threshold and the count default to the detector's own
test settings (torchvision `roi_heads.nms_thresh`, 0.5, and `detections_per_img`, 100; mmdet's
example config uses the same 0.5 and 100), so flipping changes the evidence, not the post-processing.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.ops import batched_nms


def flip_boxes(boxes: torch.Tensor, width: int) -> torch.Tensor:
    """(K, 4) x1, y1, x2, y2 boxes of an image `width` pixels wide, mirrored left-right (x -> W - x,
    the convention of `data.hflip` and of mmdet's `bbox_flip`)."""
    flipped = boxes.clone()
    flipped[:, 0] = width - boxes[:, 2]
    flipped[:, 2] = width - boxes[:, 0]
    return flipped


def merge_detections(views: list[dict[str, torch.Tensor]], *, iou_threshold: float, max_detections: int
                     ) -> dict[str, torch.Tensor]:
    """Concatenate the detections of several views of one image (already in its coordinates) and
    keep the class-wise NMS survivors, best score first, at most `max_detections`."""
    merged = {key: torch.cat([view[key] for view in views]) for key in views[0]}
    keep = batched_nms(merged["boxes"].float(), merged["scores"].float(), merged["labels"], iou_threshold)
    keep = keep[:max_detections]
    return {key: value[keep] for key, value in merged.items()}


@torch.no_grad()
def detection_flip(model: nn.Module, images: list[torch.Tensor], *, iou_threshold: float | None = None,
                   max_detections: int | None = None) -> list[dict[str, torch.Tensor]]:
    """What `model(images)` returns (per image: boxes (K, 4), labels (K,), scores (K,), and masks
    (K, 1, H, W) for Mask R-CNN), from the images and their mirrors merged (see the module text).
    `model` is a torchvision detector in eval mode; images are (3, H, W) tensors."""
    roi_heads: Any = getattr(model, "roi_heads", None)
    if iou_threshold is None:
        iou_threshold = float(getattr(roi_heads, "nms_thresh", 0.5))
    if max_detections is None:
        max_detections = int(getattr(roi_heads, "detections_per_img", 100))
    outputs = model(images)
    mirrored = model([image.flip(-1) for image in images])
    merged = []
    for image, plain, flipped in zip(images, outputs, mirrored):
        back = dict(flipped)
        back["boxes"] = flip_boxes(flipped["boxes"], image.shape[-1])
        if "masks" in back:
            back["masks"] = flipped["masks"].flip(-1)
        merged.append(merge_detections([plain, back], iou_threshold=iou_threshold, max_detections=max_detections))
    return merged
