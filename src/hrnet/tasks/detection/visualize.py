"""Pictures of detections: coloured boxes labelled "class score", and translucent instance masks."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
from matplotlib import colormaps

MASK_ALPHA = 0.45


def label_color(label: int) -> tuple[int, int, int]:
    """A stable, distinct RGB colour per class label (matplotlib's tab20)."""
    r, g, b, _ = colormaps["tab20"](label % 20)
    return int(r * 255), int(g * 255), int(b * 255)


def _ink(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black text on light label colours, white on dark ones (Rec. 601 luma)."""
    r, g, b = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (255, 255, 255)


def _caption(label: int, score: float | None, class_names: Sequence[str] | None) -> str:
    name = class_names[label - 1] if class_names and 0 < label <= len(class_names) else str(label)
    return name if score is None else f"{name} {score:.2f}"


def draw_detections(image: np.ndarray, boxes: np.ndarray, labels: Sequence[int], *,
                    scores: Sequence[float] | None = None, masks: np.ndarray | None = None,
                    class_names: Sequence[str] | None = None) -> np.ndarray:
    """Draw on a copy of `image` (H, W, 3) RGB uint8.

    boxes: (K, 4) x1y1x2y2 pixels; labels: (K,) 1..C (class_names[label - 1] names them);
    scores: (K,) or None; masks: (K, H, W) bool/0-1 or None. Returns the (H, W, 3) picture.
    """
    picture = image.copy()
    if masks is not None:
        for mask, label in zip(masks, labels):
            region = np.asarray(mask).astype(bool)
            colour = np.array(label_color(int(label)), np.float32)
            picture[region] = (picture[region] * (1 - MASK_ALPHA) + colour * MASK_ALPHA).astype(np.uint8)
    thickness = max(1, round(max(image.shape[:2]) / 400))
    scale = 0.4 * thickness
    for index, (box, label) in enumerate(zip(np.asarray(boxes).reshape(-1, 4), labels)):
        colour = label_color(int(label))
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(picture, (x1, y1), (x2, y2), colour, thickness)
        text = _caption(int(label), None if scores is None else float(scores[index]), class_names)
        (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(y1 - height - baseline, 0)
        cv2.rectangle(picture, (x1, top), (x1 + width, top + height + baseline), colour, -1)
        cv2.putText(picture, text, (x1, top + height), cv2.FONT_HERSHEY_SIMPLEX, scale, _ink(colour), 1,
                    cv2.LINE_AA)
    return picture
