"""The HRNet backbone: stem, stage 1, then stages 2-4 of parallel branches with repeated fusion.

Module names (conv1, bn1, conv2, bn2, layer1, transition1..3, stage2..4, branches, fuse_layers)
are those of the official repositories, so their state dicts load without renaming.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .blocks import BN_MOMENTUM, conv_bn, make_layer
from .spec import BLOCK_EXPANSION, HRNetSpec, StageSpec


def resize(x: torch.Tensor, size: Sequence[int], mode: str, align_corners: bool) -> torch.Tensor:
    """Resize to an exact size.

    Nearest to the exact size equals the official `nn.Upsample(scale_factor=2**k)` bit for bit when
    the size is a power-of-two multiple, and still works when it is not (odd input sizes).
    """
    if mode == "nearest":
        return F.interpolate(x, size=tuple(size), mode="nearest")
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=align_corners)


@contextlib.contextmanager
def _batchnorm_statistics_frozen(module: nn.Module) -> Iterator[None]:
    """Training-mode BatchNorm whose running statistics stay as they are (momentum 0, counter restored);
    the computation itself is unchanged, as activation checkpointing requires."""
    saved = [(m, m.momentum, m.num_batches_tracked.clone()) for m in module.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for norm, _, _ in saved:
        norm.momentum = 0.0
    try:
        yield
    finally:
        for norm, momentum, count in saved:
            norm.momentum = momentum
            norm.num_batches_tracked.copy_(count)


class HighResolutionModule(nn.Module):
    """Parallel branches, then multi-resolution fusion.

    Input and output: a list of maps, branch i of shape (N, C_i, H / 2^i, W / 2^i). Fusion into
    branch i sums every branch j: j > i through 1x1 conv + BN + upsampling, j < i through
    (i - j) strided 3x3 convs, j == i as is; then ReLU. With `multi_scale_output=False` only
    branch 0 is produced.
    """

    def __init__(
        self,
        *,
        block: str,
        num_blocks: Sequence[int],
        in_channels: Sequence[int],
        channels: Sequence[int],
        multi_scale_output: bool,
        fuse_mode: str,
        align_corners: bool,
    ):
        super().__init__()
        self.fuse_mode = fuse_mode
        self.align_corners = align_corners
        self.branches = nn.ModuleList(
            make_layer(block, c_in, c, n) for c_in, c, n in zip(in_channels, channels, num_blocks)
        )
        self.out_channels = [c * BLOCK_EXPANSION[block] for c in channels]
        outputs = len(channels) if multi_scale_output else 1
        self.fuse_layers = nn.ModuleList(self._fuse_layer(i) for i in range(outputs))
        self.relu = nn.ReLU(inplace=True)

    def _fuse_layer(self, i: int) -> nn.ModuleList:
        widths = self.out_channels
        layers: list[nn.Module] = []
        for j, width in enumerate(widths):
            if j > i:
                layers.append(conv_bn(width, widths[i], kernel=1, relu=False))
            elif j == i:
                layers.append(nn.Identity())
            else:
                # i - j stride-2 convs; only the last changes the width and it has no ReLU.
                steps = [conv_bn(width, width, kernel=3, stride=2, relu=True) for _ in range(i - j - 1)]
                steps.append(conv_bn(width, widths[i], kernel=3, stride=2, relu=False))
                layers.append(nn.Sequential(*steps))
        return nn.ModuleList(layers)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if len(xs) == 1:
            return xs
        fused = []
        for i, layers in enumerate(self.fuse_layers):
            size = xs[i].shape[-2:]
            y = layers[0](xs[0])
            for j in range(1, len(xs)):
                z = layers[j](xs[j])
                if j > i:
                    z = resize(z, size, self.fuse_mode, self.align_corners)
                y = y + z
            fused.append(self.relu(y))
        return fused


def make_transition(pre_channels: Sequence[int], channels: Sequence[int]) -> nn.ModuleList:
    """Between stages: adapt the width of existing branches, and open each new branch from the
    lowest-resolution one with stride-2 3x3 convs (official `_make_transition_layer`)."""
    layers: list[nn.Module] = []
    for i, width in enumerate(channels):
        if i < len(pre_channels):
            same = pre_channels[i] == width
            layers.append(nn.Identity() if same else conv_bn(pre_channels[i], width, kernel=3, relu=True))
            continue
        source = pre_channels[-1]
        steps = [conv_bn(source, source, kernel=3, stride=2, relu=True) for _ in range(i - len(pre_channels))]
        steps.append(conv_bn(source, width, kernel=3, stride=2, relu=True))
        layers.append(nn.Sequential(*steps))
    return nn.ModuleList(layers)


class HRNetBackbone(nn.Module):
    """(N, 3, H, W) -> list of maps (N, channels[i], ~H/strides[i], ~W/strides[i]), high to low.

    A side of length L gives ceil(L / 2^k) at stride 2^k (every downsampling is a padded stride-2
    3x3 conv), so any input size works.
    """

    def __init__(self, spec: HRNetSpec):
        super().__init__()
        self.spec = spec
        self.channels = list(spec.channels)
        self.strides = list(spec.strides)
        self.grad_checkpointing = False  # recompute each stage in backward to save memory
        stem = spec.stem_channels
        self.conv1 = nn.Conv2d(3, stem, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(stem, stem, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        first = spec.stages[0]
        self.layer1 = make_layer(first.block, stem, first.channels[0], first.blocks[0])
        pre_channels = list(first.out_channels)
        for number, stage in enumerate(spec.stages[1:], start=2):
            last = number == len(spec.stages)
            multi_scale = spec.multi_scale_output or not last
            self.add_module(f"transition{number - 1}", make_transition(pre_channels, stage.out_channels))
            self.add_module(f"stage{number}", self._make_stage(stage, multi_scale))
            pre_channels = list(stage.out_channels)

    def _make_stage(self, stage: StageSpec, multi_scale_output: bool) -> nn.Sequential:
        modules = []
        for index in range(stage.modules):
            # In_channels equal out_channels: the transition before the stage already adapted them.
            modules.append(
                HighResolutionModule(
                    block=stage.block,
                    num_blocks=stage.blocks,
                    in_channels=stage.out_channels,
                    channels=stage.channels,
                    multi_scale_output=multi_scale_output or index < stage.modules - 1,
                    fuse_mode=self.spec.fuse_mode,
                    align_corners=self.spec.align_corners,
                )
            )
        return nn.Sequential(*modules)

    def _run(self, module: nn.Module, *args):
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            # The backward pass re-runs the forward; that second run must not update the BatchNorm
            # statistics again.
            contexts = lambda: (contextlib.nullcontext(), _batchnorm_statistics_frozen(module))  # noqa: E731
            return checkpoint(module, *args, use_reentrant=False, context_fn=contexts)
        return module(*args)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self._run(self.layer1, x)]
        for number in range(2, len(self.spec.stages) + 1):
            transition = getattr(self, f"transition{number - 1}")
            # New branches grow from the lowest-resolution output of the previous stage.
            xs = [t(xs[min(i, len(xs) - 1)]) for i, t in enumerate(transition)]
            xs = self._run(getattr(self, f"stage{number}"), xs)
        return xs
