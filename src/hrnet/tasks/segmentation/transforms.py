"""Training and evaluation transforms as in the official HRNet segmentation code.

Training (official `gen_sample`): resize so the long side is `base_size * s`, s drawn from
{0.5, 0.6, ..., 2.1} (official `0.5 + randint(0, SCALE_FACTOR) / 10` with SCALE_FACTOR 16, inclusive); pad to the crop size (image with black, mask with the ignore label) and take
a random crop; flip horizontally with probability 0.5. Photometric jitter is an option. Images are
normalised with the ImageNet mean and std (RGB). Random draws use torch's generator, which the
engine seeds per sample.

Small-data options (all off by default, as the official pipeline has none): a random aspect ratio
with the scale, a random rotation (image bilinear with black corners, mask nearest with the ignore
label, so they stay aligned), and the image-only colour jitter, blur and cutout of
`hrnet.data.augment`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch

from ...data.augment import Photometric, cutout

from ...data import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401 (re-exported for the segmentation modules)


def _randint(low: int, high: int) -> int:
    """Uniform integer in [low, high] (inclusive, like `random.randint`)."""
    return int(torch.randint(low, high + 1, (1,)).item())


def resize_long_side(image: np.ndarray, long_side: int, interpolation: int) -> np.ndarray:
    """Resize keeping the aspect ratio so that max(H, W) == long_side (sizes rounded half up)."""
    height, width = image.shape[:2]
    if height > width:
        size = (int(width * long_side / height + 0.5), long_side)
    else:
        size = (long_side, int(height * long_side / width + 0.5))
    return cv2.resize(image, size, interpolation=interpolation)


def pad_to(array: np.ndarray, size: tuple[int, int], value: float) -> np.ndarray:
    """Pad bottom and right up to at least `size` (H, W) with a constant."""
    pad_h, pad_w = max(size[0] - array.shape[0], 0), max(size[1] - array.shape[1], 0)
    if pad_h == 0 and pad_w == 0:
        return array
    width = ((0, pad_h), (0, pad_w)) + ((0, 0),) * (array.ndim - 2)
    return np.pad(array, width, mode="constant", constant_values=value)


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> float32 (3, H, W), (x / 255 - mean) / std."""
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return tensor.sub_(mean_t).div_(std_t)


def photometric_jitter(image: np.ndarray, *, brightness: int = 10) -> np.ndarray:
    """With probability 0.5 shift all channels by an integer in [-brightness, brightness] (the official
    RANDOM_BRIGHTNESS option), then with probability 0.5 scale contrast and saturation by 0.8-1.2."""
    out = image.astype(np.float32)
    if torch.rand(()) < 0.5:
        out += _randint(-brightness, brightness)
    if torch.rand(()) < 0.5:
        contrast, saturation = (0.8 + 0.4 * torch.rand(2)).tolist()
        gray = out.mean(axis=2, keepdims=True)
        out = (out - out.mean()) * contrast + out.mean()
        out = (out - gray) * saturation + gray
    return np.clip(np.around(out), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class TrainTransform:
    """Random scale (and aspect), rotation, padded random crop, photometric changes, flip,
    cutout; image (H, W, 3) uint8 + train ids (H, W) -> (3, crop_h, crop_w) float32 +
    (crop_h, crop_w) int64.

    `base_size`: long side at scale 1 (2048 for Cityscapes); None scales the image's own size.
    `aspect_range`: the width / height stretch, log-uniform in the range (width x sqrt(a), height
    / sqrt(a)); `rotation`: degrees, uniform in [-rotation, rotation]; `color_jitter`, `blur`,
    `cutout`: see `hrnet.data.augment`.
    """

    crop_size: tuple[int, int]
    ignore_index: int
    base_size: int | None = None
    scale_range: tuple[float, float] = (0.5, 2.1)
    flip: bool = True
    photometric: bool = False
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    aspect_range: tuple[float, float] = (1.0, 1.0)
    rotation: float = 0.0
    color_jitter: tuple[float, float, float, float] | None = None
    blur: float = 0.0
    cutout: float = 0.0

    def __call__(self, image: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        image, labels = self.random_scale(image, labels)
        if self.rotation > 0:
            image, labels = self.random_rotation(image, labels)
        image, labels = self.random_crop(image, labels)
        if self.photometric:
            image = photometric_jitter(image)
        image = Photometric(color_jitter=self.color_jitter, blur=self.blur)(image)
        if self.flip and torch.rand(()) < 0.5:
            image, labels = image[:, ::-1].copy(), labels[:, ::-1].copy()  # a 1-wide view keeps its -1 stride
        image_t = cutout(normalize(image, self.mean, self.std), self.cutout)
        return image_t, torch.from_numpy(np.ascontiguousarray(labels))

    def random_scale(self, image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        low, high = self.scale_range
        # Steps of 0.1 as the official `0.5 + randint(0, SCALE_FACTOR) / 10`; its SCALE_FACTOR 16 reaches 2.1.
        steps = int(round((high - low) * 10))
        scale = low + _randint(0, steps) / 10.0
        long_side = int((self.base_size or max(image.shape[:2])) * scale + 0.5)
        # Masks are resized with nearest neighbour so labels are never blended.
        if self.aspect_range != (1.0, 1.0):
            return self._resize_with_aspect(image, labels, long_side)
        image = resize_long_side(image, long_side, cv2.INTER_LINEAR)
        labels = resize_long_side(labels.astype(np.uint8), long_side, cv2.INTER_NEAREST).astype(np.int64)
        return image, labels

    def _resize_with_aspect(self, image: np.ndarray, labels: np.ndarray, long_side: int
                            ) -> tuple[np.ndarray, np.ndarray]:
        low, high = (math.log(a) for a in self.aspect_range)
        stretch = math.sqrt(math.exp(low + (high - low) * float(torch.rand(()))))
        height, width = image.shape[:2]
        factor = long_side / max(height, width)
        size = (max(1, int(width * factor * stretch + 0.5)), max(1, int(height * factor / stretch + 0.5)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        labels = cv2.resize(labels.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(np.int64)
        return image, labels

    def random_rotation(self, image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rotate both about the image centre by an angle uniform in [-rotation, rotation] degrees;
        uncovered corners are black in the image and the ignore label in the mask."""
        angle = self.rotation * (2.0 * float(torch.rand(())) - 1.0)
        height, width = image.shape[:2]
        matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), angle, 1.0)
        image = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        labels = cv2.warpAffine(labels.astype(np.uint8), matrix, (width, height), flags=cv2.INTER_NEAREST,
                                borderValue=self.ignore_index).astype(np.int64)
        return image, labels

    def random_crop(self, image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        crop_h, crop_w = self.crop_size
        image = pad_to(image, self.crop_size, 0)
        labels = pad_to(labels, self.crop_size, self.ignore_index)
        top = _randint(0, image.shape[0] - crop_h)
        left = _randint(0, image.shape[1] - crop_w)
        return image[top : top + crop_h, left : left + crop_w], labels[top : top + crop_h, left : left + crop_w]


@dataclass(frozen=True)
class EvalTransform:
    """Normalise; optionally resize the image so its long side is `base_size` (the mask keeps the
    original size: metrics are computed at the label's resolution, as the official code does)."""

    base_size: int | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __call__(self, image: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        if self.base_size is not None and max(image.shape[:2]) != self.base_size:
            image = resize_long_side(image, self.base_size, cv2.INTER_LINEAR)
        return normalize(image, self.mean, self.std), torch.from_numpy(np.ascontiguousarray(labels))
