import numpy as np
import pytest
import torch

from hrnet.tasks.pose.targets import JointsMSELoss, gaussian_heatmaps


def test_gaussian_peak_sits_on_the_rounded_joint():
    joints = np.array([[41.0, 82.0], [-40, 10], [-20, 10], [50, 50]])
    targets, weights = gaussian_heatmaps(joints, np.array([1, 1, 1, 0]), input_size=(192, 256),
                                         heatmap_size=(48, 64), sigma=2)
    assert targets.shape == (4, 64, 48)
    # (41 / 4, 82 / 4) = (10.25, 20.5) -> cell (int(10.75), int(21.0)) = (10, 21).
    assert targets[0, 21, 10] == 1.0 and targets[0].max() == 1.0
    assert targets[0, 21, 11] == pytest.approx(np.exp(-1 / 8))
    assert targets[0, 27, 10] == pytest.approx(np.exp(-36 / 8))
    assert targets[0, 28, 10] == 0.0  # cut at 3 sigma
    # Entirely left of the map (x cell int(-9.5) = -9, Gaussian ends at -2): weight 0.
    assert weights[1, 0] == 0 and targets[1].max() == 0
    # Partly inside (cell -4, Gaussian reaches x = 2): kept.
    assert weights[2, 0] == 1 and targets[2, 3, 0] == pytest.approx(np.exp(-16 / 8))
    assert weights[3, 0] == 0 and targets[3].max() == 0  # not labelled


def test_loss_ignores_unweighted_joints():
    target = torch.ones(1, 2, 4, 4)
    output = torch.zeros(1, 2, 4, 4)
    weight = torch.tensor([[[1.0], [0.0]]])
    assert JointsMSELoss()(output, target, weight).item() == pytest.approx(0.5 * 0.5)
    assert JointsMSELoss(use_target_weight=False)(output, target, weight).item() == pytest.approx(0.5)
    output[:, 1] = 7.0  # wrong, but unlabelled
    assert JointsMSELoss()(output, target, weight).item() == pytest.approx(0.25)


def test_non_integer_three_sigma_uses_the_official_float_window():
    """sigma 1.5: official `generate_target` (deep-high-resolution-net.pytorch, lib/dataset/JointsDataset.py)
    keeps tmp_size = 4.5 as a float: the window is int(mu - 4.5) .. int(mu + 5.5), ten cells, with the
    Gaussian's centre at index size // 2 = 5. Worked by hand from those formulas."""
    sigma = 1.5
    joints = np.array([[40.0, 28.0], [8.0, 28.0], [-22.0, 28.0]])  # heatmap cells (10, 7), (2, 7), (-5, 7)
    targets, weights = gaussian_heatmaps(joints, np.ones(3), input_size=(192, 256), heatmap_size=(48, 64),
                                         sigma=sigma)
    g = lambda dx, dy: np.exp(-(dx**2 + dy**2) / (2 * sigma**2))  # noqa: E731
    # Joint 0: window columns int(5.5) = 5 .. int(15.5) - 1 = 14 and rows 2 .. 11 (an int(3*sigma) = 4 window
    # would stop at column 14 too but start at 6, and would end at row 11 with a different cut).
    row = targets[0, 7]
    assert np.flatnonzero(row).tolist() == list(range(5, 15))
    assert row[10] == 1.0 and row[5] == pytest.approx(g(5, 0)) and row[14] == pytest.approx(g(4, 0))
    assert np.flatnonzero(targets[0][:, 10]).tolist() == list(range(2, 12))
    # Joint 1 crosses the left border: int(2 - 4.5) = int(-2.5) = -2 (truncation toward zero), so the
    # official window spans -2 .. 6 and its centre lands on column 3, one cell right of the joint.
    row = targets[1, 7]
    assert np.flatnonzero(row).tolist() == list(range(0, 7))
    assert row.argmax() == 3 and row[0] == pytest.approx(g(3, 0))
    # Joint 2: int(-5 + 5.5) = 0 is not < 0, so the window (ending before column 0) keeps weight 1 officially.
    assert weights[2, 0] == 1 and targets[2].max() == 0.0
