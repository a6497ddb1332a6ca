"""Top-down pose prediction: person boxes in, keypoints in original-image pixels out.

`PoseInference` is what `hrnet.Predictor` drives for this task. Person boxes come, per picture, from
the caller (`boxes=`), else from the inference's box source: the whole picture, a COCO results
json (`data.predict.boxes`), or any detector `(rgb) -> (N, 4 or 5) x1, y1, x2, y2[, score]` (this
library's detector, a torchvision one or a function; `hrnet.Predictor` builds it). The pipeline is
the official test's: crop each box (aspect fit, x1.25), flip test, decode, back-project, rescore,
OKS NMS, with `PoseSettings` (shared with the evaluator, so predict and eval decode alike).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from hrnet.data.io import DataError, write_image
from hrnet.inference.results import Result, write_atomic

from .data import read_json, to_tensor
from .decode import decode_heatmaps, flip_test
from .evaluate import oks_nms, rescore
from .metadata import KeypointMetadata
from .settings import PoseSettings
from .transforms import PIXEL_STD, box_to_center_scale, crop, udp_crop
from .visualize import draw_heatmaps, draw_poses

# A picture's person boxes: (N, 5) x1, y1, x2, y2, score in its pixels.
BoxSource = Callable[[np.ndarray, str], np.ndarray]
RESULTS_FILE = "keypoints.json"


def whole_image_boxes(image: np.ndarray, source: str = "") -> np.ndarray:
    """One person filling the picture: [[0, 0, W, H, 1]]."""
    return np.array([[0.0, 0.0, image.shape[1], image.shape[0], 1.0]])


def as_boxes(boxes: Any, where: str = "boxes") -> np.ndarray:
    """User boxes, (N, 4) or (N, 5) x1, y1, x2, y2[, score] in pixels -> (N, 5) float64 (score 1 when absent)."""
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 5))
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] not in (4, 5):
        raise DataError(f"{where}: expected (N, 4) or (N, 5) boxes [x1, y1, x2, y2(, score)], got shape {array.shape}")
    if not np.isfinite(array).all() or ((array[:, 2] <= array[:, 0]) | (array[:, 3] <= array[:, 1])).any():
        raise DataError(f"{where}: every box needs finite x1 < x2 and y1 < y2, got {array[:3].tolist()}")
    return array if array.shape[1] == 5 else np.concatenate([array, np.ones((len(array), 1))], axis=1)


def results_file_boxes(path: str | os.PathLike, *, category_id: int = 1) -> BoxSource:
    """Boxes from a COCO results json ([{image_id, category_id, bbox [x, y, w, h], score}], optionally
    `file_name`). An image is matched by `file_name`, else by its file stem read as the integer image
    id (COCO names like 000000000785.jpg); the first images the file lacks are named in a warning."""
    entries = read_json(path, "person boxes file")
    if not isinstance(entries, list):
        raise DataError(f"{path} must be a COCO results list of {{image_id, bbox, score}}")
    by_key: dict[str, list[list[float]]] = defaultdict(list)
    for i, entry in enumerate(entries):
        box = entry.get("bbox") if isinstance(entry, dict) else None
        if not (isinstance(box, list) and len(box) == 4) or ("image_id" not in entry and "file_name" not in entry):
            raise DataError(f"{path}: entry {i} needs 'bbox' [x, y, w, h] and 'image_id' (or 'file_name')")
        if entry.get("category_id", category_id) != category_id:
            continue
        key = str(entry["file_name"]) if "file_name" in entry else str(int(entry["image_id"]))
        x, y, w, h = (float(v) for v in box)
        by_key[key].append([x, y, x + w, y + h, float(entry.get("score", 1.0))])
    missing: list[str] = []

    def boxes(image: np.ndarray, source: str) -> np.ndarray:
        name, stem = Path(source).name, Path(source).stem
        found = by_key.get(name) or (by_key.get(str(int(stem))) if stem.isdigit() else None)
        if found is None:
            missing.append(name)
            if len(missing) <= 3:
                import logging

                logging.getLogger("hrnet").warning("%s has no boxes for %s: no person predicted there", path, name)
        return np.asarray(found or [], dtype=np.float64).reshape(-1, 5)

    boxes.missing = missing  # type: ignore[attr-defined]
    return boxes


def detector_boxes(detector: Callable[[np.ndarray], Any]) -> BoxSource:
    """Adapts a person detector, rgb -> (N, 4 or 5) x1, y1, x2, y2[, score], to a BoxSource."""
    return lambda image, source: as_boxes(detector(image), where=f"the detector's boxes for {source}")


@torch.no_grad()
def estimate_poses(model: nn.Module, image: np.ndarray, boxes: np.ndarray, *, metadata: KeypointMetadata,
                   input_size: Sequence[int], settings: PoseSettings = PoseSettings(), batch_size: int = 32,
                   device: torch.device | None = None) -> dict[str, np.ndarray]:
    """Poses of the persons in `boxes` (N, 5) x1, y1, x2, y2, score on an RGB image, as the official
    test pipeline. Returns {"keypoints" (P, K, 3) as (x, y, score) in image pixels, "scores" (P,),
    "boxes" (P, 5), "heatmaps" (P, K, h, w), "crops" (P, H, W, 3) uint8}; input_size is (width, height)."""
    device = device or next(model.parameters()).device
    boxes = boxes[boxes[:, 4] >= settings.box_score_threshold] if len(boxes) else boxes
    k, (width, height) = metadata.num_keypoints, (int(input_size[0]), int(input_size[1]))
    if len(boxes) == 0:
        return {"keypoints": np.zeros((0, k, 3)), "scores": np.zeros(0), "boxes": np.zeros((0, 5)),
                "heatmaps": np.zeros((0, k, height // 4, width // 4), np.float32),
                "crops": np.zeros((0, height, width, 3), np.uint8)}
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:4] - boxes[:, :2]], axis=1)
    centers, scales = zip(*(box_to_center_scale(box, width / height) for box in xywh))
    cut = udp_crop if settings.decoding == "udp" else crop  # UDP weights were trained on UDP crops
    crops = np.stack([cut(image, c, s, 0.0, (width, height))[0] for c, s in zip(centers, scales)])
    heatmaps = []
    for start in range(0, len(boxes), batch_size):
        batch = torch.stack([to_tensor(c) for c in crops[start:start + batch_size]]).to(device)
        if settings.flip_test:
            out = flip_test(model, batch, metadata.flip_permutation(), shift=settings.shift_heatmap)
        else:
            out = model(batch)
        heatmaps.append(out.float().cpu().numpy())
    heatmaps = np.concatenate(heatmaps)
    coords, peaks = decode_heatmaps(heatmaps, np.stack(centers), np.stack(scales), method=settings.decoding,
                                    dark_kernel=settings.dark_kernel)
    keypoints = np.concatenate([coords, peaks], axis=2)
    scores = rescore(keypoints, boxes[:, 4], settings.rescore_threshold)
    keep = list(range(len(boxes)))
    if settings.oks_nms_threshold is not None:
        areas = np.prod(np.stack(scales) * PIXEL_STD, axis=1)
        keep = oks_nms(keypoints, scores, areas, metadata.sigmas, settings.oks_nms_threshold)
    return {"keypoints": keypoints[keep], "scores": scores[keep], "boxes": boxes[keep], "heatmaps": heatmaps[keep],
            "crops": crops[keep]}


@dataclass(eq=False)
class Poses(Result):
    """The people of one picture: `keypoints` (P, K, 2) and `keypoint_scores` (P, K) in its pixels,
    `scores` (P,) person scores (box score x mean confident keypoint score), `boxes` (P, 4)
    x1y1x2y2 they were found in, `box_scores` (P,); `metadata` names the keypoints and the skeleton;
    with `heatmaps` kept, `heatmaps` (P, K, h, w) and `crops` (P, H, W, 3)."""

    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 2)))
    keypoint_scores: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    box_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    metadata: KeypointMetadata | None = field(default=None, repr=False)
    heatmaps: np.ndarray | None = field(default=None, repr=False)
    crops: np.ndarray | None = field(default=None, repr=False)
    keypoint_threshold: float = 0.2

    RESULTS_FILE = RESULTS_FILE

    def draw(self) -> np.ndarray:
        keypoints = np.concatenate([self.keypoints, self.keypoint_scores[..., None]], axis=2)
        xywh = np.concatenate([self.boxes[:, :2], self.boxes[:, 2:] - self.boxes[:, :2]], axis=1)
        return draw_poses(self.image, keypoints, self.metadata, threshold=self.keypoint_threshold, boxes=xywh)

    def draw_heatmaps(self) -> np.ndarray | None:
        """Each person's crop blended with its heatmaps, side by side (None unless heatmaps were kept)."""
        if self.heatmaps is None or not len(self.heatmaps):
            return None
        return np.concatenate([draw_heatmaps(c, h) for c, h in zip(self.crops, self.heatmaps)], axis=1)

    def people(self, image_id: int | str | None = None) -> list[dict[str, Any]]:
        """COCO keypoint results: keypoints as flat (x, y, score) triplets, bbox [x, y, w, h], score."""
        image_id = self.source if image_id is None else image_id
        out = []
        for p in range(len(self.scores)):
            triplets = np.concatenate([self.keypoints[p], self.keypoint_scores[p][:, None]], axis=1)
            x1, y1, x2, y2 = self.boxes[p]
            out.append({"image_id": image_id, "category_id": 1,
                        "keypoints": [round(float(v), 2) for v in triplets.reshape(-1)],
                        "score": float(self.scores[p]), "bbox": [round(float(v), 2) for v in (x1, y1, x2 - x1, y2 - y1)]})
        return out

    def to_json(self) -> dict[str, Any]:
        names = list(self.metadata.keypoints) if self.metadata is not None else []
        return {**self._header(), "keypoint_names": names, "people": self.people(), "how": self.how}

    # ---- hrnet predict's folder output (see hrnet.inference.writer)

    VIDEO_SUFFIX = ""

    def files(self, out_dir: Path, stem: str) -> dict[str, str]:
        return write_files(self, out_dir, stem)

    def records(self, *, files: dict[str, str] | None = None, index: int = 0) -> list[dict[str, Any]]:
        """keypoints.json's persons: COCO keypoint results + file_name and `box` [x, y, w, h, box score]."""
        path = Path(self.source)
        image_id = int(path.stem) if path.stem.isdigit() else index
        out = []
        for p, person in enumerate(self.people(image_id)):
            x, y, w, h = person.pop("bbox")
            box = [round(float(v), 2) for v in (x, y, w, h, self.box_scores[p])]
            out.append({**person, "file_name": path.name, "box": box})
        return out

    def line(self, picture: str | None = None) -> str:
        best = max(self.scores.tolist(), default=0.0)
        return f"{len(self.scores)} person(s), best score {best:.3f}; picture {picture}"

    def frame_record(self) -> list[dict[str, Any]]:
        return [{**r, "frame": self.frame} for r in self.records()]

    @classmethod
    def video_records(cls, frames: list[list[dict]], *, source: str, picture: str
                      ) -> tuple[list[dict], dict[str, Any]]:
        persons = [r for frame in frames for r in frame]
        best = max((p["score"] for p in persons), default=0.0)
        return persons, {"frames": len(frames),
                         "line": f"{len(persons)} person(s), best score {best:.3f}; picture {picture}"}


class PoseInference:
    """Top-down pose for `hrnet.Predictor`: `prepare` keeps the picture (the boxes are needed before
    cropping); `run(..., boxes=)` takes per-picture boxes, else the box source's."""

    result_type = Poses
    task = "pose"

    def __init__(self, model: nn.Module, *, metadata: KeypointMetadata, input_size: Sequence[int],
                 device: torch.device, settings: PoseSettings, box_source: BoxSource = whole_image_boxes,
                 box_description: str = "whole image", how: dict[str, Any] | None = None):
        self.model, self.metadata, self.input_size, self.device = model, metadata, tuple(input_size), device
        self.settings, self.box_source = settings, box_source
        flip = f"on (heatmap shift {'on' if settings.shift_heatmap else 'off'})" if settings.flip_test else "off"
        self.how = {"task": "pose", "boxes": box_description, "flip_test": flip, "decoding": settings.decoding,
                    "rescore_threshold": settings.rescore_threshold, "oks_nms_threshold": settings.oks_nms_threshold,
                    "input_size": [self.input_size[1], self.input_size[0]], **(how or {})}

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return image

    def run(self, pictures: list[np.ndarray], prepared: list[np.ndarray], names: list[str], *,
            boxes: Any = None) -> list[Poses]:
        per_picture = _boxes_per_picture(boxes, names)
        results = []
        for index, (name, picture) in enumerate(zip(names, pictures)):
            given = per_picture[index] if per_picture is not None else None
            found = given if given is not None else self.box_source(picture, name)
            how = dict(self.how, boxes="given") if given is not None else dict(self.how)
            poses = estimate_poses(self.model, picture, np.asarray(found, dtype=np.float64).reshape(-1, 5),
                                   metadata=self.metadata, input_size=self.input_size, settings=self.settings,
                                   device=self.device)
            keep = self.settings.heatmaps
            results.append(Poses(source=name, image=picture, how=how, keypoints=poses["keypoints"][..., :2],
                                 keypoint_scores=poses["keypoints"][..., 2], scores=poses["scores"],
                                 boxes=poses["boxes"][:, :4], box_scores=poses["boxes"][:, 4], metadata=self.metadata,
                                 heatmaps=poses["heatmaps"] if keep else None, crops=poses["crops"] if keep else None,
                                 keypoint_threshold=self.settings.keypoint_threshold))
        return results


def _boxes_per_picture(boxes: Any, names: list[str]) -> list[np.ndarray | None] | None:
    """Caller boxes -> one (N, 5) array per picture: an (N, 4|5) array for one picture, a list of such
    arrays (one per picture), or a dict from input name (or file name) to array."""
    if boxes is None:
        return None
    if isinstance(boxes, dict):
        return [as_boxes(boxes[key], f"boxes[{key!r}]") if key in boxes else None
                for key in ((n if n in boxes else Path(n).name) for n in names)]
    per_picture = isinstance(boxes, (list, tuple)) and len(boxes) > 0 and all(
        np.asarray(b, dtype=np.float64).ndim == 2 or np.asarray(b).size == 0 for b in boxes)
    if per_picture:
        if len(boxes) != len(names):
            raise DataError(f"boxes: {len(boxes)} box arrays for {len(names)} pictures; give one per picture")
        return [as_boxes(b, f"boxes[{i}]") for i, b in enumerate(boxes)]
    if len(names) != 1:
        raise DataError(f"boxes: one box array for {len(names)} pictures; give a list (one per picture) or a dict")
    return [as_boxes(boxes)]


def write_files(result: Poses, out_dir: Path, stem: str) -> dict[str, str]:
    """`hrnet predict`'s files for one image: `<stem>.png` (skeletons and boxes), with kept heatmaps
    also `<stem>_heatmaps.png` (each person's crop blended with its heatmaps)."""
    files = {"picture": str(result.save(out_dir / f"{stem}.png"))}
    tiles = result.draw_heatmaps()
    if tiles is not None:
        path = out_dir / f"{stem}_heatmaps.png"
        write_atomic(path, lambda tmp: write_image(tmp, tiles))
        files["heatmaps"] = str(path)
    return files
