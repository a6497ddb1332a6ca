"""The HRNet architecture as data: a frozen spec, the published variants, and the official yaml reader.

An HRNet is a stem (two stride-2 3x3 convs, stride 4), then four stages. Stage 1 is a single
branch of residual blocks; stages 2, 3 and 4 each add one branch at half the resolution and
twice the width, and repeat `modules` high-resolution modules (parallel branches + fusion).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

BLOCK_EXPANSION = {"basic": 1, "bottleneck": 4}
FUSE_MODES = ("nearest", "bilinear")


@dataclass(frozen=True)
class StageSpec:
    """One stage: `modules` repeated modules of `len(channels)` parallel branches.

    `blocks[i]` residual blocks of type `block` run on branch i, whose width is `channels[i]`
    (before the block's expansion: a bottleneck outputs 4x its width).
    """

    modules: int
    block: str
    blocks: tuple[int, ...]
    channels: tuple[int, ...]

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

    `fuse_mode` is how a low-resolution branch is carried up during fusion: "nearest" (the official
    classification and pose code) or "bilinear" (the official segmentation code, with
    `align_corners`). Both resize to the exact size of the target branch, so any input size works.
    `multi_scale_output=False` makes the last module of stage 4 output only the highest-resolution
    branch, as the official pose model does.
    """

    stages: tuple[StageSpec, StageSpec, StageSpec, StageSpec]
    fuse_mode: str = "nearest"
    align_corners: bool = False
    multi_scale_output: bool = True
    stem_channels: int = 64

    def __post_init__(self) -> None:
        stages = tuple(s if isinstance(s, StageSpec) else StageSpec(**s) for s in self.stages)
        object.__setattr__(self, "stages", stages)
        if len(stages) != 4:
            raise ValueError(f"HRNetSpec needs 4 stages, got {len(stages)}")
        for index, stage in enumerate(stages):
            if stage.branches != index + 1:
                raise ValueError(
                    f"HRNetSpec stage {index + 1} must have {index + 1} branches, got {stage.branches} "
                    f"(channels {stage.channels})"
                )
        if self.fuse_mode not in FUSE_MODES:
            raise ValueError(f"HRNetSpec.fuse_mode must be one of {FUSE_MODES}, got {self.fuse_mode!r}")

    @property
    def channels(self) -> tuple[int, ...]:
        """Output width of each branch of the backbone (high to low resolution)."""
        out = self.stages[-1].out_channels
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


def get_spec(arch: "str | HRNetSpec") -> HRNetSpec:
    """A registered variant by name, or the spec itself."""
    if isinstance(arch, HRNetSpec):
        return arch
    if arch not in VARIANTS:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(sorted(VARIANTS))}")
    return VARIANTS[arch]
