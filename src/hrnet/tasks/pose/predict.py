"""Pose prediction on images, folders and videos: person boxes in, keypoints in original pixels out.

Person boxes come from a `PersonBoxes` callable, `(rgb_image, source_name) -> (N, 5)` boxes
(x, y, w, h, score). Three are provided: the whole image, a COCO results json, and any detector
(a detection model of this library plugs in here through `detector_boxes`).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from hrnet.data.io import DataError, VideoWriter, is_video, read_image, read_video, write_image
from hrnet.engine.task import Prediction

from .data import read_json, to_tensor
from .decode import decode_heatmaps, flip_test
from .evaluate import OKS_NMS_THRESHOLD, RESCORE_THRESHOLD, oks_nms, rescore
from .metadata import KeypointMetadata
from .transforms import PIXEL_STD, box_to_center_scale, crop
from .visualize import draw_heatmaps, draw_poses

PersonBoxes = Callable[[np.ndarray, str], np.ndarray]


def whole_image_boxes(image: np.ndarray, source: str = "") -> np.ndarray:
    """One person filling the image: [[0, 0, W, H, 1]]."""
    return np.array([[0.0, 0.0, image.shape[1], image.shape[0], 1.0]])


def results_file_boxes(path: str | os.PathLike, *, score_threshold: float = 0.0, category_id: int = 1
                       ) -> PersonBoxes:
    """Boxes from a COCO results json ([{image_id, category_id, bbox, score}], optionally
    `file_name`). An image is matched by `file_name`, else by its file stem read as the integer
    image id (COCO names like 000000000785.jpg); images without an entry get no person."""
    entries = read_json(path, "person boxes file")
    if not isinstance(entries, list):
        raise DataError(f"{path} must be a COCO results list of {{image_id, bbox, score}}")
    by_key: dict[str, list[list[float]]] = defaultdict(list)
    for i, entry in enumerate(entries):
        if "bbox" not in entry or ("image_id" not in entry and "file_name" not in entry):
            raise DataError(f"{path}: entry {i} needs 'bbox' and 'image_id' (or 'file_name')")
        if entry.get("category_id", category_id) != category_id or entry.get("score", 1.0) < score_threshold:
            continue
        key = str(entry["file_name"]) if "file_name" in entry else str(int(entry["image_id"]))
        by_key[key].append([*entry["bbox"][:4], float(entry.get("score", 1.0))])

    def boxes(image: np.ndarray, source: str) -> np.ndarray:
        name = Path(source).name
        stem = Path(source).stem
        found = by_key.get(name) or (by_key.get(str(int(stem))) if stem.isdigit() else None) or []
        return np.asarray(found, dtype=np.float64).reshape(-1, 5)

    return boxes


def detector_boxes(detector: Callable[[np.ndarray], np.ndarray], *, score_threshold: float = 0.0) -> PersonBoxes:
    """Adapts a person detector, rgb image -> (N, 5) (x, y, w, h, score), to `PersonBoxes`."""
    def boxes(image: np.ndarray, source: str) -> np.ndarray:
        found = np.asarray(detector(image), dtype=np.float64).reshape(-1, 5)
        return found[found[:, 4] >= score_threshold]

    return boxes


@torch.no_grad()
def estimate_poses(model: nn.Module, image: np.ndarray, boxes: np.ndarray, *, metadata: KeypointMetadata,
                   input_size: Sequence[int], flip: bool = True, decoding: str = "quarter", batch_size: int = 32
                   ) -> dict[str, np.ndarray]:
    """Poses of the persons in `boxes` (N, 5) on an RGB image, as the official test pipeline:
    crop each box (aspect fit, x1.25), flip test, decode, back-project, rescore, OKS NMS.

    Returns {"keypoints" (P, K, 3) as (x, y, score) in image pixels, "scores" (P,), "boxes" (P, 5),
    "heatmaps" (P, K, h, w), "crops" (P, H, W, 3) uint8}; input_size is (width, height)."""
    model.eval()
    device = next(model.parameters()).device
    count, k = len(boxes), metadata.num_keypoints
    if count == 0:
        height, width = int(input_size[1]), int(input_size[0])
        return {"keypoints": np.zeros((0, k, 3)), "scores": np.zeros(0), "boxes": np.zeros((0, 5)),
                "heatmaps": np.zeros((0, k, height // 4, width // 4), np.float32),
                "crops": np.zeros((0, height, width, 3), np.uint8)}
    centers, scales = zip(*(box_to_center_scale(box, input_size[0] / input_size[1]) for box in boxes))
    crops = np.stack([crop(image, c, s, 0.0, input_size)[0] for c, s in zip(centers, scales)])
    heatmaps = []
    for start in range(0, count, batch_size):
        batch = torch.stack([to_tensor(c) for c in crops[start:start + batch_size]]).to(device)
        out = flip_test(model, batch, metadata.flip_permutation()) if flip else model(batch)
        heatmaps.append(out.float().cpu().numpy())
    heatmaps = np.concatenate(heatmaps)
    coords, peaks = decode_heatmaps(heatmaps, np.stack(centers), np.stack(scales), method=decoding)
    keypoints = np.concatenate([coords, peaks], axis=2)
    scores = rescore(keypoints, boxes[:, 4], RESCORE_THRESHOLD)
    areas = np.prod(np.stack(scales) * PIXEL_STD, axis=1)
    keep = oks_nms(keypoints, scores, areas, metadata.sigmas, OKS_NMS_THRESHOLD)
    return {"keypoints": keypoints[keep], "scores": scores[keep], "boxes": boxes[keep], "heatmaps": heatmaps[keep],
            "crops": crops[keep]}


def _frames(path: Path) -> tuple[Iterator[np.ndarray], float | None]:
    if is_video(path):
        frames, fps, _ = read_video(path)
        return frames, fps
    return iter([read_image(path)]), None


def _image_id(path: Path, index: int) -> int:
    return int(path.stem) if path.stem.isdigit() else index


def predict_files(model: nn.Module, inputs: Sequence[Path], out_dir: str | os.PathLike, *,
                  metadata: KeypointMetadata, input_size: Sequence[int], boxes: PersonBoxes = whole_image_boxes,
                  flip: bool = True, decoding: str = "quarter", heatmaps: bool = False, threshold: float = 0.2
                  ) -> list[Prediction]:
    """Run on images and videos: a PNG per image (MP4 per video) with the skeletons drawn, with
    `heatmaps` a `<name>_heatmaps.png` of each person's crop, and `keypoints.json` holding every
    person in COCO results format (+ file_name, frame). Returns one Prediction per image/video."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    predictions = []
    for index, path in enumerate(inputs):
        frames, fps = _frames(Path(path))
        picture = out_dir / (f"{Path(path).stem}.mp4" if fps else f"{Path(path).stem}.png")
        writer = VideoWriter(picture, fps) if fps else None
        persons = []
        for frame_index, image in enumerate(frames):
            found = estimate_poses(model, image, boxes(image, str(path)), metadata=metadata, input_size=input_size,
                                   flip=flip, decoding=decoding)
            drawn = draw_poses(image, found["keypoints"], metadata, threshold=threshold, boxes=found["boxes"])
            for p in range(len(found["scores"])):
                person = {"image_id": _image_id(Path(path), index), "category_id": 1, "file_name": Path(path).name,
                          "keypoints": [round(float(v), 2) for v in found["keypoints"][p].reshape(-1)],
                          "score": float(found["scores"][p]), "box": [round(float(v), 2) for v in found["boxes"][p]]}
                if writer is not None:
                    person["frame"] = frame_index
                persons.append(person)
            if writer is not None:
                writer.write(drawn)
            else:
                write_image(picture, drawn)
                if heatmaps and len(found["crops"]):
                    tiles = [draw_heatmaps(c, h) for c, h in zip(found["crops"], found["heatmaps"])]
                    write_image(out_dir / f"{Path(path).stem}_heatmaps.png", np.concatenate(tiles, axis=1))
        if writer is not None:
            writer.close()
        results += persons
        predictions.append(Prediction(source=str(path), outputs={"persons": persons}, picture=str(picture)))
    (out_dir / "keypoints.json").write_text(json.dumps(results))
    return predictions
