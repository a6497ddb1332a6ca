"""Residual blocks of HRNet (the ResNet basic block and bottleneck), with the official module names."""

from __future__ import annotations

import torch
from torch import nn

# Official HRNet code builds BatchNorm with momentum 0.1 (PyTorch's default).
BN_MOMENTUM = 0.1


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv_bn(in_channels: int, out_channels: int, *, kernel: int, stride: int = 1, relu: bool) -> nn.Sequential:
    """Conv (no bias) + BatchNorm (+ ReLU): the unit of transitions and fusion layers."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection. (N, C_in, H, W) -> (N, C, H/stride, W/stride)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, *, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += residual  # in place: BatchNorm's backward does not need its output
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) with a residual. (N, C_in, H, W) -> (N, 4C, H/stride, W/stride)."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, *, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(channels, channels * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += residual
        return self.relu(out)


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


def make_layer(block: str, in_channels: int, channels: int, num_blocks: int, *, stride: int = 1) -> nn.Sequential:
    """`num_blocks` blocks; the first projects the residual (1x1 conv + BN) when the shape changes."""
    block_type = BLOCKS[block]
    out_channels = channels * block_type.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM),
        )
    layers = [block_type(in_channels, channels, stride=stride, downsample=downsample)]
    layers += [block_type(out_channels, channels) for _ in range(num_blocks - 1)]
    return nn.Sequential(*layers)
