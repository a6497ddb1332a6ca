"""Image classification (ImageNet-style) with the official HRNet transforms and top-1/top-5.

Data (`data.train`, `data.val`) is either a folder with one sub-folder per class (ImageFolder), or
a list file:

* CSV with a header naming the columns `path` and `label` (other columns are ignored);
* JSON: a list of {"path": ..., "label": ...} objects, or {"classes": [...], "samples": [...]}.

A label is a class name or an index into `data.classes`. Relative paths are relative to `data.root`
(default: the list file's folder). Class names come from `data.classes`, else from the training
data (sorted sub-folder names or sorted label names), and are saved with the run.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, default_collate

from ..data.augment import Photometric, check_augmentation, cutout
from ..data import IMAGENET_MEAN, IMAGENET_STD
from ..data.io import IMAGE_SUFFIXES, DataError, read_image, read_json
from ..engine.distributed import all_reduce_sum



@dataclass
class DataConfig:
    """`image_size`: the training crop and the evaluation centre crop (224); `resize_size`: the
    shorter side before the evaluation crop (256). `scale`/`ratio`: RandomResizedCrop ranges.
    Small-data augmentation (off by default, as officially; see `hrnet.data.augment`):
    `color_jitter` [brightness, contrast, saturation, hue], `blur` (probability), `cutout` (hole
    side / crop side). `test_flip`: evaluate on the image and its mirror (`classification_flip`)."""

    train: str = ""
    val: str = ""
    root: str | None = None
    classes: list[str] | None = None
    image_size: int = 224
    resize_size: int = 256
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool = True
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    label_smoothing: float = 0.0
    color_jitter: tuple[float, float, float, float] | None = None
    blur: float = 0.0
    cutout: float = 0.0
    test_flip: bool = False

    def __post_init__(self) -> None:
        check_augmentation(color_jitter=self.color_jitter, blur=self.blur, cutout=self.cutout)
        if self.image_size < 1 or self.resize_size < self.image_size:
            raise ValueError(f"image_size ({self.image_size}) must be >= 1 and resize_size ({self.resize_size}) "
                             "at least as large")
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"scale {self.scale} must satisfy 0 < min <= max <= 1")


# ----------------------------------------------------------------------------- reading the data


def _folder_classes(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"data folder {folder} has no class sub-folders (expected {folder}/<class>/<image>)")
    return classes


def _read_list(path: Path) -> tuple[list[tuple[str, Any]], list[str] | None]:
    """(path, label) rows of a CSV or JSON list file, and the class names it declares (JSON)."""
    if not path.is_file():
        raise DataError(f"data list {path} does not exist")
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            fields = [f.strip() for f in reader.fieldnames or []]
            if "path" not in fields or "label" not in fields:
                raise DataError(f"{path}: a CSV list needs a header with the columns path and label, got {fields}")
            rows = []
            for number, row in enumerate(reader, start=2):
                row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
                if not row["path"] or not row["label"]:
                    raise DataError(f"{path}, line {number}: empty path or label")
                label: Any = int(row["label"]) if row["label"].lstrip("-").isdigit() else row["label"]
                rows.append((row["path"], label))
        return rows, None
    if path.suffix.lower() == ".json":
        data = read_json(path, "data list")
        classes = None
        if isinstance(data, dict):
            classes, data = data.get("classes"), data.get("samples")
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a list of {{\"path\", \"label\"}} objects or "
                            "{\"classes\": [...], \"samples\": [...]}")
        rows = []
        for index, item in enumerate(data):
            if not isinstance(item, dict) or "path" not in item or "label" not in item:
                raise DataError(f"{path}: sample {index} needs the fields path and label, got {item!r:.80}")
            rows.append((str(item["path"]), item["label"]))
        return rows, classes
    raise DataError(f"{path}: a data source is a folder of class sub-folders, a .csv or a .json list")


def discover_classes(source: str) -> list[str]:
    """Class names of a data source (sorted sub-folders, or the list's classes/labels)."""
    path = Path(source)
    if path.is_dir() or not path.suffix:
        return _folder_classes(path)
    rows, classes = _read_list(path)
    if classes:
        return [str(c) for c in classes]
    labels = {label for _, label in rows}
    if all(isinstance(label, str) for label in labels):
        return sorted(labels)
    if all(isinstance(label, int) and label >= 0 for label in labels):
        return [str(i) for i in range(max(labels) + 1)]
    raise DataError(f"{path}: labels mix names and indices; give data.classes or use one kind")


def read_samples(source: str, classes: list[str], root: str | None = None) -> list[tuple[Path, int]]:
    """(image path, class index) of every sample of a folder or list file."""
    path = Path(source)
    index = {name: i for i, name in enumerate(classes)}
    samples: list[tuple[Path, int]] = []
    if path.is_dir() or not path.suffix:
        for name in _folder_classes(path):
            if name not in index:
                raise DataError(f"{path / name}: class {name!r} is not among the {len(classes)} classes of the "
                                "run (data.classes / the training folder)")
            files = sorted(p for p in (path / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            samples += [(f, index[name]) for f in files]
    else:
        rows, _ = _read_list(path)
        base = Path(root) if root else path.parent
        for file, label in rows:
            if isinstance(label, int):
                if not 0 <= label < len(classes):
                    raise DataError(f"{path}: label {label} of {file} is outside 0..{len(classes) - 1}")
            elif label not in index:
                raise DataError(f"{path}: label {label!r} of {file} is not a known class")
            else:
                label = index[label]
            samples.append((base / file, label))
        missing = [file for file, _ in samples if not file.is_file()]
        if missing:
            raise DataError(f"{path}: {len(missing)} listed image(s) do not exist (e.g. {missing[0]}); check the "
                            "paths and data.root (relative paths are relative to the list file's folder)")
    if not samples:
        raise DataError(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return samples


# ----------------------------------------------------------------------------- transforms


def build_transform(data: DataConfig, train: bool):
    """Official transforms on uint8 CHW tensors: RandomResizedCrop + flip for training; resize the
    shorter side to `resize_size` and centre-crop `image_size` for evaluation; then ImageNet mean/std.
    Training adds, when set, colour jitter and blur (before normalising) and cutout (after)."""
    from torchvision.transforms import v2

    if train:
        steps = [v2.RandomResizedCrop(data.image_size, scale=data.scale, ratio=data.ratio, antialias=True)]
        if data.hflip:
            steps.append(v2.RandomHorizontalFlip())
        photometric = Photometric(color_jitter=data.color_jitter, blur=data.blur)
        if photometric.active:
            steps.append(photometric)
    else:
        steps = [v2.Resize(data.resize_size, antialias=True), v2.CenterCrop(data.image_size)]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(data.mean), list(data.std))]
    if train and data.cutout > 0:
        steps.append(functools.partial(cutout, size=data.cutout))
    return v2.Compose(steps)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()


class ImageClassificationDataset(Dataset):
    """(image tensor (3, S, S) normalised, class index) for each (path, label) sample."""

    def __init__(self, samples: list[tuple[Path, int]], transform: Any):
        self.samples = samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        return self.transform(to_tensor(read_image(path))), label


# ----------------------------------------------------------------------------- evaluation


def classification_flip(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Test-time flip: the mean of the logits (N, K) of `images` (N, 3, H, W) and of their
    horizontal mirror. Logits, not probabilities, are averaged: the result is still logits (a
    drop-in for `model(images)`: softmax, top-k and the cross-entropy apply unchanged), and it is
    the rule of the segmentation task's official flip test."""
    return (model(images) + model(images.flip(-1))) * 0.5


class TopKEvaluator:
    """Top-1 / top-5 accuracy (percent) and mean cross-entropy over the val set; `flip`: of the
    flip-averaged logits (`classification_flip`). `how` says which."""

    main_metric = "top1"
    higher_is_better = True

    def __init__(self, device: torch.device, num_classes: int, *, flip: bool = False):
        self.device = device
        self.k = min(5, num_classes)
        self.flip = flip
        self.sums = torch.zeros(4, dtype=torch.float64, device=device)  # top1, top5, loss, count
        self.how = {"flip": "logits of the image and its mirror averaged" if flip else "off",
                    "crop": "centre crop"}

    def update(self, model: nn.Module, batch: Any) -> None:
        images, labels = batch
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        logits = (classification_flip(model, images) if self.flip else model(images)).float()
        top = logits.topk(self.k, dim=1).indices
        hits = top.eq(labels[:, None])
        self.sums += torch.stack([hits[:, 0].sum(), hits.any(dim=1).sum(),
                                  F.cross_entropy(logits, labels, reduction="sum"),
                                  torch.tensor(labels.numel(), device=self.device)]).double()

    def synchronize(self) -> None:
        all_reduce_sum(self.sums)

    def compute(self) -> dict[str, float]:
        top1, top5, loss, count = self.sums.tolist()
        count = max(count, 1.0)
        return {"top1": 100.0 * top1 / count, f"top{self.k}": 100.0 * top5 / count, "loss": loss / count} \
            if self.k != 1 else {"top1": 100.0 * top1 / count, "loss": loss / count}


# ----------------------------------------------------------------------------- the task


def _here(source: str) -> bool:
    return bool(source) and Path(source).exists()


class ClassificationTask:
    name: ClassVar[str] = "classification"
    DataConfig: ClassVar[type] = DataConfig
    head_prefixes: ClassVar[tuple[str, ...]] = ("head.",)

    def __init__(self, config: Any) -> None:
        self.config = config
        data: DataConfig = config.data
        # Class names come from the training data when it is here; predicting (or evaluating on a
        # list with indices) needs no dataset: a 1000-class model is named with ImageNet's classes.
        if data.classes is None and data.train and Path(data.train).exists():
            data.classes = discover_classes(data.train)
        if data.classes is None and config.model.num_classes in (None, 1000) and not _here(data.train):
            from ..weights.names import imagenet_names

            data.classes = imagenet_names()
        if data.classes is not None:
            if config.model.num_classes is None:
                config.model.num_classes = len(data.classes)
            elif config.model.num_classes != len(data.classes):
                raise ValueError(f"model.num_classes is {config.model.num_classes} but the data has "
                                 f"{len(data.classes)} classes")
        if config.model.num_classes is None:
            config.model.num_classes = 1000
        self.classes = data.classes or [str(i) for i in range(config.model.num_classes)]

    def build_model(self) -> nn.Module:
        return self.config.model.create("classification")

    def build_dataset(self, split: str) -> Dataset:
        data: DataConfig = self.config.data
        source = {"train": data.train, "val": data.val}.get(split)
        if source is None:
            raise ValueError(f"unknown split {split!r}: train or val")
        if not source:
            raise ValueError(f"data.{split} is not set: give a folder of class sub-folders or a .csv/.json list")
        samples = read_samples(source, self.classes, data.root)
        return ImageClassificationDataset(samples, build_transform(data, train=split == "train"))

    def collate(self, samples: list[Any]) -> Any:
        return default_collate(samples)

    def train_step(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        images, labels = batch
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        logits = model(images)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.config.data.label_smoothing)
        return loss, {}

    def make_evaluator(self, device: torch.device) -> TopKEvaluator:
        return TopKEvaluator(device, self.config.model.num_classes, flip=self.config.data.test_flip)

    # ---- prediction

    def inference_settings(self) -> Any:
        from .classification_predict import ClassificationSettings

        return ClassificationSettings(flip_test=self.config.data.test_flip)

    def inference(self, model: nn.Module, *, device: torch.device, how: dict[str, Any] | None = None,
                  **options: Any) -> Any:
        """What `hrnet.Predictor` runs: top-k (`top_k`, `flip_test` options) with the class names."""
        from ..engine.task import replace_settings
        from .classification_predict import ClassificationInference

        settings = replace_settings(self.inference_settings(), options, "classification")
        return ClassificationInference(model, data=self.config.data, classes=self.classes, device=device,
                                       settings=settings, how=how)


def draw_labels(image: np.ndarray, top: list[dict[str, Any]], max_side: int = 512) -> np.ndarray:
    """The image (at most `max_side` pixels a side) with the top classes written on it."""
    import cv2

    scale = min(1.0, max_side / max(image.shape[:2]))
    if scale < 1.0:
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
    image = np.array(image, copy=True)  # never draw on the caller's array
    line = 22
    cv2.rectangle(image, (0, 0), (image.shape[1], line * len(top) + 8), (0, 0, 0), thickness=-1)
    for row, item in enumerate(top):
        text = f"{item['class']} {item['score']:.3f}"
        cv2.putText(image, text, (6, line * (row + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return image
