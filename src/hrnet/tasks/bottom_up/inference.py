"""Bottom-up inference as the official HigherHRNet test (`tools/valid.py`, `lib/core/inference.py`).

For each test scale (largest first): resize (`transforms.resize_align`), run the network, upsample
every output to the last (highest-resolution) one, average the heatmaps of all outputs and keep
the tags of the outputs trained with the AE loss; with the flip test, the same on the mirrored
image, mirrored back with left/right keypoints swapped. Everything is then projected (bilinear) to
the image size at scale 1 ("project to image"); heatmaps are averaged over flip and scales, tags
are concatenated (flip, and only at scale 1). Grouping (`grouping.group_people`) and the inverse
affine of the smallest scale give people in original pixels.

    settings = BottomUpSettings(input_size=512, flip=True)
    keypoints, scores = predict_people(model, rgb, settings)   # (P, K, 3) x, y, score; (P,)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hrnet.errors import ConfigError, DataError

from ..pose.data import to_tensor
from ..pose.metadata import COCO_KEYPOINTS, KeypointMetadata
from ..pose.visualize import draw_poses
from .grouping import group_people
from .transforms import multi_scale_size, resize_align, to_image

DEFAULT_INPUT_SIZE = 512  # the W32-512 model; the 640 models need input_size=640


@dataclass(frozen=True)
class BottomUpSettings:
    """How people are found (defaults: the official COCO test, TEST.* of the experiment yamls).

    input_size: the short side at scale 1 before rounding to multiples of 64 (None: 512, or the
    recipe's data.input_size); scales: test scales (several need 1.0: the tags come from it);
    flip: the flip test; adjust / refine: quarter offsets / filling missing keypoints from the tag
    map; detection_threshold: a heatmap peak must exceed it to be a joint; tag_threshold: tag
    distance beyond which a joint starts a new person; max_people: peaks per keypoint (top-k) and
    people taking part in matching; nms_kernel: the max-pool window of peak detection.
    Unknown names passed to `with_options` raise.
    """

    input_size: int | None = None
    scales: tuple[float, ...] = (1.0,)
    flip: bool = True
    adjust: bool = True
    refine: bool = True
    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    max_people: int = 30
    nms_kernel: int = 5
    keypoint_threshold: float = 0.2  # drawing only: keypoints scoring less are not drawn

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        if not self.scales or min(self.scales) <= 0:
            raise ConfigError(f"scales must be positive test scales, got {list(self.scales)}")
        if len(self.scales) > 1 and 1.0 not in self.scales:
            raise ConfigError(f"scales {list(self.scales)}: several test scales must include 1.0, whose tags "
                              "group the people (as officially)")
        if self.input_size is not None and self.input_size < 1:
            raise ConfigError(f"input_size must be positive, got {self.input_size}")
        if self.max_people < 1:
            raise ConfigError(f"max_people must be >= 1, got {self.max_people}")
        if self.nms_kernel < 1 or self.nms_kernel % 2 == 0:
            raise ConfigError(f"nms_kernel must be a positive odd window, got {self.nms_kernel}")

    @property
    def size(self) -> int:
        return self.input_size or DEFAULT_INPUT_SIZE

    def with_options(self, **options: Any) -> "BottomUpSettings":
        """A copy with `options` replaced; an unknown option is a ConfigError naming the known ones."""
        known = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigError(f"unknown bottom-up inference option(s) {unknown}; known: {', '.join(known)}")
        return dataclasses.replace(self, **options)

    def describe(self) -> dict[str, Any]:
        """The protocol, for evaluation reports (`how`)."""
        return {"input_size": self.size, "scales": list(self.scales), "flip_test": self.flip,
                "project_to_image": True, "adjust": self.adjust, "refine": self.refine,
                "detection_threshold": self.detection_threshold, "tag_threshold": self.tag_threshold,
                "max_people": self.max_people, "nms_kernel": self.nms_kernel}


def bottom_up_head(model: nn.Module) -> nn.Module:
    """The HigherHRNet head of `model` (which tells the channel layout of its outputs)."""
    head = getattr(model, "head", None)
    if head is None or not hasattr(head, "with_ae_loss"):
        raise ConfigError(f"{type(model).__name__} is not a bottom-up pose model: build it with "
                          "hrnet.create_model(..., task='bottom_up_pose')")
    return head


def stage_outputs(outputs: Sequence[torch.Tensor], *, num_joints: int, with_ae: Sequence[bool]
                  ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The network's outputs (official `get_multi_stage_outputs`, one pass) -> heatmaps (N, K, h, w)
    averaged over the outputs and the tag maps [(N, T, h, w)] of the AE outputs, all upsampled
    (bilinear, align_corners=False) to the last output's size (h, w)."""
    size = outputs[-1].shape[-2:]
    total: torch.Tensor | int = 0
    tags = []
    for i, output in enumerate(outputs):
        if i != len(outputs) - 1:
            output = F.interpolate(output, size=size, mode="bilinear", align_corners=False)
        total = total + output[:, :num_joints]
        if with_ae[i]:
            tags.append(output[:, num_joints:])
    return total / len(outputs), tags


def flip_back(heatmaps: torch.Tensor, tags: list[torch.Tensor], flip_index: Sequence[int], tag_per_joint: bool
              ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Maps of the mirrored image -> maps of the image: mirror, then left/right channels swapped
    (the tags too, when there is one per keypoint)."""
    heatmaps = torch.flip(heatmaps, [3])[:, list(flip_index)]
    tags = [torch.flip(t, [3])[:, list(flip_index)] if tag_per_joint else torch.flip(t, [3]) for t in tags]
    return heatmaps, tags


class MergedOutputs(nn.Module):
    """A bottom-up model whose output is one tensor, torch.cat([heatmaps, *tags], 1) of
    `stage_outputs` (COCO W32: (N, 17 + 17, H/2, W/2)): what inference consumes from one pass,
    for `hrnet.export_onnx`, which exports a single output."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        head = bottom_up_head(model)
        self.num_joints, self.with_ae = head.num_classes, head.with_ae_loss

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        heatmaps, tags = stage_outputs(self.model(images), num_joints=self.num_joints, with_ae=self.with_ae)
        return torch.cat([heatmaps, *tags], dim=1)


def _scale_maps(model: nn.Module, image: torch.Tensor, base: tuple[int, int], *, flip_index: Sequence[int] | None
                ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """One scale: [heatmaps (1, K, Hb, Wb)] (+ the flipped pass) and the tags, projected to `base` (w, h)."""
    head = bottom_up_head(model)
    layout = {"num_joints": head.num_classes, "with_ae": head.with_ae_loss}
    heatmaps, tags = stage_outputs(model(image), **layout)
    heatmaps, tags = [heatmaps.float()], [t.float() for t in tags]
    if flip_index is not None:
        flipped, flipped_tags = stage_outputs(model(torch.flip(image, [3])), **layout)
        flipped, flipped_tags = flip_back(flipped.float(), [t.float() for t in flipped_tags], flip_index,
                                          head.tag_per_joint)
        heatmaps.append(flipped)
        tags += flipped_tags
    project = lambda x: F.interpolate(x, size=(base[1], base[0]), mode="bilinear", align_corners=False)  # noqa: E731
    return [project(h) for h in heatmaps], [project(t) for t in tags]


@torch.no_grad()
def find_people(model: nn.Module, image: np.ndarray, settings: BottomUpSettings, *,
                metadata: KeypointMetadata = COCO_KEYPOINTS) -> tuple[np.ndarray, np.ndarray]:
    """People of an RGB uint8 image (H, W, 3): (P, K, 3 + L) float32 (x, y in original pixels,
    heatmap value, tags) and scores (P,) float32, exactly as the official test computes them."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DataError(f"predict_people needs an RGB uint8 image of shape (H, W, 3), got "
                        f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}")
    if min(image.shape[:2]) == 0:
        raise DataError(f"the image is empty ({image.shape[1]}x{image.shape[0]} pixels)")
    model.eval()
    device = next(model.parameters()).device
    smallest = min(settings.scales)
    base, _, _ = multi_scale_size(image.shape[0], image.shape[1], settings.size, 1.0, smallest)
    flip_index = metadata.flip_permutation() if settings.flip else None
    total, tag_list = None, []
    for scale in sorted(settings.scales, reverse=True):
        resized, center, box = resize_align(image, settings.size, scale, smallest)
        heatmaps, tags = _scale_maps(model, to_tensor(resized)[None].to(device), base, flip_index=flip_index)
        if scale == 1 or len(settings.scales) == 1:
            tag_list += [t.unsqueeze(4) for t in tags]
        averaged = (heatmaps[0] + heatmaps[1]) / 2.0 if settings.flip else heatmaps[0]
        total = averaged if total is None else total + averaged
    total = total / float(len(settings.scales))
    people, scores = group_people(total[0], torch.cat(tag_list, dim=4)[0],
                                  detection_threshold=settings.detection_threshold,
                                  tag_threshold=settings.tag_threshold, max_people=settings.max_people,
                                  nms_kernel=settings.nms_kernel, adjust_joints=settings.adjust,
                                  refine_joints=settings.refine)
    # The box of the last (smallest) scale maps the scale-1 heatmaps back, as officially.
    return (to_image(people, center, box, (total.shape[3], total.shape[2])) if len(people) else people), scores


def predict_people(model: nn.Module, image_rgb: np.ndarray, settings: BottomUpSettings | None = None, *,
                   metadata: KeypointMetadata = COCO_KEYPOINTS) -> tuple[np.ndarray, np.ndarray]:
    """People of an RGB uint8 image (H, W, 3) found by a bottom-up model: keypoints (P, K, 3) as
    (x, y, score) in original pixels (a keypoint no one has: score 0) and person scores (P,), the
    mean keypoint score before `refine` (the official COCO result score). `metadata` gives the
    flip index of the flip test (COCO by default)."""
    people, scores = find_people(model, image_rgb, settings or BottomUpSettings(), metadata=metadata)
    k = metadata.num_keypoints
    keypoints = people[..., :3].astype(np.float64) if len(people) else np.zeros((0, k, 3))
    return keypoints, scores.astype(np.float64)


def draw_people(image: np.ndarray, keypoints: np.ndarray, *, metadata: KeypointMetadata = COCO_KEYPOINTS,
                threshold: float = 0.2) -> np.ndarray:
    """A copy of the RGB image with each person's skeleton (keypoints (P, K, 3) from
    `predict_people`); keypoints below `threshold` are left out (the top-down `draw_poses`)."""
    return draw_poses(image, keypoints, metadata, threshold=threshold)
