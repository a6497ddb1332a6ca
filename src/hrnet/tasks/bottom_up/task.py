"""`BottomUpPoseTask`: HigherHRNet bottom-up pose plugged into the training engine (`engine/task.py`).

Recipe `data:` section (`BottomUpDataConfig`), the official COCO W32-512 settings::

    data:
      keypoints: coco
      train_annotations: data/coco/annotations/person_keypoints_train2017.json
      train_images: data/coco/images/train2017
      val_annotations: data/coco/annotations/person_keypoints_val2017.json
      val_images: data/coco/images/val2017
      input_size: 512                 # square training input; outputs at 1/4 and 1/2 (128, 256)
      sigma: 2.0                      # pixels, at every output resolution
      test: {scales: [1.0], flip: true, adjust: true, refine: true}

The recipe's `model` is `create_model(arch, task="bottom_up_pose")`: the official head (one deconv
stage of the backbone's width, 4 basic blocks, tags on the 1/4 output only).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import default_collate

from hrnet.engine.task import replace_settings
from hrnet.errors import ConfigError

from ..pose.task import keypoint_metadata
from .data import BottomUpDataset, ImageDataset, ImageRecord, load_coco_images
from .evaluate import BottomUpEvaluator
from .inference import BottomUpSettings, bottom_up_head, predict_people
from .targets import LossFactors, bottom_up_loss
from .transforms import Augmentation


@dataclass
class BottomUpDataConfig:
    """The `data:` section of a bottom-up recipe (defaults: the official COCO W32-512 yaml).

    Augmentation (official RandomAffineTransform / RandomHorizontalFlip): scale in [min_scale,
    max_scale] of the short (or long) side, rotation up to max_rotation degrees, translation up to
    max_translate x scale pixels, flip with probability `flip`. Loss factors: one per output
    (heatmaps at 1/4 and 1/2 resolution); `ae_loss_type` exp or max. `test`: the inference settings
    shared by evaluation and prediction (`test.input_size` None: `input_size`)."""

    keypoints: str = "coco"
    train_annotations: str = ""
    train_images: str = ""
    val_annotations: str = ""
    val_images: str = ""
    train_repeat: int = 1  # passes over the training images per epoch (for very small sets)
    input_size: int = 512
    sigma: float = 2.0
    max_people: int = 30
    max_rotation: float = 30.0
    min_scale: float = 0.75
    max_scale: float = 1.5
    scale_type: Literal["short", "long"] = "short"
    max_translate: float = 40.0
    flip: float = 0.5
    heatmap_loss_factors: list[float] = field(default_factory=lambda: [1.0, 1.0])
    push_loss_factors: list[float] = field(default_factory=lambda: [0.001, 0.001])
    pull_loss_factors: list[float] = field(default_factory=lambda: [0.001, 0.001])
    ae_loss_type: Literal["exp", "max"] = "exp"
    test: BottomUpSettings = field(default_factory=BottomUpSettings)

    def __post_init__(self) -> None:
        outputs = len(self.heatmap_loss_factors)
        if not outputs or len(self.push_loss_factors) != outputs or len(self.pull_loss_factors) != outputs:
            raise ValueError("data.heatmap_loss_factors, push_loss_factors and pull_loss_factors need one entry per "
                             f"model output (2 for HigherHRNet), got {self.heatmap_loss_factors}, "
                             f"{self.push_loss_factors}, {self.pull_loss_factors}")
        if self.input_size <= 0 or self.input_size % (4 * 2 ** (outputs - 1)):
            raise ValueError(f"data.input_size must be a positive multiple of {4 * 2 ** (outputs - 1)} (the outputs "
                             f"are at 1/4 and finer), got {self.input_size}")
        if self.sigma <= 0 or self.max_people < 1 or self.train_repeat < 1:
            raise ValueError("data.sigma must be positive, data.max_people and data.train_repeat >= 1")
        if not 0.0 <= self.flip <= 1.0:
            raise ValueError(f"data.flip is a probability in [0, 1], got {self.flip}")
        Augmentation(max_rotation=self.max_rotation, min_scale=self.min_scale, max_scale=self.max_scale,
                     scale_type=self.scale_type, max_translate=self.max_translate, flip=self.flip)

    @property
    def output_sizes(self) -> tuple[int, ...]:
        """Square target sizes of the outputs: input / 4, input / 2, ..."""
        return tuple(self.input_size // 4 * 2**i for i in range(len(self.heatmap_loss_factors)))


class BottomUpPoseTask:
    name: ClassVar[str] = "bottom_up_pose"
    DataConfig: ClassVar[type] = BottomUpDataConfig

    def __init__(self, config: Any):
        self.config = config
        self.data: BottomUpDataConfig = config.data
        self.metadata = keypoint_metadata(config)
        d = self.data
        self.factors = LossFactors(heatmap=tuple(d.heatmap_loss_factors), push=tuple(d.push_loss_factors),
                                   pull=tuple(d.pull_loss_factors), ae_type=d.ae_loss_type)
        self._records: dict[str, list[ImageRecord]] = {}

    def build_model(self) -> nn.Module:
        model = self.config.model.create("bottom_up_pose")
        if model.head.num_outputs != len(self.data.output_sizes):
            raise ConfigError(f"the model has {model.head.num_outputs} outputs but data.heatmap_loss_factors "
                              f"{self.data.heatmap_loss_factors} gives {len(self.data.output_sizes)}: one factor "
                              "per output")
        return model

    def records(self, split: str) -> list[ImageRecord]:
        """Images of `split`: training ones with at least one person annotation, every val image."""
        if split not in self._records:
            d = self.data
            annotations, images = (d.train_annotations, d.train_images) if split == "train" else (
                d.val_annotations, d.val_images)
            if not annotations:
                raise ConfigError(f"data.{split}_annotations is not set: give the {split} COCO keypoints file")
            self._records[split] = load_coco_images(annotations, images, metadata=self.metadata,
                                                    with_people_only=split == "train")
        return self._records[split]

    def build_dataset(self, split: str) -> BottomUpDataset | ImageDataset:
        if split != "train":
            return ImageDataset(self.records(split))
        d = self.data
        augmentation = Augmentation(max_rotation=d.max_rotation, min_scale=d.min_scale, max_scale=d.max_scale,
                                    scale_type=d.scale_type, max_translate=d.max_translate, flip=d.flip)
        return BottomUpDataset(self.records("train") * d.train_repeat, metadata=self.metadata,
                               input_size=d.input_size, output_sizes=d.output_sizes, sigma=d.sigma,
                               max_people=d.max_people, augmentation=augmentation)

    def collate(self, samples: list[dict[str, Any]]) -> Any:
        # Evaluation images keep their own sizes: a list of samples.
        return default_collate(samples) if "heatmaps" in samples[0] else list(samples)

    def train_step(self, model: nn.Module, batch: dict[str, Any], device: torch.device
                   ) -> tuple[torch.Tensor, dict[str, float]]:
        head = bottom_up_head(getattr(model, "module", model))  # DDP: the head's layout, not its forward
        images = batch["image"].to(device, non_blocking=True)
        heatmaps = [h.to(device, non_blocking=True) for h in batch["heatmaps"]]
        masks = [m.to(device, non_blocking=True) for m in batch["masks"]]
        joints = [j.to(device, non_blocking=True) for j in batch["joints"]]
        if not head.tag_per_joint:  # one shared tag map: index y * r + x
            joints = [torch.stack((j[..., 0] % (r * r), j[..., 1]), dim=-1)
                      for j, r in zip(joints, self.data.output_sizes)]
        outputs = model(images)
        loss, parts = bottom_up_loss(outputs, heatmaps, masks, joints, num_joints=head.num_classes,
                                     with_ae=head.with_ae_loss, factors=self.factors)
        return loss, {"loss": float(loss.detach()), **parts}

    def inference_settings(self) -> BottomUpSettings:
        """data.test, its input size defaulting to data.input_size: shared by `hrnet eval` and prediction."""
        test = self.data.test
        return test if test.input_size else dataclasses.replace(test, input_size=self.data.input_size)

    def make_evaluator(self, device: torch.device) -> BottomUpEvaluator:
        if not self.data.val_annotations:
            raise ConfigError("data.val_annotations is not set: give the val COCO keypoints file")
        return BottomUpEvaluator(annotations=self.data.val_annotations, metadata=self.metadata,
                                 settings=self.inference_settings())

    def inference(self, model: nn.Module, *, device: torch.device, how: dict[str, Any] | None = None,
                  **options: Any) -> "BottomUpInference":
        """What `hrnet.Predictor` runs: `inference_settings()` with `options` replaced by
        BottomUpSettings field names (unknown names raise)."""
        settings = replace_settings(self.inference_settings(), options, "bottom_up_pose")
        return BottomUpInference(model.to(device), metadata=self.metadata, settings=settings, how=how)


class BottomUpInference:
    """Bottom-up pose for `hrnet.Predictor` (`engine.task.TaskInference`): whole pictures in, the
    top-down task's `Poses` results out (each person's box: the extent of its found keypoints)."""

    task = "bottom_up_pose"

    def __init__(self, model: nn.Module, *, metadata: Any, settings: BottomUpSettings,
                 how: dict[str, Any] | None = None):
        self.model, self.metadata, self.settings = model, metadata, settings
        self.how = {"task": self.task, **settings.describe(), **(how or {})}

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return image  # the resizing depends on the scales, done in `run`

    def run(self, pictures: list[np.ndarray], prepared: list[np.ndarray], names: list[str], **options: Any
            ) -> list[Any]:
        from ..pose.predict import Poses

        if options:
            raise ConfigError(f"bottom-up pose takes no per-call options (got {sorted(options)}): people are found "
                              "in the whole picture; pass settings to Predictor(...) instead")
        results = []
        for name, picture in zip(names, pictures):
            keypoints, scores = predict_people(self.model, picture, self.settings, metadata=self.metadata)
            results.append(Poses(source=name, image=picture, how=dict(self.how), keypoints=keypoints[..., :2],
                                 keypoint_scores=keypoints[..., 2], scores=scores, boxes=_extents(keypoints),
                                 box_scores=scores, metadata=self.metadata,
                                 keypoint_threshold=self.settings.keypoint_threshold))
        return results


def _extents(keypoints: np.ndarray) -> np.ndarray:
    """(P, K, 3) -> (P, 4) x1, y1, x2, y2 around each person's found (score > 0) keypoints."""
    boxes = np.zeros((len(keypoints), 4))
    for p, person in enumerate(keypoints):
        found = person[person[:, 2] > 0, :2]
        if len(found):
            boxes[p] = [*found.min(axis=0), *found.max(axis=0)]
    return boxes
