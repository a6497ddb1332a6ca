"""Object detection with HRNetV2p (Faster R-CNN / Mask R-CNN) for the training engine.

Recipe::

    task: detection
    model: {arch: hrnet_w18, head: faster_rcnn, pretrained: hrnetv2_w18_imagenet.pth}   # head: mask_rcnn
    data:  {train: coco/annotations/instances_train2017.json, train_images: coco/train2017,
            val: coco/annotations/instances_val2017.json, val_images: coco/val2017, backbone_norm: norm_eval}

`model.head` picks the detector (faster_rcnn, the default, or mask_rcnn). `model.pretrained` is an
ImageNet classification checkpoint loaded into the HRNet body, or the weights of a whole detector.
The detector settings that `ModelConfig` has no key for (backbone BatchNorm, image sizes, widths)
live in `data:`. Class names and json category ids are read from the training json once and kept
in the saved recipe, so `hrnet eval` / `hrnet predict` need no data to name the classes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from hrnet.engine.task import replace_settings

from .data import CocoDetection, class_categories, collate, read_instances
from .evaluate import CocoEvaluator
from .predict import DetectionInference, DetectionSettings, person_boxes, person_label_of
from hrnet.detectors import DETECTORS, build_detector


@dataclass
class DataConfig:
    """train / val: COCO instances jsons; *_images: the folders their file_names are relative to
    (default: the json's folder). skip_empty: leave training images without boxes out. flip: the
    probability of a horizontal flip in training (official 0.5). min_size / max_size: the shorter
    side and its cap (800 / 1333); multiscale: shorter sides to draw from in training (evaluation
    uses min_size). backbone_norm: "norm_eval" (official, for ImageNet-initialised training:
    BatchNorm statistics fixed, affine trained), "frozen" (FrozenBatchNorm2d) or "train" (from scratch).
    fpn_channels / representation_size: the pyramid and box-head widths (256 / 1024).
    score_threshold: the lowest score `hrnet predict` keeps. detector_options: keyword arguments of
    torchvision's FasterRCNN / MaskRCNN (e.g. box_batch_size_per_image: 512). class_names / category_ids: filled
    from the training json when not given. test_flip: evaluate on each image and its mirror, merged
    by class-wise NMS (`tta.detection_flip`)."""

    train: str = ""
    val: str = ""
    train_images: str | None = None
    val_images: str | None = None
    skip_empty: bool = True
    flip: float = 0.5
    min_size: int = 800
    max_size: int = 1333
    multiscale: list[int] | None = None
    backbone_norm: Literal["norm_eval", "frozen", "train"] = "train"
    fpn_channels: int = 256
    representation_size: int = 1024
    score_threshold: float = 0.3
    detector_options: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] | None = None
    category_ids: list[int] | None = None
    test_flip: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.flip <= 1:
            raise ValueError(f"flip must be a probability in [0, 1], got {self.flip}")
        if self.min_size < 1 or self.max_size < self.min_size:
            raise ValueError(f"min_size ({self.min_size}) must be >= 1 and max_size ({self.max_size}) "
                             "at least as large")
        if self.class_names is not None and self.category_ids is not None \
                and len(self.class_names) != len(self.category_ids):
            raise ValueError(f"class_names ({len(self.class_names)}) and category_ids ({len(self.category_ids)}) "
                             "need one entry per class")


class DetectionTask:
    name: ClassVar[str] = "detection"
    DataConfig: ClassVar[type] = DataConfig
    head_prefixes: ClassVar[tuple[str, ...]] = ("rpn.", "roi_heads.")

    def __init__(self, config: Any) -> None:
        self.config = config
        data: DataConfig = config.data
        if data.class_names is None and data.train:
            categories = class_categories(read_instances(data.train)["categories"])
            data.class_names = [c["name"] for c in categories]
            data.category_ids = [c["id"] for c in categories]
        if data.class_names is not None:
            if data.category_ids is None:
                data.category_ids = list(range(1, len(data.class_names) + 1))
            wanted = len(data.class_names) + 1
            if config.model.num_classes is None:
                config.model.num_classes = wanted
            elif config.model.num_classes != wanted:
                raise ValueError(f"model.num_classes is {config.model.num_classes} but the data has "
                                 f"{len(data.class_names)} classes (+1 for the background = {wanted})")
        if config.model.num_classes is None:
            raise ValueError("detection needs data.train (a COCO json), data.class_names or model.num_classes "
                             "(classes + 1 for the background)")
        if (config.model.head or "faster_rcnn") not in DETECTORS:
            raise ValueError(f"model.head {config.model.head!r}: a detection model is one of {', '.join(DETECTORS)}")
        self.detector = config.model.head or "faster_rcnn"
        self.class_names = data.class_names or [str(i) for i in range(1, config.model.num_classes)]

    # ---- model and data

    def _checkpoint(self) -> str | None:
        """`model.pretrained`, or the file of `model.weights` (a whole detector or ImageNet weights)."""
        model = self.config.model
        if model.weights is None:
            return model.pretrained
        from hrnet.weights import get_weights

        name = model.weights if not isinstance(model.weights, str) or "." in model.weights else \
            f"{model.arch}.{model.weights}"
        return str(get_weights(name).get_path())

    def build_model(self) -> nn.Module:
        data: DataConfig = self.config.data
        return build_detector(self.config.model.spec(), num_classes=self.config.model.num_classes,
                              detector=self.detector, backbone_norm=data.backbone_norm, checkpoint=self._checkpoint(),
                              min_size=[*(data.multiscale or []), data.min_size], max_size=data.max_size,
                              fpn_channels=data.fpn_channels, representation_size=data.representation_size,
                              **data.detector_options)

    def build_dataset(self, split: str) -> Dataset:
        data: DataConfig = self.config.data
        if split not in ("train", "val"):
            raise ValueError(f"unknown split {split!r}: train or val")
        annotations = data.train if split == "train" else data.val
        if not annotations:
            raise ValueError(f"data.{split} is not set: give a COCO instances json")
        train = split == "train"
        dataset = CocoDetection(annotations=annotations, images=data.train_images if train else data.val_images,
                                masks=train and self.detector == "mask_rcnn", skip_empty=train and data.skip_empty,
                                flip=data.flip if train else 0.0)
        if [c["name"] for c in dataset.categories] != self.class_names:
            raise ValueError(f"{annotations}: its categories {dataset.class_names} differ from the model's classes "
                             f"{self.class_names}")
        return dataset

    def collate(self, samples: list[Any]) -> Any:
        return collate(samples)

    def train_step(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        images, targets = batch
        images = [image.to(device, non_blocking=True) for image in images]
        targets = [{k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in t.items()}
                   for t in targets]
        losses = model(images, targets)
        loss = sum(value.float() for value in losses.values())
        return loss, {name: float(value.detach()) for name, value in losses.items()}

    def make_evaluator(self, device: torch.device) -> CocoEvaluator:
        if not self.config.data.val:
            raise ValueError("data.val is not set: give a COCO instances json to evaluate on")
        return CocoEvaluator(annotations=self.config.data.val, category_ids=self.config.data.category_ids,
                             masks=self.detector == "mask_rcnn", device=device, flip=self.config.data.test_flip)

    # ---- prediction

    def inference_settings(self) -> DetectionSettings:
        return DetectionSettings(score_threshold=self.config.data.score_threshold, flip_test=self.config.data.test_flip)

    def inference(self, model: nn.Module, *, device: torch.device, how: dict[str, Any] | None = None,
                  **options: Any) -> DetectionInference:
        """What `hrnet.Predictor` runs: the recipe's settings with `options` replaced (score_threshold)."""
        settings = replace_settings(self.inference_settings(), options, "detection")
        return DetectionInference(model, class_names=self.class_names, category_ids=self.config.data.category_ids,
                                  device=device, settings=settings, how=how)

    def person_detector(self, model: nn.Module, *, score_threshold: float = 0.5) -> Callable[[np.ndarray], np.ndarray]:
        """A person detector for top-down pose: RGB image (H, W, 3) -> (N, 5) [x1, y1, x2, y2, score]
        (what the pose inference's box source takes)."""
        label = person_label_of(self.class_names)
        return functools.partial(person_boxes, model, person_label=label, score_threshold=score_threshold)
