"""A small labelled dataset the package draws itself, for `hrnet demo` and tests.

Each scene is a noisy two-colour gradient background with a few overlapping objects: disks
(warm colours), boxes (cool colours), triangles (green) and striped ellipses (any colour, told apart
by texture). Object outlines are marked with the ignore label, as the void borders of Cityscapes.
Colours overlap between classes, so shape and texture matter too. Scenes are written in the generic
layout (`images/SPLIT`, `masks/SPLIT`, `classes.txt`), so training on them is training on a folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ...data.io import write_image
from .classes import ClassList

SCENE_CLASSES = ClassList(
    names=("background", "disk", "box", "triangle", "stripes"),
    colors=((40, 40, 40), (230, 80, 40), (50, 110, 230), (60, 200, 80), (240, 220, 60)),
    ignore_index=255,
)
# Hue ranges (OpenCV hue, 0..179) per object class; None: any hue.
_HUES = {1: (0, 25), 2: (95, 130), 3: (45, 80), 4: None}


def _color(rng: np.random.Generator, hue_range: tuple[int, int] | None) -> tuple[int, int, int]:
    hue = rng.integers(0, 180) if hue_range is None else rng.integers(*hue_range)
    hsv = np.uint8([[[hue, rng.integers(120, 256), rng.integers(110, 256)]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    image = top * (1 - ramp) + bottom * ramp
    return np.broadcast_to(image, (size, size, 3)).astype(np.float32)


def _draw_object(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, label: int) -> None:
    size = image.shape[0]
    shape = np.zeros((size, size), dtype=np.uint8)
    cx, cy = (int(v) for v in rng.integers(size // 8, size - size // 8, 2))
    radius = int(rng.integers(size // 10, size // 4))
    if label == 1:
        cv2.circle(shape, (cx, cy), radius, 1, thickness=-1)
    elif label == 2:
        w, h = (int(v) for v in rng.integers(radius // 2 + 2, radius * 2, 2))
        cv2.rectangle(shape, (cx - w // 2, cy - h // 2), (cx + w // 2, cy + h // 2), 1, thickness=-1)
    elif label == 3:
        angle = rng.uniform(0, 2 * np.pi)
        corners = [(cx + radius * np.cos(angle + k * 2 * np.pi / 3), cy + radius * np.sin(angle + k * 2 * np.pi / 3))
                   for k in range(3)]
        cv2.fillPoly(shape, [np.int32(corners)], 1)
    else:
        axes = (radius, int(rng.integers(radius // 2, radius + 1)))
        cv2.ellipse(shape, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, 1, thickness=-1)
    inside = shape.astype(bool)
    color = np.array(_color(rng, _HUES[label]), dtype=np.float32)
    if label == 4:
        period = int(rng.integers(4, 9))
        stripes = ((np.arange(size)[None, :] + np.arange(size)[:, None]) // period) % 2
        fill = np.where(stripes[..., None] == 1, color, 255 - color)
    else:
        fill = np.broadcast_to(color, image.shape)
    image[inside] = fill[inside]
    mask[inside] = label


def draw_scene(seed: int, *, size: int = 96, max_objects: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """One scene from `seed`: RGB uint8 (size, size, 3) and labels uint8 (size, size), 255 = ignore."""
    rng = np.random.default_rng(seed)
    image = _background(rng, size)
    mask = np.zeros((size, size), dtype=np.uint8)
    for label in rng.integers(1, SCENE_CLASSES.num_classes, int(rng.integers(1, max_objects + 1))):
        _draw_object(rng, image, mask, int(label))
    image += rng.normal(0.0, 12.0, image.shape)
    edges = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((2, 2), np.uint8)) > 0
    mask[edges] = SCENE_CLASSES.ignore_index
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_scenes(root: str | os.PathLike, *, train: int = 240, val: int = 60, size: int = 96,
                 seed: int = 0) -> Path:
    """Write the dataset in the generic layout under `root`; returns `root`. Deterministic in `seed`."""
    root = Path(root)
    for split, count, offset in (("train", train, 0), ("val", val, 1_000_000)):
        (root / "masks" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, mask = draw_scene(seed * 10_000_000 + offset + index, size=size)
            write_image(root / "images" / split / f"{index:05d}.png", image)
            cv2.imwrite(str(root / "masks" / split / f"{index:05d}.png"), mask)
    lines = [f"{name} {' '.join(str(c) for c in color)}" for name, color in zip(SCENE_CLASSES.names,
                                                                                 SCENE_CLASSES.colors)]
    (root / "classes.txt").write_text("\n".join(lines) + "\n")
    return root
