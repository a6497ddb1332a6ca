"""Image-only training augmentations for small data sets, shared by the tasks: colour jitter,
Gaussian blur and cutout. Off by default (the official pipelines have none of them).

Every random draw uses torch's global generator, which the engine seeds per sample from
(train.seed, epoch, index) (see `engine.distributed.SeededDataset`): a run repeats exactly and
does not depend on workers or ranks.

* colour jitter `(brightness, contrast, saturation, hue)`: torchvision's ColorJitter (factors drawn
  uniformly in [max(0, 1 - x), 1 + x], hue shift in [-h, h], the four applied in a random order);
* blur `p`: with probability p a Gaussian blur of sigma uniform in [0.1, 2.0] (the range of
  SimCLR / torchvision's GaussianBlur default), kernel 2 * ceil(3 sigma) + 1;
* cutout `s`: one square hole of side s x the shorter image side, centred uniformly in the image
  and clipped at its borders (DeVries & Taylor 2017), filled with 0 after normalisation, i.e. the
  mean colour. Labels are left as they are: the model learns to infer occluded content.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

BLUR_SIGMA = (0.1, 2.0)


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


def check_augmentation(*, color_jitter: Sequence[float] | None = None, blur: float = 0.0, cutout: float = 0.0) -> None:
    """ValueError naming the key when a setting is out of range (for DataConfig.__post_init__)."""
    if color_jitter is not None:
        if len(color_jitter) != 4 or min(color_jitter) < 0 or color_jitter[3] > 0.5:
            raise ValueError(f"color_jitter {list(color_jitter)} must be [brightness, contrast, saturation, hue], "
                             "each >= 0 and hue <= 0.5 (e.g. [0.3, 0.3, 0.3, 0.05])")
    if not 0 <= blur <= 1:
        raise ValueError(f"blur {blur} is the probability of a Gaussian blur, in [0, 1]")
    if not 0 <= cutout < 1:
        raise ValueError(f"cutout {cutout} is the hole's side as a fraction of the shorter image side, in [0, 1)")


@dataclass(frozen=True)
class Photometric:
    """Colour jitter then blur on an RGB uint8 image; (H, W, 3) numpy or (3, H, W) tensor in, same out."""

    color_jitter: tuple[float, float, float, float] | None = None
    blur: float = 0.0

    @property
    def active(self) -> bool:
        return self.color_jitter is not None or self.blur > 0

    def __call__(self, image: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        if not self.active:
            return image
        is_array = isinstance(image, np.ndarray)
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1) if is_array else image
        if self.color_jitter is not None:
            from torchvision.transforms import v2

            brightness, contrast, saturation, hue = self.color_jitter
            tensor = v2.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue)(tensor)
        if self.blur > 0 and float(torch.rand(())) < self.blur:
            tensor = gaussian_blur(tensor, _uniform(*BLUR_SIGMA))
        return tensor.permute(1, 2, 0).contiguous().numpy() if is_array else tensor


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """(3, H, W) uint8 or float -> the same, blurred with a Gaussian of `sigma` pixels."""
    from torchvision.transforms.v2 import functional as F

    radius = max(1, math.ceil(3 * sigma))
    return F.gaussian_blur(image, kernel_size=[2 * radius + 1, 2 * radius + 1], sigma=[sigma, sigma])


def cutout(image: torch.Tensor, size: float, fill: float = 0.0) -> torch.Tensor:
    """(C, H, W) normalised tensor with one square hole of side `size` x min(H, W) set to `fill`
    (in place; returned). `size` 0 leaves it unchanged (and draws nothing)."""
    if size <= 0:
        return image
    height, width = image.shape[-2:]
    side = max(1, int(round(size * min(height, width))))
    cy, cx = int(torch.randint(0, height, ())), int(torch.randint(0, width, ()))
    top, left = max(0, cy - side // 2), max(0, cx - side // 2)
    image[..., top:min(height, cy - side // 2 + side), left:min(width, cx - side // 2 + side)] = fill
    return image
