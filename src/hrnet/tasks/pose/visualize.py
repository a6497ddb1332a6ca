"""Pictures of poses: skeletons drawn on the image, and heatmaps over the person crops."""

from __future__ import annotations

import cv2
import numpy as np

from .metadata import KeypointMetadata


def _colours(count: int) -> list[tuple[int, int, int]]:
    """`count` well-separated RGB colours (hues around the circle)."""
    hsv = np.stack([np.linspace(0, 179, count, endpoint=False), np.full(count, 220), np.full(count, 255)], axis=1)
    rgb = cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2RGB)[0]
    return [tuple(int(c) for c in colour) for colour in rgb]


def draw_poses(image: np.ndarray, keypoints: np.ndarray, metadata: KeypointMetadata, *, threshold: float = 0.2,
               boxes: np.ndarray | None = None) -> np.ndarray:
    """A copy of the RGB image (H, W, 3) with each person's skeleton: keypoints (P, K, 3) as
    (x, y, score) in image pixels; keypoints and limbs scoring below `threshold` are left out.
    `boxes` (P, >=4) as (x, y, w, h) are drawn thin when given."""
    canvas = np.ascontiguousarray(image.copy())
    thickness = max(1, round(max(image.shape[:2]) / 300))
    limb_colours = _colours(max(1, len(metadata.skeleton)))
    for p, person in enumerate(np.asarray(keypoints)):
        if boxes is not None:
            x, y, w, h = (int(round(v)) for v in boxes[p][:4])
            cv2.rectangle(canvas, (x, y), (x + w, y + h), (255, 255, 255), 1, cv2.LINE_AA)
        shown = person[:, 2] >= threshold
        for (a, b), colour in zip(metadata.skeleton, limb_colours):
            if shown[a] and shown[b]:
                start = tuple(int(round(v)) for v in person[a, :2])
                end = tuple(int(round(v)) for v in person[b, :2])
                cv2.line(canvas, start, end, colour, thickness + 1, cv2.LINE_AA)
        for k in np.flatnonzero(shown):
            centre = tuple(int(round(v)) for v in person[k, :2])
            cv2.circle(canvas, centre, thickness + 2, (255, 255, 255), -1, cv2.LINE_AA)
            cv2.circle(canvas, centre, thickness + 1, (255, 0, 0), -1, cv2.LINE_AA)
    return canvas


def draw_heatmaps(crop: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """An RGB crop (H, W, 3) blended with the maximum over its heatmaps (K, h, w), upsampled."""
    strongest = np.clip(np.asarray(heatmaps, dtype=np.float32).max(axis=0), 0, 1)
    strongest = cv2.resize(strongest, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR)
    colour = cv2.cvtColor(cv2.applyColorMap((strongest * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(crop, 0.5, colour, 0.5, 0)
