"""Whole-image, sliding-window and multi-scale + flip inference, as the official HRNet code does it.

Official scoring (`BaseDataset.inference` / `multi_scale_inference`): logits are upsampled
(bilinear) to the input of each forward, averaged with the flipped pass, exponentiated, averaged
over overlapping windows, resized to the image size and summed over scales; the class is the arg max.
Images are normalised tensors; padding uses `pad_value` per channel (the official code pads with
the normalised value of a black pixel, -mean/std).

Two window algorithms, as the two official datasets classes define them (`InferenceConfig.mode`):
"slide" (the base class, `lib/datasets/base_dataset.py`): windows every 2/3 of the crop, windows
at the border and small images padded to the crop; "cityscapes" (`lib/datasets/cityscapes.py`'s
override, the paper's Cityscapes test numbers): scales <= 1 run on the whole image; larger scales
run non-overlapping crop-sized windows, the last one of each row and column shifted back inside
the image, with no padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .losses import upsample_to


INFERENCE_MODES = ("whole", "slide", "cityscapes")


@dataclass(frozen=True)
class InferenceConfig:
    """mode: "whole" or "slide" (windows of `crop_size` with `stride`, default 2/3 of the crop).
    scales: multipliers of the long side `base_size` (None: of the image's own size). flip_test: add
    the horizontally flipped pass."""

    mode: str = "whole"
    crop_size: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    scales: tuple[float, ...] = (1.0,)
    flip_test: bool = False
    base_size: int | None = None
    align_corners: bool = False

    def __post_init__(self) -> None:
        if self.mode not in INFERENCE_MODES:
            raise ValueError(f"inference mode must be one of {', '.join(INFERENCE_MODES)}, got {self.mode!r}")
        if self.mode != "whole" and self.crop_size is None:
            raise ValueError(f"{self.mode} inference needs crop_size (H, W), e.g. the training crop")

    @property
    def window_stride(self) -> tuple[int, int]:
        if self.stride is not None:
            return self.stride
        return int(self.crop_size[0] * 2.0 / 3.0), int(self.crop_size[1] * 2.0 / 3.0)


def _forward(model: nn.Module, image: torch.Tensor, config: InferenceConfig) -> torch.Tensor:
    """exp(logits) at the input size, (N, K, H, W); flip-averaged in logit space when asked."""
    logits = upsample_to(_main_output(model(image)), image.shape[-2:], config.align_corners)
    if config.flip_test:
        flipped = upsample_to(_main_output(model(image.flip(-1))), image.shape[-2:], config.align_corners)
        logits = (logits + flipped.flip(-1)) * 0.5
    return logits.float().exp()


def _main_output(output: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    # OCR in training mode returns (aux, main); evaluation uses the main (last) output.
    return output if isinstance(output, torch.Tensor) else output[-1]


def _pad(image: torch.Tensor, size: tuple[int, int], pad_value: torch.Tensor) -> torch.Tensor:
    """Pad bottom/right to at least `size` with a per-channel constant."""
    pad_h, pad_w = max(size[0] - image.shape[-2], 0), max(size[1] - image.shape[-1], 0)
    if pad_h == 0 and pad_w == 0:
        return image
    out = pad_value.view(1, -1, 1, 1).to(image).expand(image.shape[0], -1, image.shape[-2] + pad_h,
                                                          image.shape[-1] + pad_w).clone()
    out[..., : image.shape[-2], : image.shape[-1]] = image
    return out


def sliding_window(model: nn.Module, image: torch.Tensor, config: InferenceConfig, num_classes: int,
                   pad_value: torch.Tensor) -> torch.Tensor:
    """Average of window scores over a grid of crops; (N, 3, H, W) -> (N, K, H, W)."""
    crop_h, crop_w = config.crop_size
    height, width = image.shape[-2:]
    if max(height, width) <= min(crop_h, crop_w):
        # Small enough for one window: pad to the crop and run once (official behaviour).
        return _forward(model, _pad(image, (crop_h, crop_w), pad_value), config)[..., :height, :width]
    padded = _pad(image, (crop_h, crop_w), pad_value)
    full_h, full_w = padded.shape[-2:]
    stride_h, stride_w = config.window_stride
    rows = math.ceil(max(full_h - crop_h, 0) / stride_h) + 1
    cols = math.ceil(max(full_w - crop_w, 0) / stride_w) + 1
    scores = image.new_zeros(image.shape[0], num_classes, full_h, full_w)
    count = image.new_zeros(1, 1, full_h, full_w)
    for row in range(rows):
        for col in range(cols):
            top, left = row * stride_h, col * stride_w
            bottom, right = min(top + crop_h, full_h), min(left + crop_w, full_w)
            window = _pad(padded[..., top:bottom, left:right], (crop_h, crop_w), pad_value)
            scores[..., top:bottom, left:right] += _forward(model, window, config)[..., : bottom - top, : right - left]
            count[..., top:bottom, left:right] += 1
    return (scores / count)[..., :height, :width]


def fitted_windows(model: nn.Module, image: torch.Tensor, config: InferenceConfig, num_classes: int) -> torch.Tensor:
    """The official Cityscapes windows: stride = crop, each window's end clipped to the image and its
    start moved back to end - crop (so the last window overlaps its neighbour), no padding; scores
    averaged where windows overlap. (N, 3, H, W) -> (N, K, H, W)."""
    crop_h, crop_w = config.crop_size
    height, width = image.shape[-2:]
    # Official: ceil((H - crop) / stride) + 1 windows; max(.., 0) keeps one window on an image smaller
    # than the crop, where the official count can reach 0 (and divides by zero).
    rows = math.ceil(max(height - crop_h, 0) / crop_h) + 1
    cols = math.ceil(max(width - crop_w, 0) / crop_w) + 1
    scores = image.new_zeros(image.shape[0], num_classes, height, width)
    count = image.new_zeros(1, 1, height, width)
    for row in range(rows):
        for col in range(cols):
            bottom, right = min(row * crop_h + crop_h, height), min(col * crop_w + crop_w, width)
            top, left = max(bottom - crop_h, 0), max(right - crop_w, 0)
            scores[..., top:bottom, left:right] += _forward(model, image[..., top:bottom, left:right], config)
            count[..., top:bottom, left:right] += 1
    return scores / count


def _rescale(image: torch.Tensor, scale: float, base_size: int | None) -> torch.Tensor:
    """Resize so the long side is base_size * scale (rounded half up), keeping the aspect ratio."""
    height, width = image.shape[-2:]
    long_side = int((base_size or max(height, width)) * scale + 0.5)
    if height > width:
        size = (long_side, int(width * long_side / height + 0.5))
    else:
        size = (int(height * long_side / width + 0.5), long_side)
    if size == (height, width):
        return image
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False)


@torch.no_grad()
def predict_scores(
    model: nn.Module,
    image: torch.Tensor,
    config: InferenceConfig,
    *,
    num_classes: int,
    output_size: tuple[int, int] | None = None,
    pad_value: Sequence[float] | torch.Tensor | None = None,
) -> torch.Tensor:
    """Class scores (N, K, H_out, W_out) for a normalised batch (N, 3, H, W); arg max over dim 1 gives
    the labels. `output_size` defaults to the input size; give the original image size to get the
    prediction at full resolution after inference on a resized input.
    """
    output_size = tuple(output_size or image.shape[-2:])
    pad = torch.zeros(image.shape[1]) if pad_value is None else torch.as_tensor(pad_value, dtype=torch.float32)
    total = None
    for scale in config.scales:
        scaled = _rescale(image, scale, config.base_size)
        if config.mode == "slide":
            scores = sliding_window(model, scaled, config, num_classes, pad)
        elif config.mode == "cityscapes" and scale > 1.0:
            scores = fitted_windows(model, scaled, config, num_classes)
        else:
            scores = _forward(model, scaled, config)
        scores = upsample_to(scores, output_size, config.align_corners)
        total = scores if total is None else total + scores
    return total


def predict_labels(model: nn.Module, image: torch.Tensor, config: InferenceConfig, *, num_classes: int,
                   output_size: tuple[int, int] | None = None,
                   pad_value: Sequence[float] | torch.Tensor | None = None) -> torch.Tensor:
    """Arg max of `predict_scores`: (N, H_out, W_out) int64 train ids."""
    return predict_scores(model, image, config, num_classes=num_classes, output_size=output_size,
                          pad_value=pad_value).argmax(dim=1)
