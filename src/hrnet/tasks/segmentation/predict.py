"""`hrnet predict` for segmentation: images, folders and videos -> colour masks and overlays.

For an image `NAME`, writes NAME_mask.png (class colours), NAME_overlay.png (mask over the image,
with a legend) and NAME_labels.png (train ids, one byte per pixel, for evaluation); for a video,
NAME_overlay.mp4. `predictions.json` lists what was written and the share of pixels per class.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np
import torch
from torch import nn

from ...data.io import VideoWriter, is_video, read_image, read_video, write_image
from ...engine.task import Prediction
from ...engine.trainer import progress
from .classes import ClassList
from .inference import InferenceConfig, predict_labels
from .transforms import IMAGENET_MEAN, IMAGENET_STD, normalize
from .visualize import colorize, overlay


@dataclass
class Segmenter:
    """A model with its classes and inference settings: RGB uint8 (H, W, 3) -> train ids (H, W).

    The prediction is made at the inference resolution (`inference.base_size` and scales) and
    resized to the full input resolution.
    """

    model: nn.Module
    classes: ClassList
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    device: torch.device = torch.device("cpu")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        batch = normalize(image, self.mean, self.std).unsqueeze(0).to(self.device)
        pad_value = [-m / s for m, s in zip(self.mean, self.std)]  # a black pixel, as the official code pads
        labels = predict_labels(self.model.eval(), batch, self.inference, num_classes=self.classes.num_classes,
                                output_size=image.shape[:2], pad_value=pad_value)
        return labels[0].cpu().numpy()


def class_shares(labels: np.ndarray, classes: ClassList) -> dict[str, float]:
    """Fraction of pixels per predicted class (classes with no pixel left out)."""
    counts = np.bincount(labels.ravel(), minlength=classes.num_classes)[: classes.num_classes]
    return {classes.names[c]: round(float(n) / labels.size, 5) for c, n in enumerate(counts) if n}


def _unique_stem(path: Path, used: set[str]) -> str:
    stem, number = path.stem, 1
    while stem in used:
        stem, number = f"{path.stem}_{number}", number + 1
    used.add(stem)
    return stem


def predict_image(segmenter: Segmenter, path: Path, out_dir: Path, stem: str) -> Prediction:
    image = read_image(path)
    labels = segmenter(image)
    files = {"mask": out_dir / f"{stem}_mask.png", "overlay": out_dir / f"{stem}_overlay.png",
             "labels": out_dir / f"{stem}_labels.png"}
    write_image(files["mask"], colorize(labels, segmenter.classes))
    write_image(files["overlay"], overlay(image, labels, segmenter.classes))
    cv2.imwrite(str(files["labels"]), labels.astype(np.uint8))
    outputs = {"classes": class_shares(labels, segmenter.classes), **{k: str(v) for k, v in files.items()}}
    return Prediction(source=str(path), outputs=outputs, picture=str(files["overlay"]))


def predict_video(segmenter: Segmenter, path: Path, out_dir: Path, stem: str,
                  max_frames: int | None = None) -> Prediction:
    frames, fps, count = read_video(path)
    target = out_dir / f"{stem}_overlay.mp4"
    totals = np.zeros(segmenter.classes.num_classes, dtype=np.int64)
    written = 0
    with VideoWriter(target, fps) as writer:
        for frame in _limit(frames, max_frames):
            labels = segmenter(frame)
            totals += np.bincount(labels.ravel(), minlength=segmenter.classes.num_classes)[: len(totals)]
            writer.write(overlay(frame, labels, segmenter.classes))
            written += 1
    shares = {segmenter.classes.names[c]: round(float(n) / max(totals.sum(), 1), 5) for c, n in enumerate(totals) if n}
    return Prediction(source=str(path), outputs={"classes": shares, "frames": written, "overlay": str(target)},
                      picture=str(target))


def _limit(frames: Iterator[np.ndarray], max_frames: int | None) -> Iterable[np.ndarray]:
    for index, frame in enumerate(frames):
        if max_frames is not None and index >= max_frames:
            return
        yield frame


def predict_files(segmenter: Segmenter, inputs: list[Path], out_dir: Path, *,
                  max_frames: int | None = None) -> list[Prediction]:
    """Run on image and video files (folders already expanded); writes pictures + predictions.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    results = []
    for path in progress(inputs, enabled=sys.stderr.isatty(), total=len(inputs), desc="predict", unit="file"):
        path = Path(path)
        stem = _unique_stem(path, used)
        if is_video(path):
            results.append(predict_video(segmenter, path, out_dir, stem, max_frames))
        else:
            results.append(predict_image(segmenter, path, out_dir, stem))
    summary = [{"source": r.source, "picture": r.picture, **r.outputs} for r in results]
    (out_dir / "predictions.json").write_text(json.dumps(summary, indent=2))
    return results
