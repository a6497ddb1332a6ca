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

Prediction settings (`hrnet predict`, `hrnet.Predictor`) default to the test settings above and
`data.predict` (e.g. `--set data.predict.boxes=dets.json`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.utils.data import default_collate

from hrnet.data.augment import check_augmentation
from hrnet.data.io import DataError
from hrnet.errors import ConfigError
from hrnet.engine.task import replace_settings

from .data import PersonRecord, PoseDataset, load_coco_keypoints, load_mpii, read_json
from .evaluate import PoseEvaluator
from .metadata import KeypointMetadata, load_metadata
from .predict import BoxSource, PoseInference, results_file_boxes, whole_image_boxes
from .settings import PoseSettings
from .targets import JointsMSELoss
from .transforms import Augmentation


@dataclass
class PosePredictOptions:
    """Prediction settings. boxes: a COCO results json of person boxes (None: the whole image is one
    person, unless a detector is given); heatmaps: also keep (and write) each person's heatmaps."""

    boxes: str | None = None
    box_score_threshold: float = 0.0
    heatmaps: bool = False
    keypoint_threshold: float = 0.2  # keypoints drawn when their score reaches this


@dataclass
class PoseDataConfig:
    """The `data:` section of a pose recipe (defaults: the official COCO 256x192 settings).
    Small-data options on the person crop (off by default, as officially; see
    `hrnet.data.augment`): `color_jitter` [brightness, contrast, saturation, hue], `blur`
    (probability), `cutout` (hole side / crop side)."""

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
    color_jitter: tuple[float, float, float, float] | None = None
    blur: float = 0.0
    cutout: float = 0.0
    flip_test: bool = True
    shift_heatmap: bool = True
    decoding: Literal["quarter", "dark", "argmax", "udp"] = "quarter"
    dark_kernel: int = 11  # the Gaussian blur of DARK / UDP decoding (mmpose: 11 at 256x192, 17 at 384x288)
    rescore_threshold: float = 0.2
    oks_nms_threshold: float | None = 0.9  # None: no OKS NMS
    predict: PosePredictOptions = field(default_factory=PosePredictOptions)

    def __post_init__(self) -> None:
        if any(v <= 0 or v % 4 for v in self.input_size):
            raise ValueError(f"data.input_size must be positive multiples of 4 (height, width), got {self.input_size}")
        if self.train_repeat < 1:
            raise ValueError(f"data.train_repeat must be >= 1, got {self.train_repeat}")
        if self.sigma <= 0:
            raise ValueError(f"data.sigma must be positive, got {self.sigma}")
        if self.dark_kernel < 1 or self.dark_kernel % 2 == 0:
            raise ValueError(f"data.dark_kernel must be a positive odd size, got {self.dark_kernel}")
        check_augmentation(color_jitter=self.color_jitter, blur=self.blur, cutout=self.cutout)

    @property
    def wh(self) -> tuple[int, int]:
        """Input size as (width, height), the order of the official code and OpenCV."""
        return self.input_size[1], self.input_size[0]


# The fields pycocotools' keypoint COCOeval reads from each ground-truth annotation.
EVAL_FIELDS = {"id": object, "image_id": object, "category_id": object, "keypoints": list, "bbox": list,
               "area": (int, float), "num_keypoints": (int, float)}


def check_keypoint_ground_truth(path: str, num_keypoints: int) -> None:
    """DataError naming the file, the annotation and the field when the val json lacks what the
    COCO keypoint evaluation reads (e.g. `area`), before training starts rather than at the
    first evaluation."""
    if not path:
        raise DataError("data.val_annotations is not set: give the val annotation file to evaluate on")
    coco = read_json(path, "COCO keypoints file")
    annotations = coco.get("annotations") if isinstance(coco, dict) else None
    if not isinstance(annotations, list) or not isinstance(coco.get("images"), list):
        raise DataError(f"{path} is not a COCO keypoints file: it needs the lists 'images' and 'annotations'")
    for index, ann in enumerate(annotations):
        for name, kind in EVAL_FIELDS.items():
            value = ann.get(name) if isinstance(ann, dict) else None
            if value is None or isinstance(value, bool) or not isinstance(value, kind):
                got = "lacks it" if value is None else f"holds {value!r:.40}"
                raise DataError(f"{path}: annotations[{index}] (id {ann.get('id') if isinstance(ann, dict) else '?'}) "
                                f"field {name!r} {got}; COCO keypoint evaluation needs {name} "
                                f"({'a list' if kind is list else 'a number' if kind != object else 'a value'}) in "
                                "every annotation")
        if len(ann["keypoints"]) != 3 * num_keypoints:
            raise DataError(f"{path}: annotations[{index}] (id {ann['id']}) field 'keypoints' holds "
                            f"{len(ann['keypoints'])} numbers, not 3 x {num_keypoints}")


def check_images_exist(records: list[PersonRecord], annotations: str) -> None:
    missing = sorted({str(r.image) for r in records if not r.image.is_file()})
    if missing:
        raise DataError(f"{annotations}: {len(missing)} image(s) do not exist (e.g. {missing[0]}); check "
                        "data.train_images / data.val_images")


def keypoint_metadata(config: Any) -> KeypointMetadata:
    """`data.keypoints` loaded, with `model.num_classes` set to (or checked against) its keypoint count;
    the config is saved with the run, so eval and predict need no metadata file."""
    metadata = load_metadata(config.data.keypoints)
    if config.model.num_classes is None:
        config.model.num_classes = metadata.num_keypoints
    elif config.model.num_classes != metadata.num_keypoints:
        raise ConfigError(f"model.num_classes is {config.model.num_classes} but data.keypoints "
                          f"{config.data.keypoints!r} has {metadata.num_keypoints} keypoints")
    return metadata


class PoseTask:
    name: ClassVar[str] = "pose"
    DataConfig: ClassVar[type] = PoseDataConfig

    def __init__(self, config: Any):
        self.config = config
        self.data: PoseDataConfig = config.data
        self.metadata = keypoint_metadata(config)
        width, height = self.data.wh
        self.heatmap_size = (width // 4, height // 4)
        self.loss = JointsMSELoss(use_target_weight=True)
        self._records: dict[str, list[PersonRecord]] = {}
        self._val_checked = False

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
            check_images_exist(self._records[split], annotations)
        return self._records[split]

    def build_dataset(self, split: str) -> PoseDataset:
        d = self.data
        augmentation = None
        if split == "train" and d.augment:
            augmentation = Augmentation(scale_factor=d.scale_factor, rotation_factor=d.rotation_factor,
                                        rotation_prob=d.rotation_prob, flip=d.flip,
                                        half_body_joints=d.half_body_joints, half_body_prob=d.half_body_prob,
                                        color_jitter=d.color_jitter, blur=d.blur, cutout=d.cutout)
        records = self.records(split) * (d.train_repeat if split == "train" else 1)
        if split == "train" and d.decoding == "udp":
            raise ConfigError("data.decoding=udp evaluates and predicts with UDP weights (UDP crops and decoding); "
                              "training with UDP targets is not implemented: train with quarter or dark")
        return PoseDataset(records, metadata=self.metadata, input_size=d.wh, heatmap_size=self.heatmap_size,
                           sigma=d.sigma, augmentation=augmentation, udp=d.decoding == "udp")

    def collate(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return default_collate(samples)

    def train_step(self, model: nn.Module, batch: dict[str, Any], device: torch.device
                   ) -> tuple[torch.Tensor, dict[str, float]]:
        images = batch["image"].to(device, non_blocking=True)
        target = batch["target"].to(device, non_blocking=True)
        weight = batch["target_weight"].to(device, non_blocking=True)
        loss = self.loss(model(images).float(), target, weight)
        return loss, {"loss": float(loss.detach())}

    def boxes_description(self) -> str:
        d = self.data
        if d.format == "mpii":
            return "MPII center/scale"
        if d.val_boxes:
            return f"detections {Path(d.val_boxes).name} (score >= {d.val_box_score_threshold})"
        return "ground truth"

    def inference_settings(self) -> PoseSettings:
        """The recipe's test settings (data.flip_test, decoding, ... and data.predict.*), shared by
        `hrnet eval` and `hrnet predict` / `hrnet.Predictor`."""
        d = self.data
        return PoseSettings(flip_test=d.flip_test, shift_heatmap=d.shift_heatmap, decoding=d.decoding,
                            dark_kernel=d.dark_kernel,
                            rescore_threshold=d.rescore_threshold, oks_nms_threshold=d.oks_nms_threshold,
                            box_score_threshold=d.predict.box_score_threshold,
                            keypoint_threshold=d.predict.keypoint_threshold, heatmaps=d.predict.heatmaps)

    def make_evaluator(self, device: torch.device) -> PoseEvaluator:
        d = self.data
        if d.format == "coco" and not self._val_checked:
            check_keypoint_ground_truth(d.val_annotations, self.metadata.num_keypoints)
            self._val_checked = True
        return PoseEvaluator(records=self.records("val"), metadata=self.metadata,
                             metric="pckh" if d.format == "mpii" else "coco", device=device,
                             annotations=d.val_annotations, settings=self.inference_settings(),
                             boxes=self.boxes_description())

    def inference(self, model: nn.Module, *, device: torch.device, box_source: BoxSource | None = None,
                  box_description: str | None = None, how: dict[str, Any] | None = None,
                  **options: Any) -> PoseInference:
        """What `hrnet.Predictor` runs: the recipe's settings with `options` replaced (PoseSettings field
        names), person boxes from `box_source` (a detector, built by the Predictor), else
        `data.predict.boxes` (a COCO results json), else the whole picture."""
        settings = replace_settings(self.inference_settings(), options, "pose")
        if box_source is None and self.data.predict.boxes:
            box_source = results_file_boxes(self.data.predict.boxes)
            box_description = f"boxes file {Path(self.data.predict.boxes).name}"
        return PoseInference(model, metadata=self.metadata, input_size=self.data.wh, device=device, settings=settings,
                             box_source=box_source or whole_image_boxes,
                             box_description=box_description or ("whole image" if box_source is None else "detector"),
                             how=how)
