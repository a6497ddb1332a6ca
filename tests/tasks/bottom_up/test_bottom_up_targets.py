"""Targets and losses against numbers worked out by hand from the official formulas
(HigherHRNet lib/dataset/target_generators/target_generators.py, lib/core/loss.py)."""

import math

import numpy as np
import pytest
import torch

from hrnet.tasks.bottom_up.targets import (LossFactors, ae_loss, bottom_up_loss, gaussian_kernel, heatmap_loss,
                                           heatmap_targets, tag_joints)


def people(*rows):
    """(N, K, 3) joints from per-person lists of (x, y, v)."""
    return np.array(rows, dtype=np.float64)


def test_gaussian_window_is_15_cells_with_its_peak_at_7():
    kernel = gaussian_kernel(2)
    assert kernel.shape == (15, 15) and kernel[7, 7] == 1.0
    assert kernel[7, 9] == pytest.approx(math.exp(-4 / 8)) and kernel[0, 7] == pytest.approx(math.exp(-49 / 8))


def test_heatmap_peak_sits_on_the_truncated_cell_and_is_cut_at_7_cells():
    maps = heatmap_targets(people([(10.7, 5.2, 2), (0, 0, 0)]), 32, sigma=2)
    assert maps.shape == (2, 32, 32) and maps.dtype == np.float32
    assert maps[0, 5, 10] == 1.0  # int(10.7), int(5.2): truncation, not rounding
    assert maps[0, 5, 12] == pytest.approx(math.exp(-4 / 8))
    assert maps[0, 5, 17] == pytest.approx(math.exp(-49 / 8)) and maps[0, 5, 18] == 0
    assert maps[0, 5, 3] == pytest.approx(math.exp(-49 / 8)) and maps[0, 5, 2] == 0
    assert maps[0, 0, 10] == pytest.approx(math.exp(-25 / 8))  # clipped at the top border
    assert not maps[1].any()  # v = 0: no target


def test_truncation_toward_zero_keeps_minus_0_7_and_drops_minus_1_2():
    kept = heatmap_targets(people([(-0.7, 3, 1)]), 16, sigma=2)
    dropped = heatmap_targets(people([(-1.2, 3, 1)]), 16, sigma=2)
    assert kept[0, 3, 0] == 1.0 and not dropped.any()
    assert not heatmap_targets(people([(16.0, 3, 2)]), 16, sigma=2).any()  # x == size is outside


def test_people_combine_by_maximum():
    maps = heatmap_targets(people([(4, 4, 2)], [(6, 4, 2)]), 16, sigma=2)
    assert maps[0, 4, 5] == pytest.approx(math.exp(-1 / 8))  # max(e^-1/8, e^-1/8), not their sum
    assert maps[0, 4, 4] == 1.0 and maps[0, 4, 6] == 1.0


def test_tag_joints_are_packed_flat_indices():
    joints = people([(1, 2, 2), (5.9, 0, 1), (3, 3, 0)], [(0, 0, 0), (7, 7, 2), (9, 1, 2)])
    tags = tag_joints(joints, 8, max_people=3)
    # person 0: joint 0 at (1, 2) -> 0*64 + 2*8 + 1 = 17; joint 1 at (5, 0) -> 64 + 5 = 69; joint 2 invisible
    assert tags[0].tolist() == [[17, 1], [69, 1], [0, 0]]
    # person 1: joint 1 at (7, 7) -> 64 + 63 = 127; joint 2 at x = 9 >= 8: outside
    assert tags[1].tolist() == [[127, 1], [0, 0], [0, 0]] and not tags[2].any()
    assert tag_joints(joints, 8, max_people=3, tag_per_joint=False)[0, 1].tolist() == [5, 1]
    assert tag_joints(joints, 8, max_people=1).shape == (1, 3, 2)  # more people than rows: the rest left out


def test_heatmap_loss_averages_over_every_pixel_of_the_mask():
    predicted = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([[[[1.0, 0], [0, 0]], [[0, 2.0], [0, 0]]]])
    mask = torch.tensor([[[1.0, 0], [1, 1]]])
    # errors 1 (kept) and 4 (masked out): (1 + 0) / 8 pixels-and-joints
    assert heatmap_loss(predicted, target, mask).tolist() == [pytest.approx(1 / 8)]


def test_ae_loss_push_and_pull_by_hand():
    # person 0: joints 0, 1 with tags 1 and 3 (mean 2, variance 1); person 1: joint 1 with tag 5 (variance 0)
    tags = torch.zeros(1, 2 * 4)
    tags[0, 0], tags[0, 5], tags[0, 6] = 1.0, 3.0, 5.0
    joints = torch.tensor([[[[0, 1], [5, 1]], [[6, 1], [0, 0]], [[0, 0], [0, 0]]]])
    push, pull = ae_loss(tags, joints, "exp")
    assert pull.item() == pytest.approx((1 + 0) / 2)
    # sum over i, j of exp(-(m_i - m_j)^2) = 2 + 2 e^-9, minus N = 2, over N(N-1) = 2, halved (float32, as
    # officially: the subtraction of N keeps only a few digits)
    assert push.item() == pytest.approx(0.5 * math.exp(-9), rel=1e-3)
    assert ae_loss(tags, joints, "max")[0].item() == 0.0  # max(0, 1 - 3) = 0
    one = torch.tensor([[[[0, 1], [5, 1]], [[0, 0], [0, 0]]]])
    assert [t.item() for t in ae_loss(tags, one)] == [0.0, 1.0]
    nobody = torch.zeros(1, 2, 2, 2, dtype=torch.long)
    assert [t.item() for t in ae_loss(tags, nobody)] == [0.0, 0.0]


def test_ae_loss_max_type_and_gradients():
    tags = torch.tensor([[0.0, 0.5]], requires_grad=True)
    joints = torch.tensor([[[[0, 1]], [[1, 1]]]])
    push, _ = ae_loss(tags, joints, "max")
    assert push.item() == pytest.approx(((2 + 2 * 0.5) - 2) / 2 * 0.5)
    push.sum().backward()
    assert tags.grad[0, 0] > 0 > tags.grad[0, 1]  # pushing the two means apart


def test_total_loss_weighs_each_output():
    k, r = 2, 4
    outputs = [torch.zeros(1, 2 * k, r, r), torch.ones(1, k, 2 * r, 2 * r)]
    heatmaps = [torch.zeros(1, k, r, r), torch.zeros(1, k, 2 * r, 2 * r)]
    masks = [torch.ones(1, r, r), torch.ones(1, 2 * r, 2 * r)]
    joints = [torch.tensor([[[[0, 1], [0, 0]]]]), torch.zeros(1, 1, k, 2, dtype=torch.long)]
    factors = LossFactors(heatmap=(1.0, 0.5), push=(0.001, 0.001), pull=(0.001, 0.001))
    loss, parts = bottom_up_loss(outputs, heatmaps, masks, joints, num_joints=k, with_ae=(True, False),
                                 factors=factors)
    assert parts["heatmap_0"] == 0.0 and parts["heatmap_1"] == pytest.approx(0.5)
    assert parts["push_0"] == 0.0 and parts["pull_0"] == 0.0 and "push_1" not in parts
    assert loss.item() == pytest.approx(0.5)
