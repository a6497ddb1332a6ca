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

from ...data.io import DataError
from ...engine.task import Prediction
from .classes import BUILTIN, ClassList, resolve_classes
from .data import SegmentationDataset, class_weights, find_pairs
from .inference import InferenceConfig, predict_labels
from .losses import SegmentationLoss
from .metrics import ConfusionMeter
from .predict import Segmenter, predict_files
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
    image's own size). Loss: "ce" or "ohem"; `output_weights` weigh the model's outputs (OCR:
    aux 0.4, main 1). Evaluation: `test_mode` whole or slide (stride `test_stride`, default 2/3 of
    the crop), `test_scales`, `test_flip`, `test_base_size`. `max_samples` > 0 keeps the first N.
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
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    photometric: bool = False
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    class_weights: Literal["none", "enet", "median_frequency"] = "none"
    loss: Literal["ce", "ohem"] = "ce"
    ohem_thresh: float = 0.9
    ohem_min_kept: int = 131072
    output_weights: list[float] = field(default_factory=lambda: [0.4, 1.0])
    test_mode: Literal["whole", "slide"] = "whole"
    test_base_size: int | None = None
    test_scales: list[float] = field(default_factory=lambda: [1.0])
    test_flip: bool = False
    test_stride: tuple[int, int] | None = None
    max_samples: int = 0

    def __post_init__(self) -> None:
        if min(self.crop_size) < 1 or self.scale_range[0] <= 0 or self.scale_range[0] > self.scale_range[1]:
            raise ValueError(f"crop_size {self.crop_size} must be positive and scale_range {self.scale_range} "
                             "a (low, high) pair of positive scales")
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
        pairs = find_pairs(data.format, data.root, split, image_dir=data.image_dir, mask_dir=data.mask_dir)
        if data.max_samples:
            pairs = pairs[: data.max_samples]
        if split == "train":
            transform = TrainTransform(crop_size=data.crop_size, ignore_index=self.classes.ignore_index,
                                       base_size=data.base_size, scale_range=data.scale_range, flip=data.flip,
                                       photometric=data.photometric, mean=data.mean, std=data.std)
        else:
            transform = EvalTransform(base_size=data.test_base_size, mean=data.mean, std=data.std)
        dataset = SegmentationDataset(pairs=pairs, classes=self.classes, transform=transform)
        if split == "train":
            self.criterion = self._build_criterion(dataset)
        return dataset

    def _build_criterion(self, train_set: SegmentationDataset | None) -> SegmentationLoss:
        weights = None
        if self.data.class_weights != "none" and train_set is not None:
            counts = train_set.class_pixel_counts()
            weights = torch.from_numpy(class_weights(counts, self.data.class_weights))
            log.info("class weights (%s): %s", self.data.class_weights, [round(float(w), 3) for w in weights])
        return SegmentationLoss(ignore_index=self.classes.ignore_index, align_corners=self.align_corners,
                                output_weights=self.data.output_weights, class_weights=weights,
                                ohem=self.data.loss == "ohem", ohem_thresh=self.data.ohem_thresh,
                                ohem_min_kept=self.data.ohem_min_kept)

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
        return InferenceConfig(mode=data.test_mode, crop_size=data.crop_size, stride=data.test_stride,
                               scales=tuple(data.test_scales), flip=data.test_flip, base_size=data.test_base_size,
                               align_corners=self.align_corners)

    def make_evaluator(self, device: torch.device) -> "SegmentationEvaluator":
        return SegmentationEvaluator(task=self, device=device)

    def predict(self, model: nn.Module, inputs: list[Path], out_dir: Path, **options: Any) -> list[Prediction]:
        """Colour masks, overlays and label PNGs per image, an overlay MP4 per video (see `predict.py`)."""
        device = next(model.parameters()).device
        segmenter = Segmenter(model=model, classes=self.classes, inference=self.inference_config(),
                              mean=self.data.mean, std=self.data.std, device=device)
        return predict_files(segmenter, inputs, out_dir, max_frames=options.get("max_frames"))

    @staticmethod
    def format_prediction(prediction: Prediction) -> str:
        shares = sorted(prediction.outputs["classes"].items(), key=lambda item: -item[1])[:5]
        text = ", ".join(f"{name} {100 * share:.1f}%" for name, share in shares)
        return f"{text} -> {prediction.picture}"


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
