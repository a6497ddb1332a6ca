"""UDP (unbiased data processing, Huang et al. CVPR 2020) as mmpose 0.x computes it: the crop
(`post_transforms.py get_warp_matrix` via `TopDownAffine(use_udp=True)`), the back-projection
(`top_down_eval.py transform_preds(use_udp=True)`) and the refinement (`post_dark_udp`), checked on
worked examples from the formulas and against loops written here from the same formulas."""

import cv2
import numpy as np
import pytest
import torch

from hrnet.tasks.pose.decode import dark_udp_refine, decode_heatmaps, udp_to_original
from hrnet.tasks.pose.transforms import affine_matrix, apply_affine, udp_affine_matrix, udp_crop


def test_udp_crop_maps_the_box_edges_onto_the_first_and_last_pixel_centres():
    # A 200 x 400 px box centred at (100, 50): edges x 0..200, y -150..250 -> 0..191, 0..255.
    matrix = udp_affine_matrix((100.0, 50.0), (1.0, 2.0), 0.0, (192, 256))
    corners = apply_affine(np.array([[0.0, -150.0], [200.0, 250.0], [100.0, 50.0]]), matrix)
    np.testing.assert_allclose(corners, [[0, 0], [191, 255], [95.5, 127.5]], atol=1e-4)
    # By the formula: x' = (W - 1) / S_w * (x - c_x + S_w / 2).
    np.testing.assert_allclose(matrix, [[191 / 200, 0, 0], [0, 255 / 400, 150 * 255 / 400]], atol=1e-6)


@pytest.mark.parametrize("rotation", [-30.0, 45.0, 90.0])
def test_udp_crop_is_the_official_crop_turned_the_other_way(rotation):
    """Same centre; the linear part of mmpose's UDP matrix for angle r is the official crop's for -r,
    scaled per axis by (W - 1) / S_w and (H - 1) / S_h instead of the official W / S_w on both."""
    center, scale, size = (320.0, 240.0), (1.5, 2.0), (192, 256)
    udp = udp_affine_matrix(center, scale, rotation, size)
    official = affine_matrix(center, scale, -rotation, size)
    np.testing.assert_allclose(apply_affine(np.array(center), udp), [(size[0] - 1) / 2, (size[1] - 1) / 2], atol=1e-3)
    official_unit = official[:, :2] / (size[0] / 300.0)
    np.testing.assert_allclose(udp[0, :2] / ((size[0] - 1) / 300.0), official_unit[0], atol=1e-5)
    np.testing.assert_allclose(udp[1, :2] / ((size[1] - 1) / 400.0), official_unit[1], atol=1e-5)


def test_udp_crop_samples_the_image_at_the_matrix():
    image = np.zeros((100, 120, 3), dtype=np.uint8)
    image[40, 60] = 255  # the box centre: it lands on the crop's central pixel centre
    patch, matrix = udp_crop(image, (60.0, 40.0), (0.2, 0.2), 0.0, (41, 41))
    assert patch.shape == (41, 41, 3) and np.unravel_index(patch[..., 0].argmax(), (41, 41)) == (20, 20)
    np.testing.assert_allclose(matrix, udp_affine_matrix((60.0, 40.0), (0.2, 0.2), 0.0, (41, 41)))


def test_udp_back_projection_is_the_inverse_of_the_crop_at_heatmap_resolution():
    center, scale = np.array([[150.0, 220.0]]), np.array([[1.2, 1.6]])
    coords = np.array([[[0.0, 0.0], [47.0, 63.0], [10.25, 30.5]]])
    out = udp_to_original(coords, center, scale, (48, 64))
    size = scale[0] * 200
    np.testing.assert_allclose(out[0, 0], center[0] - size / 2)           # pixel 0 -> the box's top-left edge
    np.testing.assert_allclose(out[0, 1], center[0] + size / 2)           # pixel w-1 -> the bottom-right edge
    np.testing.assert_allclose(out[0, 2], center[0] - size / 2 + [10.25 * 240 / 47, 30.5 * 320 / 63])


def _reference_refine(heatmaps, coords, kernel):
    """post_dark_udp for interior peaks, written as 2-D loops from the formulas."""
    out = coords.astype(np.float64).copy()
    for n, k in np.ndindex(*coords.shape[:2]):
        hm = cv2.GaussianBlur(heatmaps[n, k].astype(np.float32), (kernel, kernel), 0)
        f = np.pad(np.log(np.clip(hm, 0.001, 50)), 1, mode="edge")
        x, y = int(coords[n, k, 0]) + 1, int(coords[n, k, 1]) + 1
        dx, dy = 0.5 * (f[y, x + 1] - f[y, x - 1]), 0.5 * (f[y + 1, x] - f[y - 1, x])
        dxx = f[y, x + 1] - 2 * f[y, x] + f[y, x - 1]
        dyy = f[y + 1, x] - 2 * f[y, x] + f[y - 1, x]
        dxy = 0.5 * (f[y + 1, x + 1] - f[y, x + 1] - f[y + 1, x] + 2 * f[y, x] - f[y, x - 1] - f[y - 1, x]
                     + f[y - 1, x - 1])
        hessian = np.array([[dxx, dxy], [dxy, dyy]]) + np.finfo(np.float32).eps * np.eye(2)
        out[n, k] -= np.linalg.solve(hessian, [dx, dy])
    return out


def _gaussian(width, height, mx, my, sigma):
    x, y = np.arange(width), np.arange(height)[:, None]
    return np.exp(-((x - mx) ** 2 + (y - my) ** 2) / (2 * sigma**2)).astype(np.float32)


def test_dark_udp_refine_matches_the_formulas_and_finds_a_gaussian_peak():
    peaks = [(20.3, 15.7), (7.8, 40.2), (30.0, 52.45)]
    heatmaps = np.stack([_gaussian(48, 64, mx, my, 2.0) for mx, my in peaks])[None]
    heatmaps += np.random.default_rng(0).normal(0, 1e-3, heatmaps.shape).astype(np.float32)
    coords = np.array([[[np.round(mx), np.round(my)] for mx, my in peaks]], dtype=np.float32)
    refined = dark_udp_refine(heatmaps, coords, kernel=11)
    np.testing.assert_allclose(refined, _reference_refine(heatmaps, coords, 11), atol=1e-4)
    # Blurring a Gaussian keeps its centre and the log is a paraboloid: one Newton step lands on it.
    np.testing.assert_allclose(refined[0], peaks, atol=0.03)
    assert dark_udp_refine(heatmaps, coords, kernel=17).shape == (1, 3, 2)


def test_udp_decoding_inverts_udp_encoding_end_to_end():
    """A keypoint in the image -> UDP crop -> heatmap at stride (input-1)/(heatmap-1) -> decode: back."""
    center, scale = np.array([[310.0, 205.0]]), np.array([[1.1, 1.4666667]])
    keypoints = np.array([[300.0, 180.0], [351.3, 260.8], [255.5, 120.25]])
    matrix = udp_affine_matrix(center[0], scale[0], 0.0, (192, 256))
    in_input = apply_affine(keypoints, matrix)
    in_heatmap = in_input / ((np.array([192, 256]) - 1) / (np.array([48, 64]) - 1))
    heatmaps = np.stack([_gaussian(48, 64, x, y, 2.0) for x, y in in_heatmap])[None]
    decoded, scores = decode_heatmaps(torch.from_numpy(heatmaps), center, scale, method="udp", dark_kernel=11)
    np.testing.assert_allclose(decoded[0], keypoints, atol=0.2)  # 0.2 px of the image: 0.04 heatmap cells
    np.testing.assert_allclose(scores[0, :, 0], heatmaps[0].reshape(3, -1).max(axis=1))


def test_udp_decoding_puts_maps_without_a_positive_value_where_mmpose_does():
    heatmaps = np.full((1, 2, 16, 12), -1.0, dtype=np.float32)
    heatmaps[0, 1] = _gaussian(12, 16, 5.2, 7.6, 1.5)
    decoded, scores = decode_heatmaps(heatmaps, np.array([[50.0, 50.0]]), np.array([[0.5, 0.5]]), method="udp",
                                      dark_kernel=3)
    assert scores[0, 0, 0] < 0 and np.all(np.isfinite(decoded))
    ref = dark_udp_refine(heatmaps, np.array([[[-1.0, -1.0], [5.0, 8.0]]]), kernel=3)
    np.testing.assert_allclose(decoded[0], udp_to_original(ref, np.array([[50.0, 50.0]]), np.array([[0.5, 0.5]]),
                                                           (12, 16))[0])
