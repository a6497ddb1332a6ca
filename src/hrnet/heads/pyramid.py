"""HRNetV2p: the HRNetV2 representation pooled into a feature pyramid, for region-based detectors.

Module names follow the HRFPN neck of the official HRNet object-detection code (mmdetection), whose
convs are wrapped in a `ConvModule` (hence `.conv`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .segmentation import concat_branches


class _ConvModule(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class FeaturePyramidHead(nn.Module):
    """Branches -> OrderedDict of `num_levels` maps of `out_channels`, at strides 4, 8, ..., 4*2^(L-1).

    Concatenate the upsampled branches (HRNetV2), reduce with a 1x1 conv, average-pool by 1, 2, 4,
    8, 16, then a 3x3 conv per level. Keys are "0".."L-1", as torchvision's detectors expect.
    """

    def __init__(self, *, in_channels: Sequence[int], out_channels: int = 256, num_levels: int = 5):
        super().__init__()
        self.out_channels = out_channels
        self.strides = [4 * 2**i for i in range(num_levels)]
        self.reduction_conv = _ConvModule(sum(in_channels), out_channels, 1)
        self.fpn_convs = nn.ModuleList(_ConvModule(out_channels, out_channels, 3) for _ in range(num_levels))

    def forward(self, features: list[torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
        x = self.reduction_conv(concat_branches(features, align_corners=False))
        levels = [x] + [F.avg_pool2d(x, kernel_size=2**i, stride=2**i) for i in range(1, len(self.fpn_convs))]
        return OrderedDict((str(i), conv(level)) for i, (conv, level) in enumerate(zip(self.fpn_convs, levels)))
