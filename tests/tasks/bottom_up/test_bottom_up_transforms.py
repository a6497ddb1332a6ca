"""Test-time resizing and training augmentation against the official formulas (HigherHRNet
lib/utils/transforms.py, lib/dataset/transforms/transforms.py), with worked examples."""

import random

import cv2
import numpy as np
import pytest

from hrnet.tasks.bottom_up.transforms import (Augmentation, affine_transform, multi_scale_size, random_affine,
                                              random_flip, resize_align, square_affine, to_image)


@pytest.mark.parametrize("height, width, scale, min_scale, size, center, box", [
    # 640 x 425 at 512: short side 512, long 512 / 425 * 640 = 771.0 rounded up to 832
    (425, 640, 1.0, 1.0, (832, 512), (320, 213), (832 / 512 * 425 / 200, 425 / 200)),
    # portrait 427 x 640: 512 / 427 * 640 = 767.4 -> 768
    (640, 427, 1.0, 1.0, (512, 768), (214, 320), (427 / 200, 768 / 512 * 427 / 200)),
    # scales (0.5, 1, 2): 256 at the smallest, 256 / 425 * 640 = 385.5 -> 448, then x 2 and x 4
    (425, 640, 1.0, 0.5, (896, 512), (320, 213), (896 / 512 * 425 / 200, 425 / 200)),
    (425, 640, 2.0, 0.5, (1792, 1024), (320, 213), (1792 / 1024 * 425 / 200, 425 / 200)),
    # an image smaller than the network's stride: 3 x 5 pixels -> 512 x 896
    (5, 3, 1.0, 1.0, (512, 896), (2, 3), (3 / 200, 896 / 512 * 3 / 200)),
])
def test_multi_scale_size_worked_examples(height, width, scale, min_scale, size, center, box):
    got_size, got_center, got_box = multi_scale_size(height, width, 512, scale, min_scale)
    assert got_size == size and got_center.tolist() == list(center)
    np.testing.assert_allclose(got_box, box, rtol=1e-12)


def _official_affine(center, scale, output_size, inv):
    """get_affine_transform(center, scale, 0, output_size, inv=inv), transcribed from the official code."""
    scale_tmp = scale * 200.0
    src_dir = [0 * 1.0 - (scale_tmp[0] * -0.5) * 0.0, 0 * 0.0 + (scale_tmp[0] * -0.5) * 1.0]
    dst_w, dst_h = output_size
    src, dst = np.zeros((3, 2), np.float32), np.zeros((3, 2), np.float32)
    src[0, :] = center + scale_tmp * np.zeros(2, np.float32)
    src[1, :] = center + src_dir + scale_tmp * np.zeros(2, np.float32)
    dst[0, :] = [dst_w * 0.5, dst_h * 0.5]
    dst[1, :] = np.array([dst_w * 0.5, dst_h * 0.5]) + np.array([0, dst_w * -0.5], np.float32)
    for points in (src, dst):
        d = points[0, :] - points[1, :]
        points[2:, :] = points[1, :] + np.array([-d[1], d[0]], dtype=np.float32)
    return cv2.getAffineTransform(dst, src) if inv else cv2.getAffineTransform(src, dst)


def test_affine_is_the_official_matrix_bit_for_bit():
    rng = np.random.default_rng(0)
    for height, width in rng.integers(1, 2000, size=(300, 2)):
        for scale in (0.5, 1.0, 2.0):
            size, center, box = multi_scale_size(int(height), int(width), 512, scale, 0.5)
            for inverse in (False, True):
                assert np.array_equal(affine_transform(center, box, size, inverse=inverse),
                                      _official_affine(center, box, size, inverse))


def test_affine_and_back_projection_worked_example():
    size, center, box = multi_scale_size(425, 640, 512, 1.0, 1.0)
    k = 832 / (200 * box[0])  # = 512 / 425: the short side fills the input
    expected = [[k, 0, 416 - 320 * k], [0, k, 256 - 213 * k]]
    np.testing.assert_allclose(affine_transform(center, box, size), expected, atol=1e-4)
    points = np.array([[[416.0, 256.0, 0.7, 1.5], [416 + k * 100, 256 - k * 50, 0.2, 3.0]]], np.float32)
    back = to_image(points, center, box, size)
    np.testing.assert_allclose(back[0, :, :2], [[320, 213], [420, 163]], atol=1e-3)
    assert back[0, :, 2:].tolist() == points[0, :, 2:].tolist()  # scores and tags kept
    image = np.zeros((425, 640, 3), np.uint8)
    assert resize_align(image, 512, 1.0, 1.0)[0].shape == (512, 832, 3)


def test_square_affine_worked_examples():
    # a 200 x 200 box around (100, 50) onto 128 x 128: x' = 0.64 x, y' = 0.64 (y - 50) + 64
    np.testing.assert_allclose(square_affine((100, 50), 1.0, 128, 0), [[0.64, 0, 0], [0, 0.64, 32]])
    # rotated by 90 degrees about the output centre (64, 64): (74, 64) unrotated -> (64, 54)
    matrix = square_affine((100, 50), 1.0, 128, 90)
    np.testing.assert_allclose(matrix @ [115.625, 50, 1], [64, 54], atol=1e-9)
    np.testing.assert_allclose(matrix @ [100, 50, 1], [64, 64], atol=1e-9)


def test_random_affine_draws_in_the_official_order_and_masks_the_outside():
    image = np.full((60, 100, 3), 200, np.uint8)
    mask = np.ones((60, 100))
    joints = np.array([[[30.0, 20.0, 2], [70.0, 40.0, 1]]])
    aug = Augmentation(max_rotation=30, min_scale=1.5, max_scale=2.0, max_translate=40)
    np.random.seed(3)
    warped, masks, moved = random_affine(image, [mask, mask], [joints, joints], input_size=64, output_sizes=(16, 32),
                                         aug=aug)
    np.random.seed(3)
    scale = 60 / 200 * (np.random.random() * 0.5 + 1.5)
    rotation = (np.random.random() * 2 - 1) * 30
    bound = int(40 * scale)
    center = np.array([50.0, 30.0]) + [np.random.randint(-bound, bound), np.random.randint(-bound, bound)]
    for points, size in zip(moved, (16, 32)):
        expected = joints[..., :2] @ square_affine(center, scale, size, rotation)[:, :2].T \
            + square_affine(center, scale, size, rotation)[:, 2]
        np.testing.assert_allclose(points[..., :2], expected, rtol=1e-12)
        assert points[..., 2].tolist() == [[2, 1]]
    assert warped.shape == (64, 64, 3) and [m.shape for m in masks] == [(16, 16), (32, 32)]
    # zoomed out 1.5-2x: the image covers the middle of the output only; outside it is ignored (0)
    assert masks[1][0, 0] == 0 and masks[1][16, 16] == 1 and masks[0].dtype == np.float32


def test_random_flip_mirrors_and_swaps_left_and_right():
    image = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)
    mask = np.array([[1.0, 0, 0, 0], [1, 1, 0, 0]])
    joints = np.array([[[1.0, 1.0, 2], [3.0, 0.5, 1], [2.0, 2.0, 0]]])
    random.seed(0)
    same = random_flip(image, [mask], [joints], output_sizes=(4,), flip_index=[0, 2, 1], prob=0.0)
    assert same[0] is image
    flipped, masks, moved = random_flip(image, [mask], [joints], output_sizes=(4,), flip_index=[0, 2, 1], prob=1.0)
    assert np.array_equal(flipped, image[:, ::-1]) and np.array_equal(masks[0], mask[:, ::-1])
    # x -> 4 - 1 - x, then joints 1 and 2 swap places
    assert moved[0].tolist() == [[[2.0, 1.0, 2], [1.0, 2.0, 0], [0.0, 0.5, 1]]]


def test_bad_augmentation_settings_are_named():
    with pytest.raises(ValueError, match="scale_type"):
        Augmentation(scale_type="middle")
    with pytest.raises(ValueError, match="min_scale"):
        Augmentation(min_scale=2.0, max_scale=1.0)
