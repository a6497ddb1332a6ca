"""COCO keypoint AP/AR of bottom-up predictions, as the official `COCODataset.evaluate`: every person
found is a result (no rescoring, no OKS NMS) scored by its mean keypoint value; pycocotools keeps
the 20 best of each image."""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
from torch import nn

from hrnet.engine.distributed import all_gather_objects

from ..pose.evaluate import PoseResult, coco_keypoint_ap
from ..pose.metadata import KeypointMetadata
from .inference import BottomUpSettings, predict_people

log = logging.getLogger("hrnet")

ASSIGNMENT = "scipy.optimize.linear_sum_assignment (official: munkres; tied costs may be assigned differently)"


def coco_results(image_id: int, keypoints: np.ndarray, scores: np.ndarray, category_id: int = 1
                 ) -> list[dict[str, Any]]:
    """One image's people (P, K, 3) and scores (P,) -> COCO keypoint results."""
    return [{"image_id": int(image_id), "category_id": category_id,
             "keypoints": [float(v) for v in person.reshape(-1)], "score": float(score)}
            for person, score in zip(keypoints, scores)]


class BottomUpEvaluator:
    """The engine's Evaluator: runs `predict_people` on each image of a batch (a list of
    {image, image_id} samples) and scores every result at the end with pycocotools. `result`
    holds the last PoseResult, whose `how` records the protocol."""

    main_metric = "AP"
    higher_is_better = True

    def __init__(self, *, annotations: str | dict, metadata: KeypointMetadata, settings: BottomUpSettings):
        self.annotations, self.metadata, self.settings = annotations, metadata, settings
        self.results: list[dict[str, Any]] = []
        self.images = 0
        self.result: PoseResult | None = None

    def update(self, model: nn.Module, batch: Sequence[dict[str, Any]]) -> None:
        for sample in batch:
            keypoints, scores = predict_people(model, sample["image"], self.settings, metadata=self.metadata)
            self.results += coco_results(sample["image_id"], keypoints, scores)
            self.images += 1

    def synchronize(self) -> None:
        gathered = all_gather_objects((self.results, self.images))
        self.results = [r for part, _ in gathered for r in part]
        self.images = sum(count for _, count in gathered)

    def compute(self) -> dict[str, float]:
        metrics, summary = coco_keypoint_ap(self.annotations, self.results, metadata=self.metadata)
        how = {"metric": "COCO keypoint AP/AR (pycocotools), every person kept (no rescoring, no OKS NMS)",
               "protocol": "official HigherHRNet test (tools/valid.py)", **self.settings.describe(),
               "assignment": ASSIGNMENT, "images": self.images, "people": len(self.results),
               "oks_sigmas": self.metadata.name, "summary": summary}
        self.result = PoseResult(metrics=metrics, how=how)
        log.info("bottom-up evaluation: %s", ", ".join(f"{k}: {v}" for k, v in how.items() if k != "summary"))
        return metrics
