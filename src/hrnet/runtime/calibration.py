"""int8 calibration batches from a folder of images, made with each task's own pre-processing.

    batches = calibration_batches("classification", "photos/", input_size=(224, 224))
    fast = load_runtime(model, runtime="onnxruntime", precision="int8", calibration=batches)

classification: the evaluation transform (resize the shorter side, centre crop, ImageNet mean/std);
pose: the whole picture as one person box, cropped to the input as the top-down pipeline crops a
person (aspect fit, x1.25), then mean/std; segmentation: the picture resized to the input size,
then mean/std; detection: RGB in [0, 1] at the picture's size (the detector's own transform
resizes, normalises and pads it; see `hrnet.runtime.detector_inputs`).

`recipe_batches(config, "val")` instead takes the inputs of a split of the run's own data, exactly
as evaluation feeds them to the network: for top-down pose these are the person crops, whose
statistics whole pictures do not share (BENCHMARKS.md: -0.11 AP calibrated on whole pictures,
-0.008 on person crops). On the command line: `--calibrate recipe:val`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.io import IMAGE_SUFFIXES, DataError, read_image

DEFAULT_SIZES = {"classification": (224, 224), "pose": (256, 192), "segmentation": (512, 1024)}
DEFAULT_LIMIT = 32


def calibration_images(folder: str | os.PathLike, *, limit: int = DEFAULT_LIMIT) -> list[Path]:
    """Up to `limit` image files under `folder` (sorted; recursive)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"calibration folder {folder} does not exist (or is not a folder): give a folder of "
                        "typical images of the task")
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        others = sum(1 for p in folder.rglob("*") if p.is_file())
        raise DataError(f"calibration folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})"
                        + (f"; its {others} file(s) are of other kinds" if others else ", it is empty")
                        + ": put 8-64 typical images of the task there")
    return images[:limit]


def _classification(image: np.ndarray, size: tuple[int, int], data: Any) -> torch.Tensor:
    from ..tasks.classification import DataConfig, build_transform, to_tensor

    if data is None:
        data = DataConfig(image_size=size[0], resize_size=round(size[0] * 256 / 224))
    return build_transform(data, train=False)(to_tensor(image))


def _pose(image: np.ndarray, size: tuple[int, int], data: Any) -> torch.Tensor:
    from ..tasks.pose.data import to_tensor
    from ..tasks.pose.transforms import box_to_center_scale, crop

    height, width = size
    center, scale = box_to_center_scale([0, 0, image.shape[1], image.shape[0]], width / height)
    return to_tensor(crop(image, center, scale, 0.0, (width, height))[0])


def _segmentation(image: np.ndarray, size: tuple[int, int], data: Any) -> torch.Tensor:
    import cv2

    from ..tasks.segmentation.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize

    mean, std = (data.mean, data.std) if data is not None else (IMAGENET_MEAN, IMAGENET_STD)
    if image.shape[:2] != tuple(size):
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return normalize(image, mean, std)


def _detection(image: np.ndarray, size: tuple[int, int], data: Any) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)


PREPROCESS = {"classification": _classification, "pose": _pose, "segmentation": _segmentation,
              "detection": _detection}


def calibration_batches(task: str, images: str | os.PathLike | list[Path], *,
                        input_size: tuple[int, int] | None = None, batch_size: int = 4,
                        limit: int = DEFAULT_LIMIT, data: Any = None) -> list[Any]:
    """Batches (N, 3, H, W) of the images in a folder (or a list of files) pre-processed as `task`
    does for inference, at `input_size` (H, W; default the task's usual size). `data`: the task's
    recipe `data:` section, for its mean/std and sizes. Detection gives lists of (3, H, W) images."""
    if task not in PREPROCESS:
        raise DataError(f"no calibration pre-processing for task {task!r}; tasks: {', '.join(PREPROCESS)}")
    files = calibration_images(images, limit=limit) if not isinstance(images, list) else images[:limit]
    size = tuple(input_size or _size_from(task, data))
    samples = [PREPROCESS[task](read_image(path), size, data) for path in files]
    batches = [samples[i:i + batch_size] for i in range(0, len(samples), batch_size)]
    return [list(b) if task == "detection" else torch.stack(b) for b in batches]


def _size_from(task: str, data: Any) -> tuple[int, int]:
    if data is not None and task == "classification":
        return data.image_size, data.image_size
    if data is not None and task == "pose":
        return tuple(data.input_size)
    if data is not None and task == "segmentation":
        return tuple(data.test_crop_size or data.crop_size)
    return DEFAULT_SIZES.get(task, (0, 0))


RECIPE_SOURCE = "recipe:"
RECIPE_TASKS = ("classification", "pose", "segmentation")  # whose batches hold one (N, 3, H, W) input


def recipe_batches(config: Any, split: str = "val", *, limit: int = DEFAULT_LIMIT) -> list[torch.Tensor]:
    """The network inputs (N, 3, H, W) of the first batches of `split` of the run `config`,
    `limit` samples at most: "val" as evaluation makes them, "train" with the training
    augmentation (shuffled, so other samples each time)."""
    from ..engine import build_loader

    if config.task not in RECIPE_TASKS:
        raise DataError(f"--calibrate {RECIPE_SOURCE}{split}: {config.task} batches are pictures of "
                        f"their own sizes, not one input tensor; give a folder of typical images instead")
    if split not in ("train", "val"):
        raise DataError(f"--calibrate {RECIPE_SOURCE}{split}: the split must be train or val")
    from ..tasks import get_task

    task = get_task(config.task)(config)
    loader, _ = build_loader(task, config, split, torch.device("cpu"))
    batches, count = [], 0
    for batch in loader:
        images = batch["image"] if isinstance(batch, dict) else batch[0]
        batches.append(images[:limit - count])
        count += len(batches[-1])
        if count >= limit:
            break
    return batches


def source_batches(task: str, source: str, *, config: Any = None, input_size: tuple[int, int] | None = None,
                   limit: int = DEFAULT_LIMIT) -> list[Any]:
    """What `--calibrate SOURCE` names: `recipe:val` / `recipe:train` (a split of the recipe's
    data, needs the run's `config`), else a folder of images."""
    if not source.startswith(RECIPE_SOURCE):
        return calibration_batches(task, source, input_size=input_size, limit=limit,
                                   data=None if config is None else config.data)
    if config is None:
        raise DataError(f"--calibrate {source}: no recipe to read the data from; give --checkpoint of a run "
                        "(best.pth / last.pth) or --config RECIPE, or a folder of typical images")
    return recipe_batches(config, source[len(RECIPE_SOURCE):], limit=limit)
