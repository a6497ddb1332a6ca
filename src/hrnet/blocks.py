"""Blocks of HRNet (the ResNet basic block and bottleneck) and of Lite-HRNet (its stem, the ShuffleNet
unit, conditional channel weighting, the iterative neck), with the official module names.

The Lite-HRNet blocks follow HRNet/Lite-HRNet `models/backbones/litehrnet.py` (mmpose's copy is the
same): their conv + BN (+ activation) units are mmcv `ConvModule`s, named `conv` / `bn` here too.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
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


def shuffle_halves(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """ShuffleNet's channel shuffle (2 groups) of cat([a, b]): the channels interleave, out[2k] = a[k],
    out[2k+1] = b[k]. One stack moves the same values as the official cat + view/transpose/contiguous
    (two copies)."""
    return torch.stack((a, b), dim=2).flatten(1, 2)


class ConvBN(nn.Module):
    """Conv, BatchNorm (or a conv bias instead) and an activation: mmcv's `ConvModule` as Lite-HRNet
    builds it (keys `conv.weight`, `conv.bias` only without BN, `bn.*`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, *, stride: int = 1, groups: int = 1,
                 norm: bool = True, act: str | None = None):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, groups=groups,
                              bias=not norm)
        if norm:
            self.bn = nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM)
        self.act = nn.ReLU(inplace=True) if act == "relu" else nn.Sigmoid() if act == "sigmoid" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.act(self.bn(x) if hasattr(self, "bn") else x)


def separable_conv_bn(in_channels: int, out_channels: int, *, stride: int = 1, relu: bool) -> nn.Sequential:
    """Depthwise 3x3 + BN, pointwise 1x1 + BN (+ ReLU): Lite-HRNet's unit of transitions, fusion and neck
    (keys `0` dw conv, `1` BN, `2` pw conv, `3` BN; no conv biases)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False),
        nn.BatchNorm2d(in_channels, momentum=BN_MOMENTUM),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ShuffleStem(nn.Module):
    """Lite-HRNet's stem (official `Stem` with stem_channels == out_channels, expand_ratio 1, as in every
    official config). (N, 3, H, W) -> (N, C, H/4, W/4).

    A stride-2 3x3 conv, then a ShuffleNet v2 downsampling unit: one half through a strided depthwise
    conv and a 1x1, the other through 1x1 expand, strided depthwise, 1x1; concatenate and shuffle.
    """

    def __init__(self, channels: int, in_channels: int = 3):
        super().__init__()
        half = channels // 2
        self.conv1 = ConvBN(in_channels, channels, 3, stride=2, act="relu")
        self.branch1 = nn.Sequential(ConvBN(half, half, 3, stride=2, groups=half), ConvBN(half, half, 1, act="relu"))
        self.expand_conv = ConvBN(half, channels, 1, act="relu")
        self.depthwise_conv = ConvBN(channels, channels, 3, stride=2, groups=channels)
        self.linear_conv = ConvBN(channels, half, 1, act="relu")  # "linear", yet with a ReLU (official)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.conv1(x).chunk(2, dim=1)
        x2 = self.linear_conv(self.depthwise_conv(self.expand_conv(x2)))
        return shuffle_halves(self.branch1(x1), x2)


class ShuffleUnit(nn.Module):
    """The stride-1 ShuffleNet v2 unit of naive Lite-HRNet. (N, C, H, W) -> (N, C, H, W).

    Half the channels pass untouched (the identity path: no residual add), the other half go
    through 1x1, depthwise 3x3, 1x1; then the halves are interleaved.
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, *, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        if in_channels != channels or stride != 1 or downsample is not None:
            raise ValueError("ShuffleUnit: only the stride-1 unit of constant width exists in Lite-HRNet "
                             f"(got {in_channels} -> {channels}, stride {stride})")
        half = channels // 2
        self.branch2 = nn.Sequential(ConvBN(half, half, 1, act="relu"), ConvBN(half, half, 3, groups=half),
                                     ConvBN(half, half, 1, act="relu"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return shuffle_halves(x1, self.branch2(x2))


BLOCKS: dict[str, type[nn.Module]] = {"basic": BasicBlock, "bottleneck": Bottleneck, "shuffle": ShuffleUnit}


class SpatialWeighting(nn.Module):
    """Per-branch channel attention (squeeze-excitation, ratio 4, conv biases, no BN):
    x * sigmoid(conv2(relu(conv1(global average of x)))). (N, C, H, W) -> same."""

    def __init__(self, channels: int, ratio: int = 4):
        super().__init__()
        self.conv1 = ConvBN(channels, channels // ratio, 1, norm=False, act="relu")
        self.conv2 = ConvBN(channels // ratio, channels, 1, norm=False, act="sigmoid")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv2(self.conv1(F.adaptive_avg_pool2d(x, 1)))


def _bin_average(length: int, bins: int, like: torch.Tensor) -> torch.Tensor:
    """(bins, length) matrix averaging the bins of adaptive pooling: [floor(iL/b), ceil((i+1)L/b))."""
    i = torch.arange(bins, device=like.device)
    start, end = (i * length) // bins, ((i + 1) * length + bins - 1) // bins
    j = torch.arange(length, device=like.device)
    inside = (j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])
    return inside.to(like.dtype) / (end - start)[:, None].to(like.dtype)


def adaptive_avg_pool(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """`F.adaptive_avg_pool2d(x, size)`. Eager mode calls it (bit for bit the official op); while
    exporting or compiling the same bins are averaged by two matrix products, because ONNX has no
    adaptive pooling and the exporter would fix the bins of the example's sizes."""
    if not (torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()):
        return F.adaptive_avg_pool2d(x, size)
    rows, cols = _bin_average(x.shape[-2], size[0], x), _bin_average(x.shape[-1], size[1], x)
    return rows @ x @ cols.transpose(0, 1)


class CrossResolutionWeighting(nn.Module):
    """Weights computed from all branches together: each branch is average-pooled to the lowest
    resolution, the concatenation is squeezed by `reduce_ratio` (1x1 + BN + ReLU) and expanded
    (1x1 + BN + sigmoid); each branch is multiplied by its slice, upsampled (nearest) to its size."""

    def __init__(self, channels: Sequence[int], reduce_ratio: int):
        super().__init__()
        self.channels = list(channels)
        total = sum(self.channels)
        self.conv1 = ConvBN(total, int(total / reduce_ratio), 1, act="relu")
        self.conv2 = ConvBN(int(total / reduce_ratio), total, 1, act="sigmoid")

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        size = xs[-1].shape[-2:]
        pooled = [adaptive_avg_pool(x, size) for x in xs[:-1]] + [xs[-1]]
        weights = torch.split(self.conv2(self.conv1(torch.cat(pooled, dim=1))), self.channels, dim=1)
        return [x * F.interpolate(w, size=x.shape[-2:], mode="nearest") for x, w in zip(xs, weights)]


class ConditionalChannelWeighting(nn.Module):
    """Lite-HRNet's block: list of branch maps (N, C_i, H_i, W_i) -> the same shapes.

    Each map is split in halves; the second halves are reweighted across resolutions, then each by
    a depthwise 3x3 + BN and its spatial weighting; each pair is concatenated (untouched half first)
    and shuffled. The untouched half is the identity path: there is no residual add.
    """

    def __init__(self, channels: Sequence[int], *, reduce_ratio: int):
        super().__init__()
        halves = [c // 2 for c in channels]
        self.cross_resolution_weighting = CrossResolutionWeighting(halves, reduce_ratio)
        self.depthwise_convs = nn.ModuleList(ConvBN(c, c, 3, groups=c) for c in halves)
        self.spatial_weighting = nn.ModuleList(SpatialWeighting(c) for c in halves)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        halves = [x.chunk(2, dim=1) for x in xs]
        weighted = self.cross_resolution_weighting([h[1] for h in halves])
        weighted = [sw(dw(x)) for x, dw, sw in zip(weighted, self.depthwise_convs, self.spatial_weighting)]
        return [shuffle_halves(h[0], x) for h, x in zip(halves, weighted)]


# Blocks that take all branches at once (spec.JOINT_BLOCKS): channels list -> nn.Module on a list of maps.
JOINT_BLOCK_TYPES: dict[str, type[nn.Module]] = {"ccw": ConditionalChannelWeighting}


class IterativeNeck(nn.Module):
    """Lite-HRNet's `IterativeHead` (part of its backbone): from the lowest resolution up, each branch
    plus the bilinearly upsampled (aligned corners) result of the one below goes through a separable
    conv to the width of the next higher-resolution branch (branch 0 keeps its width).

    Branch maps (N, C_i, H_i, W_i) -> (N, C_{max(i-1, 0)}, H_i, W_i), high to low resolution.
    """

    def __init__(self, channels: Sequence[int]):
        super().__init__()
        widths = list(channels)[::-1]
        self.projects = nn.ModuleList(separable_conv_bn(c, widths[min(i + 1, len(widths) - 1)], relu=True)
                                      for i, c in enumerate(widths))

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []
        for x, project in zip(xs[::-1], self.projects):
            if out:
                x = x + F.interpolate(out[-1], size=x.shape[-2:], mode="bilinear", align_corners=True)
            out.append(project(x))
        return out[::-1]


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


def init_weights(model: nn.Module) -> None:
    """The official initialisation: kaiming-normal convs (fan out), or N(0, 0.001) when the model's spec
    says `conv_init="normal"` (Lite-HRNet), unit BatchNorm; then the head's own
    (`model.head.init_weights()`, see `hrnet.heads`)."""
    normal = getattr(getattr(model, "spec", None), "conv_init", "kaiming") == "normal"
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            if normal:
                nn.init.normal_(module.weight, std=0.001)
            else:
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    head = getattr(model, "head", None)
    if head is not None and hasattr(head, "init_weights"):
        head.init_weights()
