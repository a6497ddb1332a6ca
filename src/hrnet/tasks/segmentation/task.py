"""`SegmentationTask`: HRNetV2 / HRNetV2 + OCR semantic segmentation plugged into the engine.

Recipe `data:` section (see `SegmentationDataConfig`); e.g. recipes/segmentation/cityscapes_hrnet_w48.yaml.
The class list is resolved once and written back into the config (`class_names`, `class_colors`,
`model.num_classes`), so a checkpoint carries it and `hrnet predict` needs no data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.utils.data import Dataset

from ...data.augment import check_augmentation
from ...data.io import DataError
from .classes import BUILTIN, ClassList, resolve_classes
from .data import SegmentationDataset, check_pairs_exist, class_weights, find_pairs, split_groups
from .inference import InferenceConfig, predict_labels
from .losses import SegmentationLoss
from .metrics import ConfusionMeter
from .predict import SegmentationInference, settings_with
from .transforms import IMAGENET_MEAN, IMAGENET_STD, EvalTransform, TrainTransform

log = logging.getLogger("hrnet")
DEFAULT_CLASS_FILES = ("classes.txt", "class_names.txt", "classes.yaml", "classes.json")


@dataclass
class SegmentationDataConfig:
    """The `data:` section of a segmentation recipe.

    format/root: the dataset layout (cityscapes, ade20k, camvid, generic; see `data.py`). generic:
    `image_dir`/`mask_dir` under root (may contain `{split}`), classes from `classes` or
    ROOT/classes.txt. `classes`: a built-in list (cityscapes, camvid, ade20k) or a class-list file;
    default: the format's own. Sizes are (H, W); `base_size` is the long side at scale 1 (None: the
    image's own size). Loss: "ce" or "ohem" (`ohem_min_kept_per_image`: the official MIN_KEPT divided
    by the images per GPU; `ohem_aux_normalization`: see `losses.py`); `output_weights` weigh the
    model's outputs (OCR: aux 0.4, main 1). Evaluation: `test_mode` whole, slide (the official base algorithm: stride
    `test_stride`, default 2/3 of the crop, padded windows) or cityscapes (the official Cityscapes
    algorithm: whole image at scales <= 1, fitted crop-sized windows above) with windows of
    `test_crop_size` (default: the training crop; the official Cityscapes test uses the whole
    1024x2048 image), `test_scales`, `test_flip`, `test_base_size`. `class_weights`: none, computed
    from the training masks (enet, median_frequency) or a list of one weight per class. `max_samples` > 0 keeps the first N.

    Small-data augmentation (off by default, as officially): `aspect_range` (a random width/height
    stretch with the scale), `rotation` (degrees), `color_jitter` ([brightness, contrast, saturation,
    hue]), `blur` (probability), `cutout` (hole side / shorter side); see transforms.py and
    `hrnet.data.augment`. `val_groups`: a harder validation that holds out whole groups (sequences,
    folders) of the TRAIN split: every train pair whose file name starts with one of the prefixes
    (e.g. CamVid's sequence names "0006R0_"), or whose path below data.root contains a folder
    "PREFIX/" for a prefix ending in "/", is left out of training and evaluated instead of the val
    split, so the numbers measure scenes the model never saw.
    """

    format: Literal["cityscapes", "ade20k", "camvid", "generic"] = "generic"
    root: str = ""
    image_dir: str = "images/{split}"
    mask_dir: str = "masks/{split}"
    classes: str | None = None
    class_names: list[str] | None = None
    class_colors: list[list[int]] | None = None
    ignore_index: int = 255
    crop_size: tuple[int, int] = (512, 1024)
    base_size: int | None = 2048
    scale_range: tuple[float, float] = (0.5, 2.1)  # official: 0.5 + randint(0, 16) / 10
    flip: bool = True
    photometric: bool = False
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    class_weights: Literal["none", "enet", "median_frequency"] | list[float] = "none"
    loss: Literal["ce", "ohem"] = "ce"
    ohem_thresh: float = 0.9
    ohem_min_kept_per_image: int = 43691  # official MIN_KEPT 131072 per GPU batch of 3 images
    ohem_aux_normalization: Literal["all_pixels", "labelled"] = "all_pixels"
    output_weights: list[float] = field(default_factory=lambda: [0.4, 1.0])
    test_mode: Literal["whole", "slide", "cityscapes"] = "whole"
    test_base_size: int | None = None
    test_scales: list[float] = field(default_factory=lambda: [1.0])
    test_flip: bool = False
    test_stride: tuple[int, int] | None = None
    test_crop_size: tuple[int, int] | None = None  # windows of slide/cityscapes (None: crop_size)
    max_samples: int = 0
    aspect_range: tuple[float, float] = (1.0, 1.0)
    rotation: float = 0.0
    color_jitter: tuple[float, float, float, float] | None = None
    blur: float = 0.0
    cutout: float = 0.0
    val_groups: list[str] | None = None

    def __post_init__(self) -> None:
        if min(self.crop_size) < 1 or self.scale_range[0] <= 0 or self.scale_range[0] > self.scale_range[1]:
            raise ValueError(f"crop_size {self.crop_size} must be positive and scale_range {self.scale_range} "
                             "a (low, high) pair of positive scales")
        if not 0 < self.aspect_range[0] <= self.aspect_range[1]:
            raise ValueError(f"aspect_range {self.aspect_range} must be a (low, high) pair of positive stretches")
        if not 0 <= self.rotation <= 180:
            raise ValueError(f"rotation {self.rotation} must be in [0, 180] degrees")
        check_augmentation(color_jitter=self.color_jitter, blur=self.blur, cutout=self.cutout)
        if self.val_groups is not None and (not self.val_groups or not all(self.val_groups)):
            raise ValueError("val_groups must be a non-empty list of non-empty prefixes (e.g. [0006R0_]), or null")
        if not self.test_scales or min(self.test_scales) <= 0:
            raise ValueError(f"test_scales {self.test_scales} must be a non-empty list of positive scales")


class SegmentationTask:
    name: ClassVar[str] = "segmentation"
    DataConfig: ClassVar[type] = SegmentationDataConfig

    def __init__(self, config: Any) -> None:
        self.config = config
        self.data: SegmentationDataConfig = config.data
        self.classes = self._resolve_classes()
        self.data.class_names = list(self.classes.names)
        self.data.class_colors = [list(c) for c in self.classes.colors]
        self.data.ignore_index = self.classes.ignore_index
        if config.model.num_classes not in (None, self.classes.num_classes):
            raise ValueError(f"model.num_classes is {config.model.num_classes} but the class list has "
                             f"{self.classes.num_classes} classes ({', '.join(self.classes.names[:5])}, ...)")
        config.model.num_classes = self.classes.num_classes
        self.align_corners = bool(config.model.align_corners) if config.model.align_corners is not None \
            else config.model.head == "ocr"
        self.criterion: SegmentationLoss | None = None

    def _resolve_classes(self) -> ClassList:
        data = self.data
        # Built-in lists first: they carry the raw-label mapping (Cityscapes ids, ADE20K's zero label).
        builtin = (data.classes or ("" if data.format == "generic" else data.format)).lower()
        if builtin in BUILTIN:
            return BUILTIN[builtin]
        if data.class_names:  # written back by an earlier run (a checkpoint's config)
            return ClassList(names=tuple(data.class_names), colors=tuple(tuple(c) for c in data.class_colors or ()),
                             ignore_index=data.ignore_index)
        if data.classes:
            path = Path(data.classes)
            return resolve_classes(path if path.is_absolute() or path.exists() else Path(data.root) / path,
                                   ignore_index=data.ignore_index)
        for name in DEFAULT_CLASS_FILES:
            if (Path(data.root) / name).is_file():
                return ClassList.from_file(Path(data.root) / name, ignore_index=data.ignore_index)
        raise DataError(f"generic data under {data.root!r} needs a class list: add {data.root}/classes.txt (one class "
                        "name per line, optionally `name r g b`) or set data.classes")

    # ------------------------------------------------------------------ model and data

    def build_model(self) -> nn.Module:
        model = self.config.model.create("segmentation")
        self.align_corners = model.spec.align_corners
        return model

    def build_dataset(self, split: str) -> Dataset:
        data = self.data
        if not data.root:
            raise DataError("data.root is empty: set it to the dataset folder (e.g. --set data.root=/data/cityscapes)")
        if split not in ("train", "val"):
            raise ValueError(f"unknown split {split!r}: train or val")
        if data.val_groups:  # both sets come from the train split, whole groups held out
            pairs = find_pairs(data.format, data.root, "train", image_dir=data.image_dir, mask_dir=data.mask_dir)
            kept, held_out = split_groups(pairs, data.val_groups, root=data.root)
            pairs = kept if split == "train" else held_out
        else:
            pairs = find_pairs(data.format, data.root, split, image_dir=data.image_dir, mask_dir=data.mask_dir)
        if data.max_samples:
            pairs = pairs[: data.max_samples]
        check_pairs_exist(pairs, f"the {split} set")
        if split == "train":
            transform = TrainTransform(crop_size=data.crop_size, ignore_index=self.classes.ignore_index,
                                       base_size=data.base_size, scale_range=data.scale_range, flip=data.flip,
                                       photometric=data.photometric, mean=data.mean, std=data.std,
                                       aspect_range=data.aspect_range, rotation=data.rotation,
                                       color_jitter=data.color_jitter, blur=data.blur, cutout=data.cutout)
        else:
            transform = EvalTransform(base_size=data.test_base_size, mean=data.mean, std=data.std)
        dataset = SegmentationDataset(pairs=pairs, classes=self.classes, transform=transform)
        if split == "train":
            self.criterion = self._build_criterion(dataset)
        return dataset

    def _build_criterion(self, train_set: SegmentationDataset | None) -> SegmentationLoss:
        weights = None
        if isinstance(self.data.class_weights, list):
            weights = torch.tensor(self.data.class_weights, dtype=torch.float32)
            if len(weights) != self.classes.num_classes:
                raise DataError(f"data.class_weights has {len(weights)} values for {self.classes.num_classes} classes")
        elif self.data.class_weights != "none" and train_set is not None:
            counts = train_set.class_pixel_counts()
            weights = torch.from_numpy(class_weights(counts, self.data.class_weights))
            log.info("class weights (%s): %s", self.data.class_weights, [round(float(w), 3) for w in weights])
        return SegmentationLoss(ignore_index=self.classes.ignore_index, align_corners=self.align_corners,
                                output_weights=self.data.output_weights, class_weights=weights,
                                ohem=self.data.loss == "ohem", ohem_thresh=self.data.ohem_thresh,
                                ohem_min_kept_per_image=self.data.ohem_min_kept_per_image,
                                aux_normalization=self.data.ohem_aux_normalization)

    def collate(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        """Stack images (N, 3, H, W) and masks (N, H, W); samples of different sizes are padded
        (image 0, mask ignore) and their true sizes kept in "sizes" (image) and "mask_sizes"."""
        images = [s["image"] for s in samples]
        masks = [s["mask"] for s in samples]
        height = max(i.shape[-2] for i in images)
        width = max(i.shape[-1] for i in images)
        mask_h = max(m.shape[-2] for m in masks)
        mask_w = max(m.shape[-1] for m in masks)
        batch_images = images[0].new_zeros(len(images), images[0].shape[0], height, width)
        batch_masks = masks[0].new_full((len(masks), mask_h, mask_w), self.classes.ignore_index)
        for index, (image, mask) in enumerate(zip(images, masks)):
            batch_images[index, :, : image.shape[-2], : image.shape[-1]] = image
            batch_masks[index, : mask.shape[-2], : mask.shape[-1]] = mask
        return {"image": batch_images, "mask": batch_masks, "index": torch.tensor([s["index"] for s in samples]),
                "sizes": [tuple(i.shape[-2:]) for i in images], "mask_sizes": [tuple(m.shape[-2:]) for m in masks]}

    # ------------------------------------------------------------------ training and evaluation

    def train_step(self, model: nn.Module, batch: dict[str, Any], device: torch.device
                   ) -> tuple[torch.Tensor, dict[str, float]]:
        if self.criterion is None:
            self.criterion = self._build_criterion(None)
        self.criterion.to(device)
        images = batch["image"].to(device, non_blocking=True)
        masks = batch["mask"].to(device, non_blocking=True)
        return self.criterion(model(images), masks)

    def inference_config(self) -> InferenceConfig:
        data = self.data
        return InferenceConfig(mode=data.test_mode, crop_size=data.test_crop_size or data.crop_size,
                               stride=data.test_stride,
                               scales=tuple(data.test_scales), flip_test=data.test_flip, base_size=data.test_base_size,
                               align_corners=self.align_corners)

    def make_evaluator(self, device: torch.device) -> "SegmentationEvaluator":
        return SegmentationEvaluator(task=self, device=device)

    def inference_settings(self) -> InferenceConfig:
        return self.inference_config()

    def inference(self, model: nn.Module, *, device: torch.device, keep_scores: bool = True,
                  how: dict[str, Any] | None = None, **options: Any) -> SegmentationInference:
        """What `hrnet.Predictor` runs: the recipe's test settings with `options` replaced
        (InferenceConfig field names: mode, scales, flip_test, base_size, crop_size, stride)."""
        return SegmentationInference(model, classes=self.classes, device=device,
                                     settings=settings_with(self.inference_config(), options),
                                     mean=self.data.mean, std=self.data.std, keep_scores=keep_scores, how=how)


def inference_how(inference: InferenceConfig, data: SegmentationDataConfig) -> dict[str, Any]:
    """How evaluation predicts (for the log and the results): mode, scales, flip, windows, val set."""
    how: dict[str, Any] = {"mode": inference.mode, "scales": list(inference.scales),
                           "flip": "logits of the image and its mirror averaged" if inference.flip_test else "off",
                           "base_size": inference.base_size}
    if inference.mode != "whole":
        how["window"] = list(inference.crop_size)
    how["val_set"] = (f"groups {', '.join(data.val_groups)} held out of the train split" if data.val_groups
                      else "the val split")
    return how


class SegmentationEvaluator:
    """Confusion matrix over the val set with the task's inference settings; `compute` gives mIoU
    (official), mIoU_present, pixel_acc, mean_acc and IoU/<class> in percent."""

    main_metric = "mIoU"
    higher_is_better = True

    def __init__(self, *, task: SegmentationTask, device: torch.device):
        self.task = task
        self.device = device
        self.inference = task.inference_config()
        self.meter = ConfusionMeter(num_classes=task.classes.num_classes, ignore_index=task.classes.ignore_index,
                                    names=task.classes.names, device=device)
        self.pad_value = [-m / s for m, s in zip(task.data.mean, task.data.std)]
        self.how = inference_how(self.inference, task.data)

    def update(self, model: nn.Module, batch: dict[str, Any]) -> None:
        images = batch["image"].to(self.device, non_blocking=True)
        masks = batch["mask"].to(self.device, non_blocking=True)
        same_size = len(set(batch["sizes"])) == 1 and len(set(batch["mask_sizes"])) == 1
        if same_size:
            self._score(model, images, masks)
            return
        # Mixed sizes were padded by `collate`: evaluate each image on its own, unpadded.
        for index, ((h, w), (mh, mw)) in enumerate(zip(batch["sizes"], batch["mask_sizes"])):
            self._score(model, images[index : index + 1, :, :h, :w], masks[index : index + 1, :mh, :mw])

    def _score(self, model: nn.Module, images: torch.Tensor, masks: torch.Tensor) -> None:
        labels = predict_labels(model, images, self.inference, num_classes=self.task.classes.num_classes,
                                output_size=tuple(masks.shape[-2:]), pad_value=self.pad_value)
        self.meter.update(labels, masks)

    def synchronize(self) -> None:
        self.meter.synchronize()

    def compute(self) -> dict[str, float]:
        return self.meter.compute()
