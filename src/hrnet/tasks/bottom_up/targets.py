"""Bottom-up training targets and losses (official `lib/dataset/target_generators` and `lib/core/loss.py`).

Per output resolution r: a heatmap per keypoint (a Gaussian of sigma pixels at every person's
joint, people combined by max) and, for the associative-embedding loss, each person's visible
joints as flat indices `k * r^2 + y * r + x` into the tag maps. The loss is the masked heatmap MSE
per output plus, where an output has tags, the AE push/pull losses, each times its factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch


def gaussian_kernel(sigma: float) -> np.ndarray:
    """(6 sigma + 3) square window, peak 1 at its centre 3 sigma + 1 (official HeatmapGenerator)."""
    size = 6 * sigma + 3
    x = np.arange(0, size, 1, float)
    y = x[:, None]
    centre = 3 * sigma + 1
    return np.exp(-((x - centre) ** 2 + (y - centre) ** 2) / (2 * sigma**2))


def heatmap_targets(joints: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """Joints (N, K, 3) x, y, v in output pixels -> (K, size, size) float32.

    Joints with v > 0 (labelled, occluded or not) whose truncated position `int(x), int(y)` lies
    in the map get the Gaussian centred on that integer cell, clipped at the border; overlapping
    people combine by maximum. As officially, int() truncates toward zero (x = -0.7 -> 0, kept)."""
    kernel = gaussian_kernel(sigma)
    maps = np.zeros((joints.shape[1], size, size), dtype=np.float32)
    for person in joints:
        for k, (x, y, v) in enumerate(person[:, :3]):
            x, y = int(x), int(y)
            if v <= 0 or x < 0 or y < 0 or x >= size or y >= size:
                continue
            left, top = int(np.round(x - 3 * sigma - 1)), int(np.round(y - 3 * sigma - 1))
            right, bottom = int(np.round(x + 3 * sigma + 2)), int(np.round(y + 3 * sigma + 2))
            c, d = max(0, -left), min(right, size) - left
            a, b = max(0, -top), min(bottom, size) - top
            cc, dd = max(0, left), min(right, size)
            aa, bb = max(0, top), min(bottom, size)
            maps[k, aa:bb, cc:dd] = np.maximum(maps[k, aa:bb, cc:dd], kernel[a:b, c:d])
    return maps


def tag_joints(joints: np.ndarray, size: int, max_people: int, *, tag_per_joint: bool = True) -> np.ndarray:
    """Joints (N, K, 3) in output pixels -> (max_people, K, 2) int64 of (flat tag index, 1).

    Person i's visible in-map joints are packed at the front of row i (official JointsGenerator):
    index k * size^2 + y * size + x (y * size + x with one shared tag map). People beyond
    `max_people` are left out of the tag loss (the official code would fail on them)."""
    out = np.zeros((max_people, joints.shape[1], 2), dtype=np.int64)
    for i, person in enumerate(joints[:max_people]):
        count = 0
        for k, (x, y, v) in enumerate(person[:, :3]):
            x, y = int(x), int(y)
            if v > 0 and 0 <= x < size and 0 <= y < size:
                out[i, count] = ((k * size**2 if tag_per_joint else 0) + y * size + x, 1)
                count += 1
    return out


def heatmap_loss(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, K, r, r) heatmaps, (B, r, r) mask -> (B,): the masked squared error averaged over every
    pixel and keypoint (not over the unmasked ones: official HeatmapLoss)."""
    return ((predicted - target) ** 2 * mask[:, None]).mean(dim=(1, 2, 3))


def ae_loss(tags: torch.Tensor, joints: torch.Tensor, loss_type: str = "exp") -> tuple[torch.Tensor, torch.Tensor]:
    """Associative embedding (Newell et al. 2017), official AELoss. tags (B, T) flattened tag maps,
    joints (B, M, K, 2) from `tag_joints` -> push (B,), pull (B,).

    For the P people with a visible joint: pull = mean over people of the variance of their tags
    around their mean tag; push = sum over pairs i != j of exp(-(m_i - m_j)^2) ("exp") or
    max(0, 1 - |m_i - m_j|) ("max"), divided by P(P - 1) and halved; both 0 without people, push 0
    for one person."""
    pushes, pulls = [], []
    for tag, rows in zip(tags, joints):
        visible = rows[..., 1] > 0
        people = visible.any(dim=1)
        if not people.any():
            pushes.append(tag.new_zeros(()))
            pulls.append(tag.new_zeros(()))
            continue
        visible = visible[people].to(tag.dtype)  # (P, K)
        values = tag[rows[people][..., 0]] * visible  # (P, K)
        count = visible.sum(dim=1)
        means = values.sum(dim=1) / count
        pull = ((((values - means[:, None]) ** 2) * visible).sum(dim=1) / count).mean()
        n = len(means)
        if n == 1:
            pushes.append(tag.new_zeros(()))
            pulls.append(pull)
            continue
        diff = means[None, :] - means[:, None]
        if loss_type == "exp":
            total = torch.exp(-diff**2).sum() - n
        elif loss_type == "max":
            total = torch.clamp(1 - diff.abs(), min=0).sum() - n
        else:
            raise ValueError(f"unknown AE loss type {loss_type!r}; choose exp or max")
        pushes.append(total / ((n - 1) * n) * 0.5)
        pulls.append(pull)
    return torch.stack(pushes), torch.stack(pulls)


@dataclass(frozen=True)
class LossFactors:
    """Official MultiLossFactory settings, one entry per output (COCO: [1, 1], [1e-3, 1e-3] x 2)."""

    heatmap: tuple[float, ...] = (1.0, 1.0)
    push: tuple[float, ...] = (0.001, 0.001)
    pull: tuple[float, ...] = (0.001, 0.001)
    ae_type: str = "exp"


def bottom_up_loss(outputs: Sequence[torch.Tensor], heatmaps: Sequence[torch.Tensor], masks: Sequence[torch.Tensor],
                   joints: Sequence[torch.Tensor], *, num_joints: int, with_ae: Sequence[bool], factors: LossFactors
                   ) -> tuple[torch.Tensor, dict[str, float]]:
    """The official total: sum over outputs of the batch means of heatmap, push and pull losses.

    outputs[i] (B, K [+ T], r_i, r_i); heatmaps[i] (B, K, r_i, r_i); masks[i] (B, r_i, r_i);
    joints[i] (B, M, K, 2). Returns (loss, parts to log)."""
    total = outputs[0].new_zeros(())
    parts: dict[str, float] = {}
    for i, output in enumerate(outputs):
        output = output.float()
        # Factors apply per image, then the batch mean (official MultiLossFactory, then the trainer).
        heat = (heatmap_loss(output[:, :num_joints], heatmaps[i], masks[i]) * factors.heatmap[i]).mean()
        total = total + heat
        parts[f"heatmap_{i}"] = float(heat.detach())
        if with_ae[i]:
            tags = output[:, num_joints:].contiguous().view(output.shape[0], -1)
            push, pull = ae_loss(tags, joints[i], factors.ae_type)
            push, pull = (push * factors.push[i]).mean(), (pull * factors.pull[i]).mean()
            total = total + push + pull
            parts[f"push_{i}"], parts[f"pull_{i}"] = float(push.detach()), float(pull.detach())
    return total, parts
