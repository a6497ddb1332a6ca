"""The HRNet backbone: stem, stage 1, then stages 2-4 of parallel branches with repeated fusion.

Module names (conv1, bn1, conv2, bn2, layer1, transition1..3, stage2..4, branches, fuse_layers)
are those of the official repositories, so their state dicts load without renaming.

The same loop builds Lite-HRNet from its spec (see `hrnet.spec`): `stem`, no `layer1`,
transition1..3 and stage2..4 numbered like HRNet's by their branch count (the official names are
transition0..2 and stage0..2), `layers` for blocks that run on all branches at once, `branches`
for per-branch blocks, and `neck` (the official `head_layer`); `hrnet.layouts.lite_hrnet` maps the
official and mmpose keys.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .blocks import (BN_MOMENTUM, JOINT_BLOCK_TYPES, IterativeNeck, ShuffleStem, conv_bn, make_layer,
                     separable_conv_bn)
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


def conv3x3_bn(kind: str, in_channels: int, out_channels: int, *, stride: int = 1, relu: bool) -> nn.Sequential:
    """The 3x3 unit of transitions and fusion: "dense" (3x3 conv + BN, HRNet) or "separable"
    (depthwise 3x3 + BN + pointwise 1x1 + BN, Lite-HRNet); then ReLU if asked."""
    if kind == "separable":
        return separable_conv_bn(in_channels, out_channels, stride=stride, relu=relu)
    return conv_bn(in_channels, out_channels, kernel=3, stride=stride, relu=relu)


class HighResolutionModule(nn.Module):
    """Parallel branches, then multi-resolution fusion.

    Input and output: a list of maps, branch i of shape (N, C_i, H / 2^i, W / 2^i). Fusion into
    branch i sums every branch j: j > i through 1x1 conv + BN + upsampling, j < i through
    (i - j) strided 3x3 convs, j == i as is; then ReLU. With `multi_scale_output=False` only
    branch 0 is produced. A joint block kind (spec.JOINT_BLOCKS) runs as `layers` on the whole
    list; `fusion="lite_hrnet"` is the official Lite-HRNet sum (see `_fuse_lite_hrnet`).
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
        fuse_conv: str = "dense",
        fusion: str = "sum",
        reduce_ratio: int | None = None,
    ):
        super().__init__()
        self.fuse_mode = fuse_mode
        self.align_corners = align_corners
        self.fuse_conv = fuse_conv
        self.fusion = fusion
        if block in JOINT_BLOCK_TYPES:
            # In_channels equal channels here: the transition before the stage adapted them.
            self.layers = nn.Sequential(*(JOINT_BLOCK_TYPES[block](channels, reduce_ratio=reduce_ratio)
                                          for _ in range(num_blocks[0])))
        else:
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
                steps = [conv3x3_bn(self.fuse_conv, width, width, stride=2, relu=True) for _ in range(i - j - 1)]
                steps.append(conv3x3_bn(self.fuse_conv, width, widths[i], stride=2, relu=False))
                layers.append(nn.Sequential(*steps))
        return nn.ModuleList(layers)

    def _term(self, i: int, j: int, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        """Branch j's contribution to fusion output i (size: that of branch i)."""
        z = self.fuse_layers[i][j](x)
        return resize(z, size, self.fuse_mode, self.align_corners) if j > i else z

    def _fuse_lite_hrnet(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """The official Lite-HRNet fusion, quirks included (HRNet/Lite-HRNet issues #53, #64; mmpose keeps
        them: "y = 0 will lead to decreased accuracy (0.5~1 mAP)"): its loop adds branch 0 twice, and
        its in-place `y += ...` on row 0 overwrites branch 0 by the pre-ReLU sum S0, so every other
        row reads S0 (twice) instead of branch 0. Sums run left to right, as the official ones."""
        s0 = xs[0] + xs[0]
        for j in range(1, len(xs)):
            s0 = s0 + self._term(0, j, xs[j], xs[0].shape[-2:])
        fused = [torch.relu(s0)]
        for i in range(1, len(self.fuse_layers)):
            y = self.fuse_layers[i][0](s0)
            # Training runs the path twice as the official code does: its BatchNorm statistics update twice.
            y = y + (self.fuse_layers[i][0](s0) if self.training else y)
            for j in range(1, len(xs)):
                y = y + (xs[j] if j == i else self._term(i, j, xs[j], xs[i].shape[-2:]))
            fused.append(self.relu(y))
        return fused

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        if hasattr(self, "layers"):
            xs = self.layers(xs)
        else:
            xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if len(xs) == 1:
            return xs
        if self.fusion == "lite_hrnet":
            return self._fuse_lite_hrnet(xs)
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


def make_transition(pre_channels: Sequence[int], channels: Sequence[int], conv: str = "dense") -> nn.ModuleList:
    """Between stages: adapt the width of existing branches, and open each new branch from the
    lowest-resolution one with stride-2 3x3 convs (official `_make_transition_layer`; `conv` as
    `conv3x3_bn`: Lite-HRNet's are separable, every step with a ReLU as in HRNet)."""
    layers: list[nn.Module] = []
    for i, width in enumerate(channels):
        if i < len(pre_channels):
            same = pre_channels[i] == width
            layers.append(nn.Identity() if same else conv3x3_bn(conv, pre_channels[i], width, relu=True))
            continue
        source = pre_channels[-1]
        steps = [conv3x3_bn(conv, source, source, stride=2, relu=True) for _ in range(i - len(pre_channels))]
        steps.append(conv3x3_bn(conv, source, width, stride=2, relu=True))
        layers.append(nn.Sequential(*steps))
    return nn.ModuleList(layers)


class HRNetBackbone(nn.Module):
    """(N, 3, H, W) -> list of maps (N, channels[i], ~H/strides[i], ~W/strides[i]), high to low.

    A side of length L gives ceil(L / 2^k) at stride 2^k (every downsampling is a padded stride-2
    3x3 conv), so any input size works. (The official Lite-HRNet needs sides that are multiples
    of 32, as it upsamples by powers of two; here every resize goes to the exact target size, which
    is the same function on those sizes.)
    """

    def __init__(self, spec: HRNetSpec):
        super().__init__()
        self.spec = spec
        self.channels = list(spec.channels)
        self.strides = list(spec.strides)
        self.grad_checkpointing = False  # recompute each stage in backward to save memory
        stem = spec.stem_channels
        if spec.stem == "shuffle":
            self.stem = ShuffleStem(stem)
        else:
            self.conv1 = nn.Conv2d(3, stem, kernel_size=3, stride=2, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM)
            self.conv2 = nn.Conv2d(stem, stem, kernel_size=3, stride=2, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM)
            self.relu = nn.ReLU(inplace=True)
        pre_channels = [stem]
        first = spec.stages[0]
        if first.branches == 1:
            self.layer1 = make_layer(first.block, stem, first.channels[0], first.blocks[0])
            pre_channels = list(first.out_channels)
        # A neck reads every branch, and Lite-HRNet's modules always compute them all (its checkpoints
        # have every fuse layer): only HRNet's last module may drop the unused outputs.
        keep_all = spec.multi_scale_output or spec.neck is not None or spec.fusion == "lite_hrnet"
        for stage in spec.stages:
            number = stage.branches
            if number == 1:
                continue
            last = number == spec.stages[-1].branches
            self.add_module(f"transition{number - 1}",
                            make_transition(pre_channels, stage.out_channels, spec.fuse_conv))
            self.add_module(f"stage{number}", self._make_stage(stage, keep_all or not last))
            pre_channels = list(stage.out_channels)
        if spec.neck == "iterative":
            self.neck = IterativeNeck(pre_channels)

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
                    fuse_conv=self.spec.fuse_conv,
                    fusion=self.spec.fusion,
                    reduce_ratio=stage.reduce_ratio,
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
        if self.spec.stem == "shuffle":
            xs = [self.stem(x)]  # never recomputed, as the official Lite-HRNet's stem
        else:
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.relu(self.bn2(self.conv2(x)))
            xs = [x]
        if hasattr(self, "layer1"):
            xs = [self._run(self.layer1, xs[0])]
        for number in range(2, self.spec.stages[-1].branches + 1):
            transition = getattr(self, f"transition{number - 1}")
            # New branches grow from the lowest-resolution output of the previous stage.
            xs = [t(xs[min(i, len(xs) - 1)]) for i, t in enumerate(transition)]
            xs = self._run(getattr(self, f"stage{number}"), xs)
        if hasattr(self, "neck"):
            xs = self._run(self.neck, xs)
        return xs if self.spec.multi_scale_output else xs[:1]
