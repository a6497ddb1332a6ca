"""Geometry of bottom-up pose: the test-time resize (official `lib/utils/transforms.py`) and the
training augmentation (official `lib/dataset/transforms/transforms.py`).

Test time: the short side becomes `input_size` x scale, the long side is rounded up to a multiple of
64 at the smallest test scale, and the image is warped into that size by the affine of a
(center, scale) box, scale in units of 200 pixels as in all official HRNet code. Training: one
random affine (scale, rotation, translation) maps the image onto the square input and the masks
and joints onto each output resolution, then a random horizontal flip.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

PIXEL_STD = 200.0


def affine_transform(center: Sequence[float], scale: Sequence[float], output_size: Sequence[int], *,
                     inverse: bool = False) -> np.ndarray:
    """The (2, 3) matrix mapping the box (center, scale) onto `output_size` = (width, height), or
    back with `inverse`: official `get_affine_transform` with rotation 0.

    Kept apart from the top-down `pose.transforms.affine_matrix` on purpose: the official code adds
    the center and the half-width in float64 before rounding the points to float32; rounding first
    changes the matrix in its last bit for some image sizes, and the resized image with it.
    """
    center = np.asarray(center, dtype=np.float64)
    src_w = float(scale[0]) * PIXEL_STD
    dst_w, dst_h = float(output_size[0]), float(output_size[1])
    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = center
    src[1] = center + np.array([0.0, src_w * -0.5])
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = np.array([dst_w * 0.5, dst_h * 0.5]) + np.array([0.0, dst_w * -0.5], dtype=np.float32)
    for points in (src, dst):  # the third point: a right angle at the second, counter-clockwise
        d = points[0] - points[1]
        points[2] = points[1] + np.array([-d[1], d[0]], dtype=np.float32)
    return cv2.getAffineTransform(dst, src) if inverse else cv2.getAffineTransform(src, dst)


def multi_scale_size(height: int, width: int, input_size: int, scale: float, min_scale: float
                     ) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    """Official `get_multi_scale_size`: ((w, h) resized, center (2,) int pixels, scale (2,)).

    At the smallest scale the short side is `min_scale x input_size` rounded up to a multiple of
    64 and the long side keeps the aspect ratio, rounded up to a multiple of 64; other scales
    multiply both. E.g. 640 x 425 at input 512: (832, 512)."""
    center = np.array([int(width / 2.0 + 0.5), int(height / 2.0 + 0.5)])
    smallest = int((min_scale * input_size + 63) // 64 * 64)
    if width < height:
        w = int(smallest * scale / min_scale)
        h = int(int((smallest / width * height + 63) // 64 * 64) * scale / min_scale)
        box = np.array([width / PIXEL_STD, h / w * width / PIXEL_STD])
    else:
        h = int(smallest * scale / min_scale)
        w = int(int((smallest / height * width + 63) // 64 * 64) * scale / min_scale)
        box = np.array([w / h * height / PIXEL_STD, height / PIXEL_STD])
    return (w, h), center, box


def resize_align(image: np.ndarray, input_size: int, scale: float, min_scale: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB uint8 (H, W, 3) -> (resized (h, w, 3), center, scale): official `resize_align_multi_scale`
    (bilinear, black border)."""
    size, center, box = multi_scale_size(image.shape[0], image.shape[1], input_size, scale, min_scale)
    return cv2.warpAffine(image, affine_transform(center, box, size), size), center, box


def to_image(points: np.ndarray, center: np.ndarray, scale: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """(..., >=2) points in the resized image of `size` (w, h) -> original pixels (columns 0, 1;
    the rest kept): official `transform_preds`."""
    matrix = affine_transform(center, scale, size, inverse=True)
    out = np.array(points, dtype=np.float32, copy=True)
    flat = out.reshape(-1, out.shape[-1])
    for row in flat:  # one np.dot per point, as officially (a batched product may round differently)
        row[:2] = np.dot(matrix, np.array([row[0], row[1], 1.0]))
    return flat.reshape(out.shape)


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class Augmentation:
    """Official RandomAffineTransform + RandomHorizontalFlip settings (COCO: 30, 0.75, 1.5, short,
    40, 0.5). scale_type "short" fits the short image side to the input, "long" the long side."""

    max_rotation: float = 30.0
    min_scale: float = 0.75
    max_scale: float = 1.5
    scale_type: str = "short"
    max_translate: float = 40.0
    flip: float = 0.5

    def __post_init__(self) -> None:
        if self.scale_type not in ("short", "long"):
            raise ValueError(f"scale_type must be 'short' or 'long', got {self.scale_type!r}")
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(f"need 0 < min_scale <= max_scale, got {self.min_scale}, {self.max_scale}")


def square_affine(center: Sequence[float], scale: float, size: int, rotation: float) -> np.ndarray:
    """(2, 3) matrix: the square box of side 200 x scale around `center` onto size x size pixels,
    rotated by `rotation` degrees about the output center (official `_get_affine_matrix`)."""
    side = PIXEL_STD * scale
    t = np.array([[size / side, 0, size * (-float(center[0]) / side + 0.5)],
                  [0, size / side, size * (-float(center[1]) / side + 0.5)], [0, 0, 1.0]])
    if rotation != 0:
        radians = -rotation * np.pi / 180  # the crop's rotation direction, as officially
        sin, cos = np.sin(radians), np.cos(radians)
        rotate = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1.0]])
        shift, back = np.eye(3), np.eye(3)
        shift[:2, 2], back[:2, 2] = -size / 2, size / 2
        t = back @ (rotate @ (shift @ t))
    return t[:2]


def random_affine(image: np.ndarray, masks: list[np.ndarray], joints: list[np.ndarray], *, input_size: int,
                  output_sizes: Sequence[int], aug: Augmentation
                  ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """image (H, W, 3) uint8, masks [(H, W) float 0/1], joints [(N, K, 3) x, y, v] per output ->
    the warped image (S, S, 3), masks (r, r) float32 (1 = counts; outside the image 0) and joints in
    output pixels (visibility unchanged). Draws from numpy's global RNG in the official order:
    scale, rotation, dx, dy."""
    height, width = image.shape[:2]
    center = np.array((width / 2, height / 2))
    scale = (min(height, width) if aug.scale_type == "short" else max(height, width)) / PIXEL_STD
    scale *= np.random.random() * (aug.max_scale - aug.min_scale) + aug.min_scale
    rotation = (np.random.random() * 2 - 1) * aug.max_rotation
    if aug.max_translate > 0:
        # numpy truncates the float bounds toward zero: randint(-49.4, 49.4) draws from [-49, 48].
        bound = int(aug.max_translate * scale)
        center += [np.random.randint(-bound, bound) if bound else 0 for _ in range(2)]
    out_masks, out_joints = [], []
    for mask, points, size in zip(masks, joints, output_sizes):
        matrix = square_affine(center, scale, size, rotation)
        warped = cv2.warpAffine((mask * 255).astype(np.uint8), matrix, (size, size)) / 255
        out_masks.append((warped > 0.5).astype(np.float32))
        points = np.array(points, dtype=np.float64)
        xy = points[..., :2].reshape(-1, 2)
        moved = np.dot(np.concatenate((xy, xy[:, :1] * 0 + 1), axis=1), matrix.T)
        points[..., :2] = moved.reshape(*points.shape[:-1], 2)
        out_joints.append(points)
    warped_image = cv2.warpAffine(image, square_affine(center, scale, input_size, rotation), (input_size, input_size))
    return warped_image, out_masks, out_joints


def random_flip(image: np.ndarray, masks: list[np.ndarray], joints: list[np.ndarray], *, output_sizes: Sequence[int],
                flip_index: Sequence[int], prob: float) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """With probability `prob` (Python's `random`, as officially): mirror the image and masks, swap
    left/right joints, x -> r - 1 - x at each output resolution r."""
    if random.random() >= prob:
        return image, masks, joints
    image = np.ascontiguousarray(image[:, ::-1])
    masks = [np.ascontiguousarray(m[:, ::-1]) for m in masks]
    flipped = []
    for points, size in zip(joints, output_sizes):
        points = points[:, list(flip_index)].copy()
        points[..., 0] = size - points[..., 0] - 1
        flipped.append(points)
    return image, masks, flipped
