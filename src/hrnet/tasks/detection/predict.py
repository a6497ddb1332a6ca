"""Detection on images, folders and videos: pictures, a COCO results json, and person boxes for pose.

`hrnet predict` (the engine's command) calls `DetectionTask.predict`, which calls `predict` here.
`person_boxes` is what top-down pose estimation needs from a detector.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from hrnet.data.io import VideoWriter, is_video, read_image, read_video, write_image
from hrnet.engine.task import Prediction

from .evaluate import to_coco_results
from .visualize import draw_detections

RESULTS_FILE = "detections.json"


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def detect(model: nn.Module, images: Sequence[np.ndarray], *, score_threshold: float = 0.3) -> list[dict[str, Any]]:
    """Run a detector on RGB uint8 images (H, W, 3) of any sizes.

    Returns per image `boxes` (K, 4) x1y1x2y2 float32, `labels` (K,) int64, `scores` (K,) float32,
    and for Mask R-CNN `masks` (K, H, W) bool, keeping detections scoring >= score_threshold.
    """
    model.eval()
    device = _device(model)
    tensors = [torch.from_numpy(image).to(device).permute(2, 0, 1).float().div_(255) for image in images]
    found = []
    for output in model(tensors):
        keep = output["scores"] >= score_threshold
        result = {key: output[key][keep].cpu().numpy() for key in ("boxes", "labels", "scores")}
        if "masks" in output:
            result["masks"] = (output["masks"][keep][:, 0] > 0.5).cpu().numpy()
        found.append(result)
    return found


def person_boxes(model: nn.Module, image: np.ndarray, *, person_label: int = 1,
                 score_threshold: float = 0.5) -> np.ndarray:
    """Person detections of one RGB uint8 image (H, W, 3), for top-down pose estimation.

    Returns (N, 5) float32 rows [x, y, width, height, score] (COCO boxes, as the pose task's
    `detector` option and COCO person-detection files hold them), best first. person_label: the
    detector's label of the person class (1 for COCO, whose first category is person;
    `person_label_of(class_names)` finds it for other datasets).
    """
    result = detect(model, [image], score_threshold=score_threshold)[0]
    keep = result["labels"] == person_label
    boxes = result["boxes"][keep]
    rows = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2], result["scores"][keep, None]], axis=1)
    return rows[np.argsort(-rows[:, 4], kind="stable")].astype(np.float32)


def person_label_of(class_names: Sequence[str]) -> int:
    if "person" not in class_names:
        raise ValueError(f"the detector has no 'person' class (classes: {', '.join(class_names)}); "
                         "use a detector trained with people, e.g. on COCO")
    return list(class_names).index("person") + 1


def image_id_of(path: Path) -> int | str:
    """COCO names images by their id (000000000785.jpg is 785): reuse it, else the file name."""
    return int(path.stem) if path.stem.isdigit() else path.name


def predict(model: nn.Module, inputs: list[Path], out_dir: Path, *, class_names: Sequence[str] | None = None,
            category_ids: Sequence[int] | None = None, score_threshold: float = 0.3) -> list[Prediction]:
    """Detect on image and video files; write `<stem>.png` per image, `<stem>.mp4` per video and
    `detections.json` (COCO results: image_id, category_id, bbox [x, y, w, h], score,
    segmentation RLE for masks, plus file_name and, for videos, frame) into `out_dir`.

    category_ids[label - 1] is the json category of a label (default: the label itself).
    Returns one Prediction per image (outputs: boxes, labels, scores, names) and one per video
    (outputs: frames).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    options = {"class_names": class_names, "category_ids": category_ids, "score_threshold": score_threshold}
    results: list[dict] = []
    predictions = []
    used: set[str] = set()
    for path in inputs:
        name = _unique_stem(path, used)
        run = _predict_video if is_video(path) else _predict_image
        prediction, found = run(model, path, out_dir / name, **options)
        predictions.append(prediction)
        results += found
    (out_dir / RESULTS_FILE).write_text(json.dumps(results))
    return predictions


def _unique_stem(path: Path, used: set[str]) -> str:
    """The file's stem, numbered when two inputs share it (a/x.jpg and b/x.jpg)."""
    name, number = path.stem, 1
    while name in used:
        number += 1
        name = f"{path.stem}_{number}"
    used.add(name)
    return name


def _predict_image(model: nn.Module, path: Path, out: Path, **options: Any) -> tuple[Prediction, list[dict]]:
    """`out`: the output path without suffix."""
    image = read_image(path)
    picture, found, results = _detect_and_draw(model, image, image_id_of(path), **options)
    picture_path = out.with_suffix(".png")
    write_image(picture_path, picture)
    outputs = _outputs(found, options["class_names"])
    return Prediction(source=str(path), outputs=outputs, picture=str(picture_path)), \
        [{**r, "file_name": path.name} for r in results]


def _predict_video(model: nn.Module, path: Path, out: Path, **options: Any) -> tuple[Prediction, list[dict]]:
    frames, fps, _ = read_video(path)
    results: list[dict] = []
    count = 0
    with VideoWriter(out.with_suffix(".mp4"), fps=fps) as writer:
        for count, image in enumerate(frames, start=1):
            picture, _, found = _detect_and_draw(model, image, image_id_of(path), **options)
            writer.write(picture)
            results += [{**r, "file_name": path.name, "frame": count - 1} for r in found]
    return Prediction(source=str(path), outputs={"frames": count}, picture=str(writer.path)), results


def _detect_and_draw(model: nn.Module, image: np.ndarray, image_id: int | str, *, class_names: Sequence[str] | None,
                     category_ids: Sequence[int] | None, score_threshold: float):
    """-> (picture, detections as numpy, detections as COCO results)."""
    found = detect(model, [image], score_threshold=score_threshold)[0]
    picture = draw_detections(image, found["boxes"], found["labels"], scores=found["scores"],
                              masks=found.get("masks"), class_names=class_names)
    return picture, found, _coco_results(found, image_id, category_ids)


def _coco_results(found: dict[str, np.ndarray], image_id: int | str,
                  category_ids: Sequence[int] | None) -> list[dict]:
    output = {key: torch.from_numpy(np.asarray(value)) for key, value in found.items()}
    if "masks" in output:
        output["masks"] = output["masks"][:, None].float()
    return to_coco_results(output, image_id, category_ids)


def _outputs(found: dict[str, np.ndarray], class_names: Sequence[str] | None) -> dict[str, Any]:
    labels = found["labels"].tolist()
    names = [class_names[label - 1] if class_names and label <= len(class_names) else str(label) for label in labels]
    return {"boxes": found["boxes"].tolist(), "labels": labels, "scores": found["scores"].tolist(), "names": names}
