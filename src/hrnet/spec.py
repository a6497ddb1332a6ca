"""The HRNet architecture as data: a frozen spec, the published variants, and the official yaml reader.

An HRNet is a stem (two stride-2 3x3 convs, stride 4), then four stages. Stage 1 is a single
branch of residual blocks; stages 2, 3 and 4 each add one branch at half the resolution and
twice the width, and repeat `modules` high-resolution modules (parallel branches + fusion).

Lite-HRNet (Yu et al., CVPR 2021) is the same skeleton with other parts, all chosen by spec fields:
a ShuffleNet-style stem (`stem="shuffle"`), no stage 1 (the stem feeds stage 2's two branches),
conditional channel weighting blocks that run on all branches of a module at once (`block="ccw"`,
with a per-stage `reduce_ratio`) or ShuffleNet units per branch (`block="shuffle"`, "naive"),
depthwise-separable convs in transitions and fusion (`fuse_conv="separable"`), the official fusion
sum with its quirks (`fusion="lite_hrnet"`) and an iterative neck (`neck="iterative"`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

BLOCK_EXPANSION = {"basic": 1, "bottleneck": 4, "shuffle": 1, "ccw": 1}
# Block kinds that take all branches of a module at once (a list in, a list out) instead of one branch.
JOINT_BLOCKS = ("ccw",)
FUSE_MODES = ("nearest", "bilinear")
STEMS = ("conv", "shuffle")
FUSE_CONVS = ("dense", "separable")
FUSIONS = ("sum", "lite_hrnet")
NECKS = (None, "iterative")
CONV_INITS = ("kaiming", "normal")


@dataclass(frozen=True)
class StageSpec:
    """One stage: `modules` repeated modules of `len(channels)` parallel branches.

    `blocks[i]` residual blocks of type `block` run on branch i, whose width is `channels[i]`
    (before the block's expansion: a bottleneck outputs 4x its width). Block kinds:
    "basic" and "bottleneck" (HRNet), "shuffle" (the stride-1 ShuffleNet v2 unit of naive
    Lite-HRNet) and "ccw" (Lite-HRNet's conditional channel weighting, which runs on all branches
    at once: `blocks` then repeats one count, and `reduce_ratio` is its cross-resolution
    weighting's squeeze ratio, 8 in the paper).
    """

    modules: int
    block: str
    blocks: tuple[int, ...]
    channels: tuple[int, ...]
    reduce_ratio: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "block", str(self.block).lower())
        object.__setattr__(self, "blocks", tuple(int(b) for b in self.blocks))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if self.block not in BLOCK_EXPANSION:
            raise ValueError(f"StageSpec.block must be one of {sorted(BLOCK_EXPANSION)}, got {self.block!r}")
        if self.modules < 1:
            raise ValueError(f"StageSpec.modules must be >= 1, got {self.modules}")
        if len(self.blocks) != len(self.channels) or not self.channels:
            raise ValueError(
                f"StageSpec.blocks {self.blocks} and StageSpec.channels {self.channels} need one entry per branch"
            )
        if min(self.blocks) < 1 or min(self.channels) < 1:
            raise ValueError(f"StageSpec blocks and channels must be positive, got {self.blocks}, {self.channels}")
        self._check_lite_blocks()

    def _check_lite_blocks(self) -> None:
        """What the Lite-HRNet blocks need: even widths (they split each map into two halves), and for
        "ccw" one block count, a reduce ratio and squeezes of at least one channel."""
        if self.block in ("shuffle", "ccw") and any(c % 2 for c in self.channels):
            raise ValueError(f"StageSpec.channels {self.channels} must be even for block {self.block!r} "
                             "(it splits each map into two halves)")
        if self.block in JOINT_BLOCKS and len(set(self.blocks)) != 1:
            raise ValueError(f"StageSpec.blocks {self.blocks}: block {self.block!r} runs on all branches at once, so "
                             "every branch needs the same count")
        if self.block != "ccw":
            if self.reduce_ratio is not None:
                raise ValueError(f"StageSpec.reduce_ratio belongs to block 'ccw' only; drop it for block "
                                 f"{self.block!r}")
            return
        if self.reduce_ratio is None or self.reduce_ratio < 1:
            raise ValueError(f"StageSpec.reduce_ratio must be a positive integer for block 'ccw' (Lite-HRNet uses 8), "
                             f"got {self.reduce_ratio}")
        halves = [c // 2 for c in self.channels]
        if min(halves) < 4 or sum(halves) < self.reduce_ratio:
            raise ValueError(f"StageSpec.channels {self.channels} are too narrow for block 'ccw': each needs >= 8 "
                             f"(spatial weighting squeezes half of it by 4) and their halves must sum to >= "
                             f"reduce_ratio {self.reduce_ratio}")

    @property
    def branches(self) -> int:
        return len(self.channels)

    @property
    def out_channels(self) -> tuple[int, ...]:
        """Width of each branch's output (channels times the block expansion)."""
        return tuple(c * BLOCK_EXPANSION[self.block] for c in self.channels)


@dataclass(frozen=True)
class HRNetSpec:
    """The whole architecture.

    `stages` start with stage 1 (one branch of residual blocks, HRNet) or stage 2 (two branches
    opened from the stem by the first transition, Lite-HRNet); each next stage adds one branch and
    the last has four. `stem` is "conv" (two stride-2 3x3 convs of `stem_channels`, HRNet) or
    "shuffle" (Lite-HRNet's ShuffleNet-style stem, `stem_channels` wide, also stride 4).
    `fuse_mode` is how a low-resolution branch is carried up during fusion: "nearest" (the official
    classification and pose code) or "bilinear" (the official segmentation code, with
    `align_corners`). Both resize to the exact size of the target branch, so any input size works.
    `fuse_conv` is the 3x3 conv of transitions and downsampling fusion paths: "dense" (HRNet) or
    "separable" (depthwise 3x3 + BN + pointwise 1x1 + BN, Lite-HRNet). `fusion` is "sum" (HRNet)
    or "lite_hrnet" (the official Lite-HRNet sum, quirks included: see `HighResolutionModule`).
    `neck="iterative"` refines the last stage's branches from low to high resolution (Lite-HRNet's
    IterativeHead, part of its backbone). `multi_scale_output=False` makes the backbone output only
    the highest-resolution map, as the official pose models do; with HRNet's fusion its last module
    then computes only that map, Lite-HRNet's modules always compute every branch (official).
    `conv_init` is how `blocks.init_weights` starts the convs: "kaiming" (HRNet classification) or
    "normal" (N(0, 0.001), Lite-HRNet's `init_weights`).
    """

    stages: tuple[StageSpec, ...]
    fuse_mode: str = "nearest"
    align_corners: bool = False
    multi_scale_output: bool = True
    stem_channels: int = 64
    stem: str = "conv"
    fuse_conv: str = "dense"
    fusion: str = "sum"
    neck: str | None = None
    conv_init: str = "kaiming"

    def __post_init__(self) -> None:
        stages = tuple(s if isinstance(s, StageSpec) else StageSpec(**s) for s in self.stages)
        object.__setattr__(self, "stages", stages)
        first = stages[0].branches if stages else 0
        if first not in (1, 2) or len(stages) != 5 - first:
            raise ValueError(f"HRNetSpec needs 4 stages (stages 1-4, HRNet) or 3 (stages 2-4, no stage 1: "
                             f"Lite-HRNet), got {len(stages)} starting with {first} branch(es)")
        for number, stage in enumerate(stages, start=first):
            if stage.branches != number:
                raise ValueError(
                    f"HRNetSpec stage {number} must have {number} branches, got {stage.branches} "
                    f"(channels {stage.channels})"
                )
        if first == 1 and stages[0].block not in ("basic", "bottleneck"):
            raise ValueError(f"HRNetSpec stage 1 is one residual layer: its block must be 'basic' or 'bottleneck', "
                             f"got {stages[0].block!r}")
        for name, value, choices in (("fuse_mode", self.fuse_mode, FUSE_MODES), ("stem", self.stem, STEMS),
                                     ("fuse_conv", self.fuse_conv, FUSE_CONVS), ("fusion", self.fusion, FUSIONS),
                                     ("neck", self.neck, NECKS), ("conv_init", self.conv_init, CONV_INITS)):
            if value not in choices:
                raise ValueError(f"HRNetSpec.{name} must be one of {choices}, got {value!r}")
        if self.stem_channels < 1 or (self.stem == "shuffle" and self.stem_channels % 2):
            raise ValueError(f"HRNetSpec.stem_channels must be positive (and even for stem 'shuffle', which splits "
                             f"it into two halves), got {self.stem_channels}")

    @property
    def channels(self) -> tuple[int, ...]:
        """Output width of each branch of the backbone (high to low resolution)."""
        out = self.stages[-1].out_channels
        if self.neck == "iterative":
            # Each branch is projected to the width of the next higher-resolution one (branch 0 keeps its own).
            out = (out[0], *out[:-1])
        return out if self.multi_scale_output else out[:1]

    @property
    def strides(self) -> tuple[int, ...]:
        return tuple(4 * 2**i for i in range(len(self.channels)))

    @property
    def width(self) -> int:
        """The C of "W-C": width of the highest-resolution branch."""
        return self.stages[-1].channels[0]

    def replace(self, **changes: Any) -> "HRNetSpec":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_official(cls, extra: Mapping[str, Any], **overrides: Any) -> "HRNetSpec":
        """Read the `MODEL.EXTRA` block of an official experiment yaml (or a dict holding it as "EXTRA").

        The pose repo has no STAGE1 block: it hard-codes four bottlenecks of width 64, used here too.
        """
        if "EXTRA" in extra:
            extra = extra["EXTRA"]
        stages = []
        for number in range(1, 5):
            key = f"STAGE{number}"
            block = extra.get(key)
            if block is None and number == 1:
                block = {"NUM_MODULES": 1, "BLOCK": "BOTTLENECK", "NUM_BLOCKS": [4], "NUM_CHANNELS": [64]}
            if block is None:
                raise ValueError(f"official EXTRA block has no {key}: expected keys STAGE2..STAGE4")
            try:
                stages.append(
                    StageSpec(
                        modules=int(block["NUM_MODULES"]),
                        block=block["BLOCK"],
                        blocks=tuple(block["NUM_BLOCKS"]),
                        channels=tuple(block["NUM_CHANNELS"]),
                    )
                )
            except KeyError as missing:
                raise ValueError(f"official EXTRA.{key} lacks the field {missing}") from None
            if block.get("FUSE_METHOD", "SUM") != "SUM":
                raise ValueError(f"EXTRA.{key}.FUSE_METHOD={block['FUSE_METHOD']!r}: only SUM exists in HRNet")
        return cls(stages=tuple(stages), **overrides)


def _standard(width: int) -> HRNetSpec:
    """The standard HRNet-W{width}: 1/1/4/3 modules of 4 blocks per branch."""
    c = width
    return HRNetSpec(
        stages=(
            StageSpec(modules=1, block="bottleneck", blocks=(4,), channels=(64,)),
            StageSpec(modules=1, block="basic", blocks=(4, 4), channels=(c, 2 * c)),
            StageSpec(modules=4, block="basic", blocks=(4, 4, 4), channels=(c, 2 * c, 4 * c)),
            StageSpec(modules=3, block="basic", blocks=(4, 4, 4, 4), channels=(c, 2 * c, 4 * c, 8 * c)),
        )
    )


# Stage configurations of the official experiment yamls (HRNet-Image-Classification/experiments).
VARIANTS: dict[str, HRNetSpec] = {
    "hrnet_w18_small_v1": HRNetSpec(
        stages=(
            StageSpec(modules=1, block="bottleneck", blocks=(1,), channels=(32,)),
            StageSpec(modules=1, block="basic", blocks=(2, 2), channels=(16, 32)),
            StageSpec(modules=1, block="basic", blocks=(2, 2, 2), channels=(16, 32, 64)),
            StageSpec(modules=1, block="basic", blocks=(2, 2, 2, 2), channels=(16, 32, 64, 128)),
        )
    ),
    "hrnet_w18_small_v2": HRNetSpec(
        stages=(
            StageSpec(modules=1, block="bottleneck", blocks=(2,), channels=(64,)),
            StageSpec(modules=1, block="basic", blocks=(2, 2), channels=(18, 36)),
            StageSpec(modules=3, block="basic", blocks=(2, 2, 2), channels=(18, 36, 72)),
            StageSpec(modules=2, block="basic", blocks=(2, 2, 2, 2), channels=(18, 36, 72, 144)),
        )
    ),
    **{f"hrnet_w{w}": _standard(w) for w in (18, 30, 32, 40, 44, 48, 64)},
}


def _lite(modules: tuple[int, int, int], width: int, block: str) -> HRNetSpec:
    """A Lite-HRNet of the official configs (HRNet/Lite-HRNet configs/top_down/*): stages 2-4 with
    `modules` modules of two blocks per branch, widths `width` x 1/2/4/8, a 32-wide shuffle stem."""
    widths = tuple(width * 2**i for i in range(4))
    return HRNetSpec(
        stages=tuple(StageSpec(modules=m, block=block, blocks=(2,) * n, channels=widths[:n],
                               reduce_ratio=8 if block == "ccw" else None)
                     for m, n in zip(modules, (2, 3, 4))),
        stem="shuffle", stem_channels=32, fuse_conv="separable", fusion="lite_hrnet", neck="iterative",
        conv_init="normal",
    )


# Lite-HRNet (Yu et al., CVPR 2021): the four backbones of the official repository.
VARIANTS.update({
    "lite_hrnet_18": _lite((2, 4, 2), 40, "ccw"),
    "lite_hrnet_30": _lite((3, 8, 3), 40, "ccw"),
    "naive_lite_hrnet_18": _lite((2, 4, 2), 30, "shuffle"),
    "wider_naive_lite_hrnet_18": _lite((2, 4, 2), 40, "shuffle"),
})


def get_spec(arch: "str | HRNetSpec") -> HRNetSpec:
    """A registered variant by name, or the spec itself."""
    if isinstance(arch, HRNetSpec):
        return arch
    if arch not in VARIANTS:
        import difflib

        from .errors import ConfigError

        close = difflib.get_close_matches(str(arch), list(VARIANTS), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown architecture {arch!r}{hint}; known: {', '.join(sorted(VARIANTS))}")
    return VARIANTS[arch]


# Parameters of each variant with its usual head (the ImageNet classifier; Lite-HRNet: the 17-keypoint
# COCO pose head), for `hrnet list`, which answers without importing torch. tests/test_complexity.py
# rebuilds every variant and checks each number, so a new variant must add its line here.
LIST_PARAMETERS: dict[str, tuple[str, int]] = {
    "hrnet_w18": ("classification", 21299004),
    "hrnet_w18_small_v1": ("classification", 13187464),
    "hrnet_w18_small_v2": ("classification", 15597464),
    "hrnet_w30": ("classification", 37712220),
    "hrnet_w32": ("classification", 41232680),
    "hrnet_w40": ("classification", 57557160),
    "hrnet_w44": ("classification", 67064984),
    "hrnet_w48": ("classification", 77469864),
    "hrnet_w64": ("classification", 128059944),
    "lite_hrnet_18": ("pose", 1130769),
    "lite_hrnet_30": ("pose", 1763717),
    "naive_lite_hrnet_18": ("pose", 760365),
    "wider_naive_lite_hrnet_18": ("pose", 1318625),
}
