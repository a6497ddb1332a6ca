"""Person boxes to center/scale, the affine crop, and the official training augmentation.

Conventions of the official code (leoxiaobin/deep-high-resolution-net.pytorch), kept here:
a person is a `center` (x, y) in pixels and a `scale` (w, h) in units of `PIXEL_STD` = 200 pixels;
sizes are (width, height) pairs like OpenCV's; only scale[0] sets the crop, the model input's
aspect ratio sets its height.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ...data.augment import Photometric
from .metadata import KeypointMetadata

PIXEL_STD = 200.0
BOX_PADDING = 1.25  # official `_box2cs`: boxes are enlarged by 25% so limbs are not cut


def box_to_center_scale(box: Sequence[float], aspect_ratio: float, padding: float = BOX_PADDING
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(x, y, w, h) box -> center (2,), scale (2,); the box grows to the input's aspect ratio
    (width / height) before scaling by `padding`."""
    x, y, w, h = (float(v) for v in box[:4])
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w / PIXEL_STD, h / PIXEL_STD], dtype=np.float32)
    if center[0] != -1:
        scale = scale * padding
    return center, scale


def _rotate(point: np.ndarray, radians: float) -> np.ndarray:
    sin, cos = np.sin(radians), np.cos(radians)
    return np.array([point[0] * cos - point[1] * sin, point[0] * sin + point[1] * cos], dtype=np.float32)


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The point that makes (a, b, c) a right angle at b, turned counter-clockwise."""
    d = a - b
    return b + np.array([-d[1], d[0]], dtype=np.float32)


def affine_matrix(center: Sequence[float], scale: Sequence[float], rotation: float,
                  output_size: Sequence[int], *, inverse: bool = False) -> np.ndarray:
    """The (2, 3) matrix mapping the box (center, scale, rotated by `rotation` degrees) onto an
    output of `output_size` = (width, height), or back with `inverse`.

    Built, as in the official `get_affine_transform`, from three point pairs: the center, a point
    half a box width above it (rotated), and the right-angle third point.
    """
    center = np.asarray(center, dtype=np.float32)
    src_w = float(scale[0]) * PIXEL_STD
    dst_w, dst_h = float(output_size[0]), float(output_size[1])
    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = center
    src[1] = center + _rotate(np.array([0.0, -0.5 * src_w], dtype=np.float32), np.pi * rotation / 180)
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = dst[0] + np.array([0.0, -0.5 * dst_w], dtype=np.float32)
    src[2] = _third_point(src[0], src[1])
    dst[2] = _third_point(dst[0], dst[1])
    return cv2.getAffineTransform(dst, src) if inverse else cv2.getAffineTransform(src, dst)


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(..., 2) points -> (..., 2) points under a (2, 3) affine matrix."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def crop(image: np.ndarray, center: Sequence[float], scale: Sequence[float], rotation: float,
         output_size: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) image -> (output_h, output_w, 3) crop (bilinear, black outside) and its matrix."""
    matrix = affine_matrix(center, scale, rotation, output_size)
    out = cv2.warpAffine(image, matrix, (int(output_size[0]), int(output_size[1])), flags=cv2.INTER_LINEAR)
    return out, matrix


def udp_affine_matrix(center: Sequence[float], scale: Sequence[float], rotation: float,
                      output_size: Sequence[int]) -> np.ndarray:
    """UDP's (2, 3) crop matrix (Huang et al., CVPR 2020; mmpose 0.x `get_warp_matrix` as
    `TopDownAffine(use_udp=True)` calls it): the box edges center -/+ scale * 200 / 2 map onto pixel
    centres 0 and W - 1 (H - 1) of the `output_size` = (width, height) input, so the crop is measured
    in unit lengths rather than pixel counts. `rotation` is in degrees and, as in mmpose, turns the
    other way than `affine_matrix`'s for the same angle (only training augmentation rotates).

    x' = (W - 1) / S_w * (cos r (x - c_x) - sin r (y - c_y) + S_w / 2), and y' likewise with sin, cos.
    """
    theta = np.deg2rad(rotation)
    cos, sin = np.cos(theta), np.sin(theta)
    size_input = 2.0 * np.asarray(center, dtype=np.float64)  # mmpose passes the center doubled
    size_target = np.asarray(scale, dtype=np.float64) * PIXEL_STD
    sx = (float(output_size[0]) - 1.0) / size_target[0]
    sy = (float(output_size[1]) - 1.0) / size_target[1]
    matrix = np.zeros((2, 3), dtype=np.float32)
    matrix[0] = (cos * sx, -sin * sx,
                 sx * (-0.5 * size_input[0] * cos + 0.5 * size_input[1] * sin + 0.5 * size_target[0]))
    matrix[1] = (sin * sy, cos * sy,
                 sy * (-0.5 * size_input[0] * sin - 0.5 * size_input[1] * cos + 0.5 * size_target[1]))
    return matrix


def udp_crop(image: np.ndarray, center: Sequence[float], scale: Sequence[float], rotation: float,
             output_size: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """UDP's crop: (H, W, 3) image -> (output_h, output_w, 3) (bilinear, black outside) and its
    `udp_affine_matrix`; the input of the UDP checkpoints (`Weights.decoding == "udp"`)."""
    matrix = udp_affine_matrix(center, scale, rotation, output_size)
    out = cv2.warpAffine(image, matrix, (int(output_size[0]), int(output_size[1])), flags=cv2.INTER_LINEAR)
    return out, matrix


def flip_joints(joints: np.ndarray, visible: np.ndarray, image_width: int, metadata: KeypointMetadata
                ) -> tuple[np.ndarray, np.ndarray]:
    """Joints (K, 2) and visibility (K,) of the horizontally flipped image: x -> width - 1 - x,
    left/right swapped; invisible joints are zeroed as in the official `fliplr_joints`."""
    order = metadata.flip_permutation()
    joints = joints.copy()
    joints[:, 0] = image_width - joints[:, 0] - 1
    joints, visible = joints[order], visible[order]
    return joints * (visible[:, None] > 0), visible.copy()


def half_body_center_scale(joints: np.ndarray, visible: np.ndarray, metadata: KeypointMetadata,
                           aspect_ratio: float, rng: np.random.Generator
                           ) -> tuple[np.ndarray, np.ndarray] | None:
    """A box around the upper or the lower body's visible joints (official `half_body_transform`),
    or None when fewer than two joints remain. Keeps the official draw `randn() < 0.5` (not
    `rand()`), so the upper body is chosen about 69% of the time."""
    upper_ids = set(metadata.upper_body_ids)
    shown = [k for k in range(len(joints)) if visible[k] > 0]
    upper = [joints[k] for k in shown if k in upper_ids]
    lower = [joints[k] for k in shown if k not in upper_ids]
    if rng.standard_normal() < 0.5 and len(upper) > 2:
        selected = upper
    else:
        selected = lower if len(lower) > 2 else upper
    if len(selected) < 2:
        return None
    selected = np.asarray(selected, dtype=np.float32)
    top_left, bottom_right = selected.min(axis=0), selected.max(axis=0)
    w, h = bottom_right - top_left
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w / PIXEL_STD, h / PIXEL_STD], dtype=np.float32) * 1.5
    return selected.mean(axis=0), scale


@dataclass(frozen=True)
class Augmentation:
    """The official COCO/MPII training augmentation (config `DATASET.*`), and the small-data
    options of `hrnet.data.augment` on the person crop (off by default, as officially): colour
    jitter and blur of the crop, a cutout hole in it (the heatmap targets stay: the model learns
    to place occluded joints)."""

    scale_factor: float = 0.35  # scale *= clip(N(1, sf), 1 - sf, 1 + sf)
    rotation_factor: float = 45.0  # degrees: clip(N(0, rf), -2rf, 2rf) ...
    rotation_prob: float = 0.6  # ... with this probability, else 0
    flip: bool = True
    half_body_joints: int = 8  # half body only when more joints than this are visible
    half_body_prob: float = 0.3
    color_jitter: tuple[float, float, float, float] | None = None
    blur: float = 0.0
    cutout: float = 0.0

    def patch(self, patch: np.ndarray) -> np.ndarray:
        """Colour jitter and blur of an RGB uint8 crop (H, W, 3); unchanged when both are off."""
        return Photometric(color_jitter=self.color_jitter, blur=self.blur)(patch)


def augment(image: np.ndarray, joints: np.ndarray, visible: np.ndarray, center: np.ndarray, scale: np.ndarray,
            *, metadata: KeypointMetadata, aug: Augmentation, aspect_ratio: float, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Random half body, scale, rotation and flip, in the official order.
    Returns (image, joints, visible, center, scale, rotation)."""
    if visible.sum() > aug.half_body_joints and rng.random() < aug.half_body_prob:
        half = half_body_center_scale(joints, visible, metadata, aspect_ratio, rng)
        if half is not None:
            center, scale = half
    sf, rf = aug.scale_factor, aug.rotation_factor
    scale = scale * np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf)
    rotation = float(np.clip(rng.standard_normal() * rf, -2 * rf, 2 * rf)) if rng.random() <= aug.rotation_prob else 0.0
    if aug.flip and rng.random() <= 0.5:
        image = image[:, ::-1]
        joints, visible = flip_joints(joints, visible, image.shape[1], metadata)
        center = center.copy()
        center[0] = image.shape[1] - center[0] - 1
    return image, joints, visible, center, scale, rotation
