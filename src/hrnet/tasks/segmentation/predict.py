"""Segmentation prediction: a label map and per-class scores at the picture's full resolution.

`SegmentationInference` is what `hrnet.Predictor` drives for this task: `prepare` (in DataLoader
workers) normalises a picture; `run` applies the task's inference settings (whole image, sliding
window or the Cityscapes algorithm, scales, flip; `InferenceConfig`, shared with evaluation) and
resizes the scores to the picture. `hrnet predict` writes, for an image NAME, NAME_mask.png (class
colours), NAME_overlay.png (mask over the image, with a legend) and NAME_labels.png (train ids, one
byte per pixel); for a video NAME_overlay.mp4; `predictions.json` lists them with the class shares.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from ...errors import ConfigError
from ...inference.results import Result, write_atomic
from .classes import ClassList
from .inference import InferenceConfig, predict_scores
from .transforms import IMAGENET_MEAN, IMAGENET_STD, normalize
from .visualize import colorize, overlay


@dataclass(eq=False)
class Segmentation(Result):
    """`labels` (H, W) int64 train ids and `scores` (K, H, W) float32 per-class probabilities (the
    official window/scale scores normalised over classes; None when not kept) at the picture's size."""

    labels: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64), repr=False)
    scores: np.ndarray | None = field(default=None, repr=False)
    classes: ClassList | None = field(default=None, repr=False)

    RESULTS_FILE = "predictions.json"

    def shares(self) -> dict[str, float]:
        """Fraction of pixels per predicted class (classes with no pixel left out)."""
        counts = np.bincount(self.labels.ravel(), minlength=self.classes.num_classes)[: self.classes.num_classes]
        return {self.classes.names[c]: round(float(n) / self.labels.size, 5) for c, n in enumerate(counts) if n}

    def mask(self) -> np.ndarray:
        """The label map in the class colours, RGB uint8 (H, W, 3)."""
        return colorize(self.labels, self.classes)

    def draw(self) -> np.ndarray:
        return overlay(self.image, self.labels, self.classes)

    def segments(self) -> list[dict[str, Any]]:
        """One COCO-style record per present class: category id (train id), name, area and the mask as RLE."""
        from pycocotools import mask as mask_utils

        records = []
        for class_id in np.unique(self.labels):
            if not 0 <= class_id < self.classes.num_classes:
                continue
            rle = mask_utils.encode(np.asfortranarray((self.labels == class_id).astype(np.uint8)))
            records.append({"category_id": int(class_id), "name": self.classes.names[class_id],
                            "area": int(mask_utils.area(rle)),
                            "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")}})
        return records

    def to_json(self) -> dict[str, Any]:
        return {**self._header(), "classes": self.shares(), "segments": self.segments(), "how": self.how}

    # ---- hrnet predict's folder output (see hrnet.inference.writer)

    VIDEO_SUFFIX = "_overlay"

    def files(self, out_dir: Path, stem: str) -> dict[str, str]:
        """NAME_mask.png (class colours), NAME_overlay.png (with a legend), NAME_labels.png (train ids)."""
        return write_files(self, out_dir, stem)

    def records(self, *, files: dict[str, str], index: int = 0) -> list[dict[str, Any]]:
        return [{"source": self.source, "picture": files["picture"], "classes": self.shares(),
                 **{k: v for k, v in files.items() if k != "picture"}}]

    def line(self, picture: str | None = None) -> str:
        return f"{_top_shares(self.shares())} -> {picture}"

    def frame_record(self) -> dict[str, Any]:
        counts = np.bincount(self.labels.ravel(), minlength=self.classes.num_classes)[: self.classes.num_classes]
        return {"counts": counts.tolist(), "names": list(self.classes.names)}

    @classmethod
    def video_records(cls, frames: list[dict], *, source: str, picture: str) -> tuple[list[dict], dict[str, Any]]:
        shares: dict[str, float] = {}
        if frames:
            totals = np.sum([f["counts"] for f in frames], axis=0)
            shares = {name: round(float(n) / max(totals.sum(), 1), 5) for name, n in zip(frames[0]["names"], totals)
                      if n}
        records = [{"source": source, "picture": picture, "classes": shares, "frames": len(frames), "overlay": picture}]
        return records, {"classes": shares, "frames": len(frames), "line": f"{_top_shares(shares)} -> {picture}"}


def _top_shares(shares: dict[str, float]) -> str:
    top = sorted(shares.items(), key=lambda item: -item[1])[:5]
    return ", ".join(f"{name} {100 * share:.1f}%" for name, share in top)


class SegmentationInference:
    """Segmentation for `hrnet.Predictor`: `prepare(rgb) -> (3, H, W)` normalised tensor; `run` ->
    Segmentation per picture (pictures of one size are run as one batch)."""

    result_type = Segmentation
    task = "segmentation"

    def __init__(self, model: nn.Module, *, classes: ClassList, device: torch.device, settings: InferenceConfig,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD, keep_scores: bool = True,
                 how: dict[str, Any] | None = None):
        self.model, self.classes, self.device, self.settings = model, classes, device, settings
        self.mean, self.std, self.keep_scores = tuple(mean), tuple(std), keep_scores
        self.pad_value = [-m / s for m, s in zip(mean, std)]  # a black pixel, as the official code pads
        self.how = {"task": "segmentation", "mode": settings.mode, "scales": list(settings.scales),
                    "flip_test": settings.flip_test, "base_size": settings.base_size, **(how or {})}

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        return normalize(image, self.mean, self.std)

    @torch.no_grad()
    def scores(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised -> (N, K, H, W) probabilities at the input's size."""
        scores = predict_scores(self.model, batch.to(self.device), self.settings, num_classes=self.classes.num_classes,
                                output_size=tuple(batch.shape[-2:]), pad_value=self.pad_value)
        return (scores / scores.sum(dim=1, keepdim=True).clamp_min(1e-30)).float().cpu()

    def run(self, pictures: list[np.ndarray], prepared: list[torch.Tensor], names: list[str],
            **options: Any) -> list[Segmentation]:
        if options:
            raise ConfigError(f"segmentation prediction has no per-call option(s) {', '.join(options)}")
        results: list[Segmentation | None] = [None] * len(pictures)
        by_size: dict[tuple[int, int], list[int]] = {}
        for index, tensor in enumerate(prepared):
            by_size.setdefault(tuple(tensor.shape[-2:]), []).append(index)
        for indices in by_size.values():
            scores = self.scores(torch.stack([prepared[i] for i in indices]))
            for i, score in zip(indices, scores):
                results[i] = Segmentation(source=names[i], image=pictures[i], how=dict(self.how),
                                          labels=score.argmax(dim=0).numpy(), classes=self.classes,
                                          scores=score.numpy() if self.keep_scores else None)
        return results


def settings_with(settings: InferenceConfig, options: dict[str, Any]) -> InferenceConfig:
    """`settings` with Predictor options replaced (names of InferenceConfig fields; unknown ones raise)."""
    known = {f.name for f in dataclasses.fields(InferenceConfig)} - {"align_corners"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown segmentation option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}, "
                          "keep_scores")
    try:
        return dataclasses.replace(settings, **options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"segmentation options: {error}") from None


def write_files(result: Segmentation, out_dir: Path, stem: str) -> dict[str, str]:
    """`hrnet predict`'s files for one image: NAME_mask.png, NAME_overlay.png, NAME_labels.png."""
    files = {"mask": out_dir / f"{stem}_mask.png", "overlay": out_dir / f"{stem}_overlay.png",
             "labels": out_dir / f"{stem}_labels.png"}
    from ...data.io import write_image

    write_atomic(files["mask"], lambda tmp: write_image(tmp, result.mask()))
    result.save(files["overlay"])
    write_atomic(files["labels"], lambda tmp: cv2.imwrite(tmp, result.labels.astype(np.uint8)))
    return {**{k: str(v) for k, v in files.items()}, "picture": str(files["overlay"])}
