"""Gaussian heatmap targets with visibility weights, and the target-weighted MSE loss."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn


def gaussian_heatmaps(joints: np.ndarray, visible: np.ndarray, *, input_size: Sequence[int],
                      heatmap_size: Sequence[int], sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Joints (K, 2) in input pixels -> targets (K, h, w) float32 and weights (K, 1) float32.

    As the official `generate_target`: the peak sits on the joint rounded to the nearest heatmap
    cell, the unnormalised Gaussian (peak 1) is cut at the float radius 3 sigma, and a joint whose
    window lies entirely outside the map gets weight 0. The window's corners are `int(mu -+ 3 sigma)`
    with Python's truncation toward zero, exactly as officially: for sigma 1.5 the window is 10
    cells wide (not 9), and a window crossing the top or left border is placed one cell off.
    Sizes are (width, height).
    """
    width, height = int(heatmap_size[0]), int(heatmap_size[1])
    stride = np.asarray(input_size, dtype=np.float64) / np.asarray(heatmap_size, dtype=np.float64)
    weights = (np.asarray(visible, dtype=np.float32) > 0).astype(np.float32)[:, None]
    targets = np.zeros((len(joints), height, width), dtype=np.float32)
    radius = sigma * 3
    size = 2 * radius + 1
    axis = np.arange(0, size, 1, dtype=np.float32)
    centre = size // 2
    gaussian = np.exp(-((axis[None, :] - centre) ** 2 + (axis[:, None] - centre) ** 2) / (2 * sigma**2))
    for k, (x, y) in enumerate(joints):
        if weights[k, 0] == 0:
            continue
        mu_x, mu_y = int(x / stride[0] + 0.5), int(y / stride[1] + 0.5)
        left, top = int(mu_x - radius), int(mu_y - radius)
        right, bottom = int(mu_x + radius + 1), int(mu_y + radius + 1)
        if left >= width or top >= height or right < 0 or bottom < 0:
            weights[k, 0] = 0
            continue
        targets[k, max(0, top):min(bottom, height), max(0, left):min(right, width)] = gaussian[
            max(0, -top):min(bottom, height) - top, max(0, -left):min(right, width) - left]
    return targets, weights


class JointsMSELoss(nn.Module):
    """0.5 * mean squared error between heatmaps, each joint multiplied by its weight (official
    `JointsMSELoss` with USE_TARGET_WEIGHT): joints without a label contribute nothing."""

    def __init__(self, *, use_target_weight: bool = True):
        super().__init__()
        self.use_target_weight = use_target_weight

    def forward(self, output: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor) -> torch.Tensor:
        """output, target: (N, K, h, w); target_weight: (N, K, 1) -> scalar."""
        if self.use_target_weight:
            weight = target_weight.reshape(*target_weight.shape[:2], 1, 1).to(output.dtype)
            output, target = output * weight, target * weight
        return 0.5 * torch.mean((output - target.to(output.dtype)) ** 2)
