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
