"""Pictures of segmentations: colour masks, overlays on the image, and a legend of the classes shown."""

from __future__ import annotations

import cv2
import numpy as np

from .classes import ClassList


def colorize(labels: np.ndarray, classes: ClassList) -> np.ndarray:
    """Train ids (H, W) -> RGB uint8 (H, W, 3) in the class colours (ignore and unknown ids black)."""
    return classes.palette()[np.clip(labels, 0, 255).astype(np.uint8)]


def overlay(image: np.ndarray, labels: np.ndarray, classes: ClassList, *, alpha: float = 0.5,
            legend: bool = True) -> np.ndarray:
    """Blend the colour mask over an RGB uint8 image (H, W, 3); ignored pixels keep the image.

    With `legend`, the names of the classes present are listed in their colours at the top left.
    """
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape[:2]} and labels {labels.shape} differ in size")
    colors = colorize(labels, classes).astype(np.float32)
    labelled = ((labels >= 0) & (labels < classes.num_classes))[..., None]
    blended = np.where(labelled, (1 - alpha) * image.astype(np.float32) + alpha * colors, image)
    out = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    if legend:
        present = [int(c) for c in np.unique(labels) if 0 <= c < classes.num_classes]
        draw_legend(out, [(classes.names[c], classes.colors[c]) for c in present])
    return out


def draw_legend(image: np.ndarray, entries: list[tuple[str, tuple[int, int, int]]], *, scale: float | None = None,
                text_color: tuple[int, int, int] = (255, 255, 255)) -> None:
    """Draw "[swatch] name" rows in place at the top left (scaled to the image height by default)."""
    scale = scale or max(image.shape[0] / 720.0, 0.3)
    row = max(int(22 * scale), 9)
    for index, (name, color) in enumerate(entries):
        top = 4 + index * row
        if top + row > image.shape[0]:
            break
        cv2.rectangle(image, (4, top), (4 + row - 3, top + row - 3), tuple(int(c) for c in color), thickness=-1)
        cv2.putText(image, name, (4 + row + 2, top + row - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale,
                    text_color, max(int(2 * scale), 1), cv2.LINE_AA)
