"""Worked examples of the official box -> center/scale, affine crop and augmentation formulas."""

import numpy as np
import pytest

from hrnet.tasks.pose.metadata import COCO_KEYPOINTS, KeypointMetadata
from hrnet.tasks.pose.transforms import (Augmentation, affine_matrix, apply_affine, augment, box_to_center_scale,
                                         crop, flip_joints, half_body_center_scale)

TRIPLE = KeypointMetadata(name="t", keypoints=("a", "left_b", "right_b"), flip_pairs=((1, 2),), skeleton=(),
                          sigmas=(0.1, 0.1, 0.1), upper_body_ids=(0,), lower_body_ids=(1, 2))


class FixedRng:
    """Stands in for np.random.Generator with chosen draws."""

    def __init__(self, normal=0.0, uniform=0.0):
        self.normal, self.uniform = normal, uniform

    def standard_normal(self):
        return self.normal

    def random(self):
        return self.uniform


def test_box_to_center_scale_fits_aspect_ratio_and_pads():
    center, scale = box_to_center_scale((10, 20, 100, 100), 192 / 256)
    # w=100 > 0.75 * 100, so h grows to 100 / 0.75; both / 200 and x 1.25.
    np.testing.assert_allclose(center, [60, 70])
    np.testing.assert_allclose(scale, [100 / 200 * 1.25, 100 / 0.75 / 200 * 1.25], rtol=1e-6)
    center, scale = box_to_center_scale((0, 0, 30, 200), 0.75)  # tall: w grows to 150
    np.testing.assert_allclose(scale, [150 / 200 * 1.25, 200 / 200 * 1.25], rtol=1e-6)


def test_affine_matrix_maps_the_box_onto_the_output():
    center, scale = np.array([60.0, 70.0]), np.array([0.625, 0.8333333])
    matrix = affine_matrix(center, scale, 0, (192, 256))
    # The box's 125-pixel width fills 192 pixels: x' = (x - 60) * 1.536 + 96, y' = (y - 70) * 1.536 + 128.
    points = np.array([[60, 70], [-2.5, 70], [60, 100]])
    np.testing.assert_allclose(apply_affine(points, matrix), [[96, 128], [0, 128], [96, 128 + 30 * 1.536]],
                               atol=1e-3)
    # Rotation by 90 degrees: the point right of the center lands above the output center.
    rotated = affine_matrix(center, scale, 90, (192, 256))
    np.testing.assert_allclose(apply_affine([[122.5, 70]], rotated), [[96, 32]], atol=1e-3)
    inverse = affine_matrix(center, scale, 90, (192, 256), inverse=True)
    np.testing.assert_allclose(apply_affine(apply_affine(points, rotated), inverse), points, atol=1e-3)


def test_crop_moves_pixels_where_the_matrix_says():
    image = np.zeros((200, 300, 3), np.uint8)
    image[100, 150] = 255
    patch, matrix = crop(image, (150.0, 100.0), (0.5, 0.5), 0, (100, 100))  # 100 x 100 pixels, no zoom
    x, y = apply_affine([[150, 100]], matrix)[0]
    assert (x, y) == pytest.approx((50, 50))
    assert patch[50, 50, 0] == 255 and patch.sum() == 255 * 3


def test_flip_joints_mirrors_swaps_and_zeroes_invisible():
    joints = np.array([[10.0, 5], [20, 6], [30, 7]])
    flipped, visible = flip_joints(joints, np.array([1.0, 1, 0]), 100, TRIPLE)
    np.testing.assert_allclose(flipped, [[89, 5], [0, 0], [79, 6]])
    np.testing.assert_allclose(visible, [1, 0, 1])


def test_half_body_picks_upper_or_lower_body():
    joints = np.array([[100 + 2 * i, 50 + i] for i in range(11)] + [[100, 200 + 10 * i] for i in range(6)], float)
    visible = np.ones(17)
    center, scale = half_body_center_scale(joints, visible, COCO_KEYPOINTS, 0.75, FixedRng(normal=0.0))
    # Upper body: box 20 x 10 -> height 20 / 0.75, then / 200 and x 1.5.
    np.testing.assert_allclose(center, [110, 55])
    np.testing.assert_allclose(scale, [20 / 200 * 1.5, 20 / 0.75 / 200 * 1.5], rtol=1e-5)
    center, scale = half_body_center_scale(joints, visible, COCO_KEYPOINTS, 0.75, FixedRng(normal=1.0))
    np.testing.assert_allclose(center, [100, 225])  # randn >= 0.5: the lower body
    assert half_body_center_scale(joints, np.eye(17)[0], COCO_KEYPOINTS, 0.75, FixedRng()) is None


def test_augment_flips_the_image_center_and_joints_together():
    image = np.arange(2 * 5 * 3, dtype=np.uint8).reshape(2, 5, 3)
    joints, visible = np.array([[1.0, 1], [2, 0], [4, 1]]), np.ones(3)
    aug = Augmentation(scale_factor=0.0, rotation_factor=0.0, half_body_prob=0.0)
    out, j, v, c, s, r = augment(image, joints, visible, np.array([1.0, 1]), np.array([1.0, 1]), metadata=TRIPLE,
                                 aug=aug, aspect_ratio=0.75, rng=FixedRng(uniform=0.0))
    np.testing.assert_array_equal(out, image[:, ::-1])
    np.testing.assert_allclose(j, [[3, 1], [0, 1], [2, 0]])
    np.testing.assert_allclose(c, [3, 1])
    assert r == 0.0 and s == pytest.approx([1, 1])
    # uniform 0.7: no rotation (p 0.6) and no flip (p 0.5); normal 1: scale x (1 + 0.35).
    out, j, v, c, s, r = augment(image, joints, visible, np.array([1.0, 1]), np.array([1.0, 1]), metadata=TRIPLE,
                                 aug=Augmentation(half_body_prob=0.0), aspect_ratio=0.75,
                                 rng=FixedRng(normal=1.0, uniform=0.7))
    assert r == 0.0 and s == pytest.approx([1.35, 1.35])
    np.testing.assert_array_equal(out, image)
    # uniform 0.1: rotation N(0,1) x 45 = 45 degrees; normal 3 -> clipped to 90 and scale to 1.35.
    out, j, v, c, s, r = augment(image, joints, visible, np.array([1.0, 1]), np.array([1.0, 1]), metadata=TRIPLE,
                                 aug=Augmentation(half_body_prob=0.0, flip=False), aspect_ratio=0.75,
                                 rng=FixedRng(normal=3.0, uniform=0.1))
    assert r == 90.0 and s == pytest.approx([1.35, 1.35])
