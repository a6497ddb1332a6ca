"""Pose evaluation: rescoring, OKS NMS, COCO keypoint AP/AR (pycocotools), MPII PCKh.

Faithful to the official `coco.py` / `mpii.py` / `nms.py` evaluation. Every `PoseResult` carries
`how`: the boxes, the flip test, the decoding and the thresholds that produced its numbers.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from hrnet.engine.distributed import all_gather_objects

from .data import PersonRecord
from .decode import decode_heatmaps, flip_test
from .metadata import KeypointMetadata
from .settings import PoseSettings
from .transforms import PIXEL_STD

log = logging.getLogger("hrnet")

COCO_STAT_NAMES = ("AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "AR50", "AR75", "AR_M", "AR_L")
RESCORE_THRESHOLD = 0.2  # official TEST.IN_VIS_THRE
OKS_NMS_THRESHOLD = 0.9  # official TEST.OKS_THRE
PCKH_HEAD_FACTOR = 0.6  # official SC_BIAS: the head size is 0.6 x the head box diagonal
# The official MPII code labels pckAll[11] of thresholds arange(0, 0.51, 0.01) "Mean@0.1"; that
# threshold is 0.11. Kept, so the numbers compare with published ones.
PCKH_LOW_THRESHOLD = float(np.arange(0, 0.5 + 0.01, 0.01)[11])
# The official MPII summary: left and right joints averaged.
PCKH_GROUPS = {group: tuple(f"{side}_{group.lower()}" for side in ("right", "left"))
               for group in ("Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle")}
PCKH_GROUPS = {"Head": ("head_top",), **PCKH_GROUPS}


@dataclass
class PoseResult:
    """Metric values and how they were obtained."""

    metrics: dict[str, float]
    how: dict[str, Any] = field(default_factory=dict)


def rescore(keypoints: np.ndarray, box_scores: np.ndarray, threshold: float = RESCORE_THRESHOLD) -> np.ndarray:
    """Keypoints (P, K, 3) with (x, y, score) and box scores (P,) -> person scores (P,):
    box score x mean of the keypoint scores above `threshold` (0 when none is)."""
    confident = keypoints[..., 2] > threshold
    count = confident.sum(axis=1)
    total = np.where(confident, keypoints[..., 2], 0).sum(axis=1)
    return np.asarray(box_scores) * np.where(count > 0, total / np.maximum(count, 1), 0.0)


def oks_iou(reference: np.ndarray, others: np.ndarray, reference_area: float, other_areas: np.ndarray,
            sigmas: Sequence[float]) -> np.ndarray:
    """OKS between one pose (K, 3) and M poses (M, K, 3), over all keypoints (official `oks_iou`
    without visibility threshold); areas are the persons' crop areas."""
    variances = (np.asarray(sigmas) * 2) ** 2
    d2 = ((others[..., :2] - reference[None, :, :2]) ** 2).sum(axis=2)
    mean_area = (reference_area + np.asarray(other_areas)) / 2 + np.spacing(1)
    e = d2 / variances[None] / mean_area[:, None] / 2
    return np.exp(-e).mean(axis=1)


def oks_nms(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, sigmas: Sequence[float],
            threshold: float = OKS_NMS_THRESHOLD) -> list[int]:
    """Greedy NMS: keep the best-scoring pose, drop those with OKS > threshold to it, repeat."""
    order = np.argsort(scores)[::-1]
    keep = []
    while order.size > 0:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        overlap = oks_iou(keypoints[best], keypoints[rest], areas[best], areas[rest], sigmas)
        order = rest[overlap <= threshold]
    return keep


def coco_results(image_ids: Sequence[int], keypoints: np.ndarray, box_scores: np.ndarray, areas: np.ndarray, *,
                 metadata: KeypointMetadata, category_id: int = 1, rescore_threshold: float = RESCORE_THRESHOLD,
                 nms_threshold: float | None = OKS_NMS_THRESHOLD) -> list[dict[str, Any]]:
    """Per-person predictions -> COCO keypoint results after rescoring and per-image OKS NMS.
    keypoints (P, K, 3) in original pixels; areas (P,) = crop area (scale x 200)^2 products."""
    image_ids = np.asarray(image_ids)
    scores = rescore(keypoints, box_scores, rescore_threshold)
    results = []
    for image_id in dict.fromkeys(image_ids.tolist()):
        index = np.flatnonzero(image_ids == image_id)
        keep = range(len(index))
        if nms_threshold is not None:
            keep = oks_nms(keypoints[index], scores[index], areas[index], metadata.sigmas, nms_threshold)
        for i in index[list(keep)]:
            results.append({"image_id": int(image_id), "category_id": category_id,
                            "keypoints": [round(float(v), 3) for v in keypoints[i].reshape(-1)],
                            "score": float(scores[i])})
    return results


def coco_keypoint_ap(annotations: str | dict, results: list[dict[str, Any]], *, metadata: KeypointMetadata
                     ) -> tuple[dict[str, float], str]:
    """The ten COCO keypoint numbers (AP, AP50, AP75, AP_M, AP_L, AR, ...) from pycocotools with
    the metadata's OKS sigmas, and pycocotools' printed summary."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not results:
        return {name: 0.0 for name in COCO_STAT_NAMES}, "no detections"
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        if isinstance(annotations, dict):
            gt = COCO()
            gt.dataset = annotations
            gt.createIndex()
        else:
            gt = COCO(str(annotations))
        evaluator = COCOeval(gt, gt.loadRes(results), "keypoints")
        evaluator.params.useSegm = None
        evaluator.params.kpt_oks_sigmas = np.asarray(metadata.sigmas)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(v) for name, v in zip(COCO_STAT_NAMES, evaluator.stats)}, log.getvalue()


def head_sizes(joints: np.ndarray, headboxes: np.ndarray | None, metadata: KeypointMetadata) -> tuple[np.ndarray, str]:
    """PCKh normaliser per person (N,): 0.6 x head-box diagonal when head boxes (N, 2, 2) are
    given (official), else the upper-neck-to-head-top length from the labels (the converted
    json carries no head boxes); the second value says which."""
    if headboxes is not None:
        return PCKH_HEAD_FACTOR * np.linalg.norm(headboxes[:, 1] - headboxes[:, 0], axis=1), "head box (official)"
    names = metadata.keypoints
    if "upper_neck" not in names or "head_top" not in names:
        raise ValueError("PCKh needs head boxes or 'upper_neck' and 'head_top' keypoints in the metadata")
    neck, top = names.index("upper_neck"), names.index("head_top")
    return np.linalg.norm(joints[:, top] - joints[:, neck], axis=1), "upper-neck-to-head-top length (no head boxes)"


def mpii_pckh(predictions: np.ndarray, joints: np.ndarray, visible: np.ndarray, sizes: np.ndarray, *,
              metadata: KeypointMetadata, excluded: Sequence[str] = ("pelvis", "thorax")) -> dict[str, float]:
    """PCKh@0.5 per joint, per MPII joint group and Mean, and Mean@0.1 (see PCKH_LOW_THRESHOLD),
    in percent. predictions, joints: (N, K, 2); visible: (N, K); sizes: (N,). Joints named in
    `excluded` do not enter the means, as officially."""
    shown = visible > 0
    scaled = np.linalg.norm(predictions - joints, axis=2) / sizes[:, None]
    count = shown.sum(axis=0)

    def pck(threshold: float) -> np.ndarray:
        hits = ((scaled <= threshold) & shown).sum(axis=0)
        return 100.0 * hits / np.maximum(count, 1)

    weight = count * np.array([name not in excluded for name in metadata.keypoints])
    weight = weight / max(weight.sum(), 1)
    at_half = pck(0.5)
    metrics = {name: float(v) for name, v, c in zip(metadata.keypoints, at_half, count) if c > 0}
    for group, names in PCKH_GROUPS.items():
        members = [metadata.keypoints.index(n) for n in names if n in metadata.keypoints]
        if members and all(count[i] > 0 for i in members):
            metrics[group] = float(np.mean(at_half[members]))
    metrics["Mean"] = float((at_half * weight).sum())
    metrics["Mean@0.1"] = float((pck(PCKH_LOW_THRESHOLD) * weight).sum())
    return metrics


def evaluate_coco(records: Sequence[PersonRecord], keypoints: np.ndarray, *, annotations: str | dict,
                  metadata: KeypointMetadata, how: dict[str, Any] | None = None,
                  rescore_threshold: float = RESCORE_THRESHOLD, nms_threshold: float | None = OKS_NMS_THRESHOLD
                  ) -> PoseResult:
    """COCO keypoint AP/AR of per-person predictions (P, K, 3) (original pixels + peak scores)
    made on `records`' crops: rescoring, OKS NMS, pycocotools."""
    areas = np.array([np.prod(np.asarray(r.scale) * PIXEL_STD) for r in records])
    results = coco_results([r.image_id for r in records], keypoints, np.array([r.score for r in records]), areas,
                           metadata=metadata, rescore_threshold=rescore_threshold, nms_threshold=nms_threshold)
    metrics, summary = coco_keypoint_ap(annotations, results, metadata=metadata)
    how = {**(how or {}), "metric": "COCO keypoint AP/AR (pycocotools)", "persons": len(records),
           "rescoring": f"box score x mean keypoint score above {rescore_threshold}",
           "oks_nms": "off" if nms_threshold is None else f"threshold {nms_threshold}",
           "oks_sigmas": metadata.name, "summary": summary}
    return PoseResult(metrics=metrics, how=how)


def evaluate_pckh(records: Sequence[PersonRecord], predictions: np.ndarray, *, metadata: KeypointMetadata,
                  how: dict[str, Any] | None = None) -> PoseResult:
    """MPII PCKh of predictions (P, K, >=2) in original pixels against the records' labels."""
    joints = np.stack([r.joints for r in records])
    visible = np.stack([r.visible for r in records])
    boxes = [r.extra.get("headbox") for r in records]
    headboxes = np.stack(boxes) if all(b is not None for b in boxes) else None
    sizes, source = head_sizes(joints, headboxes, metadata)
    metrics = mpii_pckh(np.asarray(predictions)[..., :2], joints, visible, sizes, metadata=metadata)
    how = {**(how or {}), "metric": "PCKh@0.5 (official MPII), Mean excludes pelvis and thorax",
           "mean_at_0.1_threshold": PCKH_LOW_THRESHOLD, "head_size": source, "persons": len(records)}
    return PoseResult(metrics=metrics, how=how)


class PoseEvaluator:
    """The engine's Evaluator for pose: runs the model on each batch of crops (with the flip
    test if asked), decodes to original pixels, then scores everything at the end.
    `result` holds the last PoseResult, with `how`."""

    higher_is_better = True

    def __init__(self, *, records: Sequence[PersonRecord], metadata: KeypointMetadata, metric: str,
                 device: torch.device, annotations: str | dict | None = None, settings: PoseSettings = PoseSettings(),
                 boxes: str = "ground truth"):
        if metric not in ("coco", "pckh"):
            raise ValueError(f"unknown pose metric {metric!r}; choose coco or pckh")
        if metric == "coco" and annotations is None:
            raise ValueError("the COCO metric needs the annotation file")
        self.records, self.metadata, self.metric, self.device = records, metadata, metric, device
        self.annotations, self.settings = annotations, settings
        self.flip, self.shift, self.decoding = settings.flip_test, settings.shift_heatmap, settings.decoding
        self.rescore_threshold, self.nms_threshold = settings.rescore_threshold, settings.oks_nms_threshold
        self.main_metric = "AP" if metric == "coco" else "Mean"
        flip = f"on (heatmap shift {'on' if self.shift else 'off'})" if self.flip else "off"
        self.how = {"boxes": boxes, "flip_test": flip, "decoding": self.decoding}
        self.indices: list[int] = []
        self.keypoints: list[np.ndarray] = []
        self.result: PoseResult | None = None

    def update(self, model: nn.Module, batch: dict[str, Any]) -> None:
        images = batch["image"].to(self.device)
        if self.flip:
            heatmaps = flip_test(model, images, self.metadata.flip_permutation(), shift=self.shift)
        else:
            heatmaps = model(images)
        coords, scores = decode_heatmaps(heatmaps.float(), batch["center"].numpy(), batch["scale"].numpy(),
                                         method=self.decoding, dark_kernel=self.settings.dark_kernel)
        self.indices += [int(i) for i in batch["index"]]
        self.keypoints.append(np.concatenate([coords, scores], axis=2))

    def synchronize(self) -> None:
        local = (self.indices, np.concatenate(self.keypoints) if self.keypoints else None)
        gathered = [part for part in all_gather_objects(local) if part[1] is not None]
        self.indices = [i for indices, _ in gathered for i in indices]
        self.keypoints = [kpts for _, kpts in gathered]

    def compute(self) -> dict[str, float]:
        order = np.argsort(self.indices, kind="stable")
        keypoints = np.concatenate(self.keypoints)[order]
        records = [self.records[self.indices[i]] for i in order]
        if self.metric == "coco":
            self.result = evaluate_coco(records, keypoints, annotations=self.annotations, metadata=self.metadata,
                                        how=self.how, rescore_threshold=self.rescore_threshold,
                                        nms_threshold=self.nms_threshold)
        else:
            self.result = evaluate_pckh(records, keypoints, metadata=self.metadata, how=self.how)
        log.info("pose evaluation: %s", ", ".join(f"{k}: {v}" for k, v in self.result.how.items() if k != "summary"))
        return self.result.metrics
