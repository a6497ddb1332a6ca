"""Decoding, flip test and back-projection on heatmaps with known peaks, against numbers worked by
hand from the official formulas (`get_max_preds`, `get_final_preds`, `flip_back`, SHIFT_HEATMAP,
`transform_preds`)."""

import numpy as np
import pytest
import torch

from hrnet.tasks.pose.decode import (argmax_coords, dark_refine, decode_heatmaps, flip_back, flip_test,
                                     quarter_offset)


def peak_map(x, y, value=1.0, neighbours=None, size=(64, 48)):
    heatmaps = np.zeros((1, 1, *size), np.float32)
    heatmaps[0, 0, y, x] = value
    for (dx, dy), v in (neighbours or {}).items():
        heatmaps[0, 0, y + dy, x + dx] = v
    return heatmaps


def test_quarter_offset_moves_towards_the_higher_neighbour():
    hm = peak_map(10, 20, neighbours={(1, 0): 0.5, (-1, 0): 0.2, (0, -1): 0.6, (0, 1): 0.3})
    coords, maxvals = argmax_coords(hm)
    assert coords[0, 0].tolist() == [10, 20] and maxvals[0, 0, 0] == 1.0
    # x: 0.5 - 0.2 > 0 -> +0.25; y: hm[21] - hm[19] = 0.3 - 0.6 < 0 -> -0.25.
    assert quarter_offset(hm, coords)[0, 0].tolist() == [10.25, 19.75]


@pytest.mark.parametrize("x, y, moved", [
    (1, 20, False),   # official test is 1 < px: column 1 keeps its integer position in both axes
    (2, 20, True),
    (46, 20, True),   # px < width - 1 = 47
    (47, 20, False),
    (10, 1, False),
    (10, 62, True),
])
def test_quarter_offset_only_strictly_inside(x, y, moved):
    hm = peak_map(x, y, neighbours={(-1, 0): 0.5, (0, -1): 0.5})
    coords = quarter_offset(hm, argmax_coords(hm)[0])[0, 0]
    assert coords.tolist() == ([x - 0.25, y - 0.25] if moved else [x, y])


def test_non_positive_peak_goes_to_the_origin():
    hm = -np.ones((1, 1, 8, 8), np.float32)
    hm[0, 0, 3, 5] = -0.5
    coords, maxvals = argmax_coords(hm)
    assert coords[0, 0].tolist() == [0, 0] and maxvals[0, 0, 0] == -0.5


def test_back_projection_to_original_pixels():
    hm = peak_map(10, 20, neighbours={(1, 0): 0.5, (-1, 0): 0.2, (0, -1): 0.6, (0, 1): 0.3})
    # A 200 x 266.7 pixel box at (100, 200) seen by a 48 x 64 heatmap: 200 / 48 pixels per cell,
    # the heatmap center (24, 32) on the box center.
    keypoints, scores = decode_heatmaps(hm, np.array([[100.0, 200.0]]), np.array([[1.0, 4 / 3]]))
    step = 200 / 48
    np.testing.assert_allclose(keypoints[0, 0], [100 + (10.25 - 24) * step, 200 + (19.75 - 32) * step], rtol=1e-5)
    assert scores[0, 0, 0] == 1.0
    integer, _ = decode_heatmaps(hm, np.array([[100.0, 200.0]]), np.array([[1.0, 4 / 3]]), method="argmax")
    np.testing.assert_allclose(integer[0, 0], [100 + (10 - 24) * step, 200 + (20 - 32) * step], rtol=1e-5)


def test_flip_back_mirrors_and_swaps_channels():
    heatmaps = torch.arange(2 * 3 * 1 * 4, dtype=torch.float32).reshape(2, 3, 1, 4)
    back = flip_back(heatmaps, [0, 2, 1])
    assert back[0, 0, 0].tolist() == [3, 2, 1, 0]
    assert back[0, 1, 0].tolist() == [11, 10, 9, 8]  # channel 2 mirrored
    assert back[1, 2, 0].tolist() == [19, 18, 17, 16]  # channel 1 of sample 1 mirrored


def test_flip_test_averages_with_the_shifted_mirror():
    # A "model" that returns its input: the mirrored pass, flipped back, is the input with channels
    # 1 and 2 swapped, then shifted one column right (column 0 kept), then averaged with the input.
    x = torch.tensor([[[[1.0, 2, 3, 4]], [[10, 20, 30, 40]], [[100, 200, 300, 400]]]])
    out = flip_test(torch.nn.Identity(), x, [0, 2, 1])
    assert out[0, 0, 0].tolist() == [(1 + 1) / 2, (2 + 1) / 2, (3 + 2) / 2, (4 + 3) / 2]
    assert out[0, 1, 0].tolist() == [(10 + 100) / 2, (20 + 100) / 2, (30 + 200) / 2, (40 + 300) / 2]
    no_shift = flip_test(torch.nn.Identity(), x, [0, 2, 1], shift=False)
    assert no_shift[0, 2, 0].tolist() == [(100 + 10) / 2, (200 + 20) / 2, (300 + 30) / 2, (400 + 40) / 2]


def gaussian_map(mx, my, sigma=2.0, size=(64, 48)):
    ys, xs = np.mgrid[0:size[0], 0:size[1]]
    return np.exp(-((xs - mx) ** 2 + (ys - my) ** 2) / (2 * sigma**2))[None, None].astype(np.float32)


def test_dark_recovers_a_sub_pixel_gaussian_center():
    hm = gaussian_map(20.3, 30.6)
    coords = argmax_coords(hm)[0]
    assert coords[0, 0].tolist() == [20, 31]
    assert quarter_offset(hm, coords)[0, 0].tolist() == [20.25, 30.75]
    np.testing.assert_allclose(dark_refine(hm, coords)[0, 0], [20.3, 30.6], atol=0.02)
    # Near the border (x > w - 3) DARK keeps the integer peak, as the official `taylor`.
    edge = gaussian_map(46.2, 30.0)
    assert dark_refine(edge, argmax_coords(edge)[0])[0, 0].tolist() == [46, 30]


def test_unknown_decoding_is_an_error():
    with pytest.raises(ValueError, match="unknown decoding"):
        decode_heatmaps(np.zeros((1, 1, 4, 4)), np.zeros((1, 2)), np.ones((1, 2)), method="soft")
