"""`PoseTask`: top-down pose estimation plugged into the training engine (see `hrnet/engine/task.py`).

Recipe `data:` section (`PoseDataConfig`), e.g. the official COCO W32 256x192::

    data:
      format: coco                      # coco (OKS AP) or mpii (PCKh)
      keypoints: coco                   # coco, mpii, or a YAML/JSON metadata file
      train_annotations: data/coco/annotations/person_keypoints_train2017.json
      train_images: data/coco/images/train2017
      val_annotations: data/coco/annotations/person_keypoints_val2017.json
      val_images: data/coco/images/val2017
      val_boxes: data/coco/person_detection_results/COCO_val2017_detections_AP_H_56_person.json
      input_size: [256, 192]            # height, width; heatmaps are a quarter of it
      sigma: 2.0

`hrnet predict` options go in `data.predict` (e.g. `--set data.predict.boxes=dets.json`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.utils.data import default_collate

from hrnet.engine.task import Prediction

from .data import PersonRecord, PoseDataset, load_coco_keypoints, load_mpii
from .evaluate import PoseEvaluator
from .metadata import load_metadata
from .predict import detector_boxes, predict_files, results_file_boxes, whole_image_boxes
from .targets import JointsMSELoss
from .transforms import Augmentation


@dataclass
class PosePredictOptions:
    """`hrnet predict` settings. boxes: a COCO results json of person boxes (None: the whole
    image is one person); heatmaps: also write each person's heatmaps over its crop."""

    boxes: str | None = None
    box_score_threshold: float = 0.0
    heatmaps: bool = False
    keypoint_threshold: float = 0.2  # keypoints drawn when their score reaches this


@dataclass
class PoseDataConfig:
    """The `data:` section of a pose recipe (defaults: the official COCO 256x192 settings)."""

    format: Literal["coco", "mpii"] = "coco"
    keypoints: str = "coco"
    train_annotations: str = ""
    train_images: str = ""
    val_annotations: str = ""
    val_images: str = ""
    train_repeat: int = 1  # passes over the training persons per epoch (for very small sets)
    val_boxes: str | None = None  # person detection results json; None: ground-truth boxes
    val_box_score_threshold: float = 0.0
    input_size: tuple[int, int] = (256, 192)  # height, width
    sigma: float = 2.0
    augment: bool = True
    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    rotation_prob: float = 0.6
    flip: bool = True
    half_body_joints: int = 8
    half_body_prob: float = 0.3
    flip_test: bool = True
    shift_heatmap: bool = True
    decoding: Literal["quarter", "dark", "argmax"] = "quarter"
    rescore_threshold: float = 0.2
    oks_nms_threshold: float = 0.9
    predict: PosePredictOptions = field(default_factory=PosePredictOptions)

    def __post_init__(self) -> None:
        if any(v <= 0 or v % 4 for v in self.input_size):
            raise ValueError(f"data.input_size must be positive multiples of 4 (height, width), got {self.input_size}")
        if self.train_repeat < 1:
            raise ValueError(f"data.train_repeat must be >= 1, got {self.train_repeat}")
        if self.sigma <= 0:
            raise ValueError(f"data.sigma must be positive, got {self.sigma}")

    @property
    def wh(self) -> tuple[int, int]:
        """Input size as (width, height), the order of the official code and OpenCV."""
        return self.input_size[1], self.input_size[0]


class PoseTask:
    name: ClassVar[str] = "pose"
    DataConfig: ClassVar[type] = PoseDataConfig

    def __init__(self, config: Any):
        self.config = config
        self.data: PoseDataConfig = config.data
        self.metadata = load_metadata(self.data.keypoints)
        if config.model.num_classes is None:
            config.model.num_classes = self.metadata.num_keypoints  # saved with the run's config
        elif config.model.num_classes != self.metadata.num_keypoints:
            raise ValueError(f"model.num_classes is {config.model.num_classes} but data.keypoints "
                             f"{self.data.keypoints!r} has {self.metadata.num_keypoints} keypoints")
        width, height = self.data.wh
        self.heatmap_size = (width // 4, height // 4)
        self.loss = JointsMSELoss(use_target_weight=True)
        self._records: dict[str, list[PersonRecord]] = {}

    def build_model(self) -> nn.Module:
        return self.config.model.create("pose")

    def records(self, split: str) -> list[PersonRecord]:
        """The persons of `split` ("train" / "val"); val uses data.val_boxes when given."""
        if split not in self._records:
            d = self.data
            annotations, images = (d.train_annotations, d.train_images) if split == "train" else (
                d.val_annotations, d.val_images)
            if not annotations:
                raise ValueError(f"data.{split}_annotations is not set: give the {split} annotation file")
            if d.format == "mpii":
                self._records[split] = load_mpii(annotations, images, metadata=self.metadata)
            else:
                boxes = d.val_boxes if split == "val" else None
                self._records[split] = load_coco_keypoints(
                    annotations, images, metadata=self.metadata, aspect_ratio=d.wh[0] / d.wh[1], detections=boxes,
                    score_threshold=d.val_box_score_threshold)
        return self._records[split]

    def build_dataset(self, split: str) -> PoseDataset:
        d = self.data
        augmentation = None
        if split == "train" and d.augment:
            augmentation = Augmentation(scale_factor=d.scale_factor, rotation_factor=d.rotation_factor,
                                        rotation_prob=d.rotation_prob, flip=d.flip,
                                        half_body_joints=d.half_body_joints, half_body_prob=d.half_body_prob)
        records = self.records(split) * (d.train_repeat if split == "train" else 1)
        return PoseDataset(records, metadata=self.metadata, input_size=d.wh,
                           heatmap_size=self.heatmap_size, sigma=d.sigma, augmentation=augmentation)

    def collate(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return default_collate(samples)

    def train_step(self, model: nn.Module, batch: dict[str, Any], device: torch.device
                   ) -> tuple[torch.Tensor, dict[str, float]]:
        images = batch["image"].to(device, non_blocking=True)
        target = batch["target"].to(device, non_blocking=True)
        weight = batch["target_weight"].to(device, non_blocking=True)
        loss = self.loss(model(images).float(), target, weight)
        return loss, {"loss": float(loss.detach())}

    def make_evaluator(self, device: torch.device) -> PoseEvaluator:
        d = self.data
        if d.format == "mpii":
            boxes = "MPII center/scale"
        elif d.val_boxes:
            boxes = f"detections {Path(d.val_boxes).name} (score >= {d.val_box_score_threshold})"
        else:
            boxes = "ground truth"
        return PoseEvaluator(records=self.records("val"), metadata=self.metadata,
                             metric="pckh" if d.format == "mpii" else "coco", device=device,
                             annotations=d.val_annotations, flip=d.flip_test, shift=d.shift_heatmap,
                             decoding=d.decoding, boxes=boxes, rescore_threshold=d.rescore_threshold,
                             nms_threshold=d.oks_nms_threshold)

    def predict(self, model: nn.Module, inputs: list[Path], out_dir: Path, **options: Any) -> list[Prediction]:
        """Options (each defaults to data.predict / data.*): boxes (a COCO results json path),
        detector (rgb image -> (N, 5) x, y, w, h, score boxes), box_score_threshold, heatmaps,
        keypoint_threshold, flip_test, decoding."""
        p = self.data.predict
        threshold = options.get("box_score_threshold", p.box_score_threshold)
        if options.get("detector") is not None:
            boxes = detector_boxes(options["detector"], score_threshold=threshold)
        elif options.get("boxes", p.boxes):
            boxes = results_file_boxes(options.get("boxes", p.boxes), score_threshold=threshold)
        else:
            boxes = whole_image_boxes
        return predict_files(model, inputs, out_dir, metadata=self.metadata, input_size=self.data.wh, boxes=boxes,
                             flip=options.get("flip_test", self.data.flip_test),
                             decoding=options.get("decoding", self.data.decoding),
                             heatmaps=options.get("heatmaps", p.heatmaps),
                             threshold=options.get("keypoint_threshold", p.keypoint_threshold))

    def format_prediction(self, prediction: Prediction) -> str:
        persons = prediction.outputs["persons"]
        best = max((p["score"] for p in persons), default=0.0)
        return f"{len(persons)} person(s), best score {best:.3f}; picture {prediction.picture}"
