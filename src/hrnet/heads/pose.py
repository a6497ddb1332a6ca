"""HRNetV1 pose head: keypoint heatmaps from the highest-resolution branch (official `pose_hrnet.py`)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn


class PoseHead(nn.Module):
    """Branch 0 of shape (N, C, H/4, W/4) -> (N, K, H/4, W/4) heatmaps, one per keypoint."""

    class_keys = ("final_layer.",)

    def __init__(self, *, in_channels: Sequence[int], num_classes: int, final_conv_kernel: int = 1):
        super().__init__()
        if final_conv_kernel not in (1, 3):
            raise ValueError(f"final_conv_kernel must be 1 or 3, got {final_conv_kernel}")
        self.final_layer = nn.Conv2d(
            in_channels[0], num_classes, kernel_size=final_conv_kernel, padding=final_conv_kernel // 2
        )

    @classmethod
    def options_from_state(cls, state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """Sizes a checkpoint fixes (keys relative to the head): keypoint count and kernel."""
        weight = state.get("final_layer.weight")
        return {} if weight is None else {"num_classes": weight.shape[0], "final_conv_kernel": weight.shape[-1]}

    def init_weights(self) -> None:
        # Official pose_hrnet `init_weights`: the final conv starts near zero.
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.final_layer(features[0])
