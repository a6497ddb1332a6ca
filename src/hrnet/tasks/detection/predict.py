"""Detection prediction: boxes, labels, scores (and masks), and person boxes for top-down pose.

`DetectionInference` is what `hrnet.Predictor` drives for this task (`prepare` in DataLoader
workers converts a picture to the detector's float input; `run` detects on a batch). `hrnet predict`
writes `<stem>.png` per image, `<stem>.mp4` per video and `detections.json` (COCO results:
image_id, category_id, bbox [x, y, w, h], score, RLE segmentation for masks, plus file_name and,
for videos, frame). `person_boxes` is what top-down pose estimation needs from a detector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from hrnet.errors import ConfigError, DataError
from hrnet.inference.results import Result

from .evaluate import to_coco_results
from .tta import detection_flip
from .visualize import draw_detections

RESULTS_FILE = "detections.json"


@dataclass(frozen=True)
class DetectionSettings:
    """score_threshold: the lowest score kept (`data.score_threshold`, 0.3); flip_test: the picture's
    and its mirror's detections merged (`tta.detection_flip`, as the evaluation's `data.test_flip`)."""

    score_threshold: float = 0.3
    flip_test: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ConfigError(f"score_threshold must lie in [0, 1], got {self.score_threshold}")


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def to_input(image: np.ndarray) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> the detector's input, float (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255)


@torch.no_grad()
def detect(model: nn.Module, images: Sequence[np.ndarray] | Sequence[torch.Tensor], *, score_threshold: float = 0.3,
           device: torch.device | None = None, flip_test: bool = False) -> list[dict[str, Any]]:
    """Run a detector on RGB uint8 images (H, W, 3) (or their `to_input` tensors) of any sizes.

    Returns per image `boxes` (K, 4) x1y1x2y2 float32, `labels` (K,) int64, `scores` (K,) float32,
    and for Mask R-CNN `masks` (K, H, W) bool, keeping detections scoring >= score_threshold.
    `flip_test` merges the detections of each image's mirror (`tta.detection_flip`).
    """
    model.eval()
    device = device or _device(model)
    tensors = [(image if isinstance(image, torch.Tensor) else to_input(image)).to(device) for image in images]
    found = []
    for output in (detection_flip(model, tensors) if flip_test else model(tensors)):
        keep = output["scores"] >= score_threshold
        result = {key: output[key][keep].cpu().numpy() for key in ("boxes", "labels", "scores")}
        if "masks" in output:
            result["masks"] = (output["masks"][keep][:, 0] > 0.5).cpu().numpy()
        found.append(result)
    return found


def person_boxes(model: nn.Module, image: np.ndarray, *, person_label: int = 1,
                 score_threshold: float = 0.5) -> np.ndarray:
    """Person detections of one RGB uint8 image (H, W, 3), for top-down pose estimation.

    Returns (N, 5) float32 rows [x1, y1, x2, y2, score], best first. person_label: the detector's
    label of the person class (1 for COCO, whose first category is person; `person_label_of`
    finds it for other datasets).
    """
    result = detect(model, [image], score_threshold=score_threshold)[0]
    keep = result["labels"] == person_label
    rows = np.concatenate([result["boxes"][keep], result["scores"][keep, None]], axis=1)
    return rows[np.argsort(-rows[:, 4], kind="stable")].astype(np.float32)


def person_label_of(class_names: Sequence[str]) -> int:
    if "person" not in class_names:
        raise DataError(f"the detector has no 'person' class (classes: {', '.join(class_names)}); "
                        "use a detector trained with people, e.g. on COCO")
    return list(class_names).index("person") + 1


def image_id_of(path: Path) -> int | str:
    """COCO names images by their id (000000000785.jpg is 785): reuse it, else the file name."""
    return int(path.stem) if path.stem.isdigit() else path.name


@dataclass(eq=False)
class Detections(Result):
    """`boxes` (N, 4) x1y1x2y2 pixels, `labels` (N,) 1..C (0 is the background), `names` (N,),
    `scores` (N,), `masks` (N, H, W) bool or None; `category_ids[label - 1]` is the json category."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    masks: np.ndarray | None = field(default=None, repr=False)
    class_names: Sequence[str] = field(default=(), repr=False)
    category_ids: Sequence[int] | None = field(default=None, repr=False)

    RESULTS_FILE = RESULTS_FILE

    @property
    def names(self) -> list[str]:
        return [self.class_names[label - 1] if 0 < label <= len(self.class_names) else str(label)
                for label in self.labels.tolist()]

    def draw(self) -> np.ndarray:
        return draw_detections(self.image, self.boxes, self.labels, scores=self.scores, masks=self.masks,
                               class_names=self.class_names)

    def coco_results(self, image_id: int | str | None = None) -> list[dict[str, Any]]:
        """COCO results (bbox [x, y, w, h], RLE segmentation for masks) with `image_id` (default: the name)."""
        output = {"boxes": torch.from_numpy(self.boxes), "labels": torch.from_numpy(self.labels),
                  "scores": torch.from_numpy(self.scores)}
        if self.masks is not None:
            output["masks"] = torch.from_numpy(self.masks)[:, None].float()
        return to_coco_results(output, self.source if image_id is None else image_id, self.category_ids)

    def to_json(self) -> dict[str, Any]:
        detections = [{**r, "name": n} for r, n in zip(self.coco_results(), self.names)]
        return {**self._header(), "detections": detections, "how": self.how}

    # ---- hrnet predict's folder output (see hrnet.inference.writer)

    VIDEO_SUFFIX = ""

    def files(self, out_dir: Path, stem: str) -> dict[str, str]:
        """`<stem>.png`: boxes, labels and masks drawn."""
        return {"picture": str(self.save(out_dir / f"{stem}.png"))}

    def records(self, *, files: dict[str, str] | None = None, index: int = 0) -> list[dict[str, Any]]:
        path = Path(self.source)
        return [{**r, "file_name": path.name} for r in self.coco_results(image_id_of(path))]

    def line(self, picture: str | None = None) -> str:
        found = [f"{name} {score:.2f}" for name, score in zip(self.names, self.scores.tolist())]
        return f"{len(found)} detections" + (": " + ", ".join(found) if found else "")

    def frame_record(self) -> list[dict[str, Any]]:
        return [{**r, "frame": self.frame} for r in self.records()]

    @classmethod
    def video_records(cls, frames: list[list[dict]], *, source: str, picture: str
                      ) -> tuple[list[dict], dict[str, Any]]:
        return [r for frame in frames for r in frame], {"frames": len(frames),
                                                         "line": f"{len(frames)} frames -> {picture}"}


class DetectionInference:
    """Detection for `hrnet.Predictor`: `prepare(rgb) -> (3, H, W)` in [0, 1]; `run` -> Detections."""

    result_type = Detections
    task = "detection"

    def __init__(self, model: nn.Module, *, class_names: Sequence[str], category_ids: Sequence[int] | None,
                 device: torch.device, settings: DetectionSettings, how: dict[str, Any] | None = None):
        self.model, self.device, self.settings = model, device, settings
        self.class_names, self.category_ids = list(class_names), category_ids
        self.how = {"task": "detection", "score_threshold": settings.score_threshold,
                    "flip_test": settings.flip_test, **(how or {})}

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        return to_input(image)

    def run(self, pictures: list[np.ndarray], prepared: list[torch.Tensor], names: list[str],
            **options: Any) -> list[Detections]:
        if options:
            raise ConfigError(f"detection prediction has no per-call option(s) {', '.join(options)}")
        # torchvision pads a batch to its largest picture, which changes the features near the borders of
        # the others: pictures of one size only are batched, so a result never depends on its batch.
        found: list[dict[str, Any]] = [{}] * len(prepared)
        by_size: dict[tuple[int, int], list[int]] = {}
        for index, tensor in enumerate(prepared):
            by_size.setdefault(tuple(tensor.shape[-2:]), []).append(index)
        for indices in by_size.values():
            for i, f in zip(indices, detect(self.model, [prepared[i] for i in indices], device=self.device,
                                            score_threshold=self.settings.score_threshold,
                                            flip_test=self.settings.flip_test)):
                found[i] = f
        return [Detections(source=name, image=picture, how=dict(self.how), boxes=f["boxes"], labels=f["labels"],
                           scores=f["scores"], masks=f.get("masks"), class_names=self.class_names,
                           category_ids=self.category_ids)
                for name, picture, f in zip(names, pictures, found)]
