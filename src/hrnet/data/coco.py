"""The fields of a COCO json that the tasks read, checked once, with the file, the record and the field.

Pose (top-down and bottom-up) and detection read the same COCO layout: `images` (id, file_name,
width, height) and `annotations` (id, image_id, category_id, bbox [x, y, w, h], iscrowd, area,
keypoints [x, y, v] * K, segmentation). `check_coco` checks every field a task reads before any
is used, so a wrong file is one line naming `annotations[12] (id 431) field 'bbox'` and what was
expected, not a KeyError or "too many values to unpack" from deep inside a loader.

`report_dropped` says what a loader left out on purpose (e.g. boxes of zero width, as the
official loaders drop them): the count and the first ids as a warning, every id with `-v`.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any, Sequence

from .io import DataError

log = logging.getLogger("hrnet")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_size(value: Any) -> bool:
    return _is_number(value) and value > 0 and float(value).is_integer()


def _shown(value: Any) -> str:
    return "lacks it" if value is None else f"holds {value!r:.40} ({type(value).__name__})"


def _numbers(value: Any, count: int | None) -> bool:
    return isinstance(value, list) and (count is None or len(value) == count) and all(map(_is_number, value))


def _check_image(image: Any, index: int, path: str, sizes: bool) -> None:
    if not isinstance(image, dict):
        raise DataError(f"{path}: images[{index}] holds a {type(image).__name__}; each image is an object with "
                        "id, file_name, width, height")
    where = f"{path}: images[{index}] (id {image.get('id')})"
    checks = (("id", _is_int(image.get("id")), "an integer"),
              ("file_name", isinstance(image.get("file_name"), str) and image.get("file_name"), "a file name"),
              ("width", not sizes or _is_size(image.get("width")), "a positive whole number (pixels)"),
              ("height", not sizes or _is_size(image.get("height")), "a positive whole number (pixels)"))
    for field, good, expected in checks:
        if not good:
            raise DataError(f"{where} field {field!r} {_shown(image.get(field))}; expected {expected}")


def _check_annotation(ann: Any, index: int, path: str, image_ids: set[int], keypoints: int | None,
                      people: set[int] | None, boxes: bool) -> None:
    if not isinstance(ann, dict):
        raise DataError(f"{path}: annotations[{index}] holds a {type(ann).__name__}, not an object")
    where = f"{path}: annotations[{index}] (id {ann.get('id')})"
    checks = [("image_id", _is_int(ann.get("image_id")), "the integer id of an entry of 'images'"),
              ("category_id", ann.get("category_id", 1) is None or _is_int(ann.get("category_id", 1)), "an integer"),
              ("bbox", not boxes or _numbers(ann.get("bbox"), 4), "[x, y, width, height], 4 finite numbers"),
              ("iscrowd", ann.get("iscrowd", 0) in (0, 1), "0 or 1"),
              ("area", "area" not in ann or _is_number(ann["area"]), "a finite number (pixels)")]
    person = people is None or ann.get("category_id", 1) in people
    if keypoints is not None and person and ("keypoints" in ann or not ann.get("iscrowd", 0)):
        checks.append(("keypoints", _numbers(ann.get("keypoints"), 3 * keypoints),
                       f"{3 * keypoints} finite numbers (x, y, visibility for each of {keypoints} keypoints)"))
    for field, good, expected in checks:
        if not good:
            value = ann.get(field)
            shown = _shown(value)
            if field == "keypoints" and isinstance(value, list):
                shown = f"holds {len(value)} values" if len(value) != 3 * keypoints else "holds a NaN or a non-number"
            raise DataError(f"{where} field {field!r} {shown}; expected {expected}")
    if ann["image_id"] not in image_ids:
        raise DataError(f"{where} field 'image_id' names image {ann['image_id']}, which is not in 'images'")


def check_coco(coco: Any, path: str | os.PathLike, *, keypoints: int | None = None, people: set[int] | None = None,
               boxes: bool = True, sizes: bool = True) -> None:
    """DataError naming the file, the record and the field when `coco` lacks or mistypes a field the
    tasks read. `keypoints`: the joint count of the keypoint annotations of the categories `people`
    (None: all; a crowd region may omit them), None for detection; `boxes`: whether the task reads
    `bbox` (bottom-up pose does not); `sizes`: whether it reads the images' width and height
    (detection takes them from the pixels)."""
    path = str(path)
    if not isinstance(coco, dict):
        raise DataError(f"{path} holds a {type(coco).__name__}, not a COCO json (an object with 'images' and "
                        "'annotations')")
    for key in ("images", "annotations"):
        if not isinstance(coco.get(key), list):
            raise DataError(f"{path}: field {key!r} {_shown(coco.get(key))}; a COCO json needs the lists 'images' "
                            "and 'annotations'")
    for index, image in enumerate(coco["images"]):
        _check_image(image, index, path, sizes)
    image_ids = {image["id"] for image in coco["images"]}
    for index, ann in enumerate(coco["annotations"]):
        _check_annotation(ann, index, path, image_ids, keypoints, people, boxes)


def check_detection(det: Any, index: int, path: str | os.PathLike) -> None:
    """One entry of a COCO results json (person boxes for top-down pose): image_id, bbox, score."""
    if not isinstance(det, dict):
        raise DataError(f"{path}: entry {index} holds a {type(det).__name__}, not an object with image_id, bbox, score")
    checks = (("image_id", _is_int(det.get("image_id")), "the integer id of an image"),
              ("bbox", _numbers(det.get("bbox"), 4), "[x, y, width, height], 4 finite numbers"),
              ("score", _is_number(det.get("score")), "a finite number"))
    for field, good, expected in checks:
        if not good:
            raise DataError(f"{path}: entry {index} field {field!r} {_shown(det.get(field))}; expected {expected}")


def report_dropped(path: str | os.PathLike, ids: Sequence[Any], why: str) -> None:
    """One warning: how many annotations of `path` were left out and why, with the first ids (all with -v)."""
    if not ids:
        return
    shown = ", ".join(map(str, ids[:5])) + (", ..." if len(ids) > 5 else "")
    log.warning("%s: %d annotation(s) left out, %s (ids %s; -v lists all)", path, len(ids), why, shown)
    log.info("%s: every annotation left out (%s): %s", path, why, ", ".join(map(str, ids)))
