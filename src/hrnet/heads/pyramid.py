"""HRNetV2p: the HRNetV2 representation pooled into a feature pyramid, for region-based detectors.

Module names, layers and initialisation follow the HRFPN neck of the official HRNet-Object-Detection
code (`mmdet/models/necks/hrfpn.py` there): `reduction_conv.0` (a 1x1 conv with bias in a
Sequential), `fpn_conv.{i}` (3x3 convs with bias), kaiming-normal weights with a=1 and zero biases.
mmdetection 2.x's HRFPN wraps the same convs in ConvModules (`reduction_conv.conv`,
`fpn_convs.{i}.conv`); `hrnet.layouts.mmdet` maps those names.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .segmentation import concat_branches


class FeaturePyramidHead(nn.Module):
    """Branches -> OrderedDict of `num_levels` maps of `out_channels`, at strides 4, 8, ..., 4*2^(L-1).

    Concatenate the upsampled branches (HRNetV2, bilinear without aligned corners), reduce with a
    1x1 conv, average-pool by 1, 2, 4, 8, 16, then a 3x3 conv per level. Keys are "0".."L-1", as
    torchvision's detectors expect.
    """

    def __init__(self, *, in_channels: Sequence[int], out_channels: int = 256, num_levels: int = 5):
        super().__init__()
        self.out_channels = out_channels
        self.strides = [4 * 2**i for i in range(num_levels)]
        self.reduction_conv = nn.Sequential(nn.Conv2d(sum(in_channels), out_channels, kernel_size=1))
        self.fpn_conv = nn.ModuleList(nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
                                      for _ in range(num_levels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official HRFPN `init_weights`: kaiming_normal_(a=1) weights, zero biases."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=1)
                nn.init.zeros_(module.bias)

    def forward(self, features: list[torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
        x = self.reduction_conv(concat_branches(features, align_corners=False))
        levels = [x] + [F.avg_pool2d(x, kernel_size=2**i, stride=2**i) for i in range(1, len(self.fpn_conv))]
        return OrderedDict((str(i), conv(level)) for i, (conv, level) in enumerate(zip(self.fpn_conv, levels)))
