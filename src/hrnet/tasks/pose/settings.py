"""The pose task's inference settings: one typed object shared by evaluation and prediction."""

from __future__ import annotations

from dataclasses import dataclass

from hrnet.errors import ConfigError

from .decode import DECODERS


@dataclass(frozen=True)
class PoseSettings:
    """How heatmaps become people (official TEST.* defaults): flip test with the one-cell shift,
    decoding ("quarter", "dark", "argmax", or "udp": mmpose's unbiased data processing, which also
    crops the UDP way) with `dark_kernel` (the Gaussian blur of DARK and UDP), rescoring and OKS NMS
    thresholds; `box_score_threshold`
    drops weak detector boxes, `keypoint_threshold` hides weak keypoints in drawings; `heatmaps`
    keeps each person's heatmaps and crop in the result."""

    flip_test: bool = True
    shift_heatmap: bool = True
    decoding: str = "quarter"
    dark_kernel: int = 11
    rescore_threshold: float = 0.2
    oks_nms_threshold: float | None = 0.9
    box_score_threshold: float = 0.0
    keypoint_threshold: float = 0.2
    heatmaps: bool = False

    def __post_init__(self) -> None:
        if self.decoding not in DECODERS:
            raise ConfigError(f"decoding {self.decoding!r}: choose one of {', '.join(DECODERS)}")
        if self.dark_kernel < 1 or self.dark_kernel % 2 == 0:
            raise ConfigError(f"dark_kernel must be a positive odd size, got {self.dark_kernel}")
        for name in ("rescore_threshold", "box_score_threshold", "keypoint_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
