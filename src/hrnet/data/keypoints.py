"""Keypoint-set metadata: names, flip pairs, skeleton, OKS sigmas, upper/lower body ids.

Nothing else in the pose task is hard-coded to 17 joints: datasets, augmentation (flip, half
body), OKS NMS, COCO evaluation and drawing all read a `KeypointMetadata`. COCO-17 and MPII-16
are built in (as in the official `coco.py` / `mpii.py`); a custom set is a YAML or JSON file with
the same fields, validated when loaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from .io import DataError


class MetadataError(DataError):
    """Inconsistent keypoint metadata; the message names the source and the field."""


@dataclass(frozen=True)
class KeypointMetadata:
    """One keypoint set. Indices are 0-based positions in `keypoints`.

    sigmas: per-keypoint OKS sigmas (COCO's are the `kpt_oks_sigmas` of pycocotools).
    upper_body_ids / lower_body_ids: the two halves used by half-body augmentation.
    """

    name: str
    keypoints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    skeleton: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]
    upper_body_ids: tuple[int, ...]
    lower_body_ids: tuple[int, ...]
    source: str = "built-in"

    def __post_init__(self) -> None:
        where = f"keypoint metadata {self.source!r}"
        count = len(self.keypoints)
        if count == 0:
            raise MetadataError(f"{where}: field 'keypoints' is empty; list the keypoint names")
        if len(set(self.keypoints)) != count:
            raise MetadataError(f"{where}: field 'keypoints' repeats a name")
        if len(self.sigmas) != count:
            raise MetadataError(f"{where}: field 'sigmas' has {len(self.sigmas)} values for {count} keypoints; "
                                "give one OKS sigma per keypoint")
        if any(s <= 0 for s in self.sigmas):
            raise MetadataError(f"{where}: field 'sigmas' must be positive")
        for field in ("flip_pairs", "skeleton"):
            for pair in getattr(self, field):
                if len(pair) != 2 or not all(0 <= i < count for i in pair) or pair[0] == pair[1]:
                    raise MetadataError(f"{where}: field {field!r} has {list(pair)}; each entry is two different "
                                        f"keypoint indices in 0..{count - 1}")
        flipped = [i for pair in self.flip_pairs for i in pair]
        if len(flipped) != len(set(flipped)):
            raise MetadataError(f"{where}: field 'flip_pairs' uses a keypoint in more than one pair")
        for field in ("upper_body_ids", "lower_body_ids"):
            if not all(0 <= i < count for i in getattr(self, field)):
                raise MetadataError(f"{where}: field {field!r} has an index outside 0..{count - 1}")
        if set(self.upper_body_ids) & set(self.lower_body_ids):
            raise MetadataError(f"{where}: a keypoint is in both 'upper_body_ids' and 'lower_body_ids'")

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    def flip_permutation(self) -> list[int]:
        """Channel order of a horizontally flipped image: left and right keypoints swap."""
        order = list(range(self.num_keypoints))
        for a, b in self.flip_pairs:
            order[a], order[b] = b, a
        return order

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str) -> "KeypointMetadata":
        known = {f.name for f in fields(cls)} - {"source"}
        unknown = set(data) - known
        if unknown:
            raise MetadataError(f"keypoint metadata {source!r}: unknown field(s) {sorted(unknown)}; "
                                f"known fields are {sorted(known)}")
        missing = known - set(data) - {"name"}
        if missing:
            raise MetadataError(f"keypoint metadata {source!r}: missing field(s) {sorted(missing)}")
        try:
            return cls(
                name=str(data.get("name", Path(source).stem)),
                keypoints=tuple(str(k) for k in data["keypoints"]),
                flip_pairs=tuple(tuple(int(i) for i in p) for p in data["flip_pairs"]),
                skeleton=tuple(tuple(int(i) for i in p) for p in data["skeleton"]),
                sigmas=tuple(float(s) for s in data["sigmas"]),
                upper_body_ids=tuple(int(i) for i in data["upper_body_ids"]),
                lower_body_ids=tuple(int(i) for i in data["lower_body_ids"]),
                source=source,
            )
        except (TypeError, ValueError) as error:
            if isinstance(error, MetadataError):
                raise
            raise MetadataError(f"keypoint metadata {source!r}: ill-typed value ({error}); names are strings, "
                                "pairs are [i, j] lists of integers, sigmas are numbers") from None


COCO_KEYPOINTS = KeypointMetadata(
    name="coco",
    keypoints=("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
               "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
               "right_knee", "left_ankle", "right_ankle"),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    # The COCO annotation file's skeleton, made 0-based.
    skeleton=((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
              (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6)),
    sigmas=(0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087,
            0.087, 0.089, 0.089),
    upper_body_ids=tuple(range(11)),
    lower_body_ids=tuple(range(11, 17)),
)

MPII_KEYPOINTS = KeypointMetadata(
    name="mpii",
    keypoints=("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
               "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder",
               "left_elbow", "left_wrist"),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    skeleton=((0, 1), (1, 2), (2, 6), (3, 6), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (10, 11), (11, 12),
              (12, 7), (7, 13), (13, 14), (14, 15)),
    # MPII defines no OKS sigmas; these (mmpose's) serve only OKS NMS on MPII models.
    sigmas=(0.089, 0.083, 0.107, 0.107, 0.083, 0.089, 0.026, 0.026, 0.026, 0.026, 0.062, 0.072, 0.079, 0.079,
            0.072, 0.062),
    upper_body_ids=(7, 8, 9, 10, 11, 12, 13, 14, 15),
    lower_body_ids=(0, 1, 2, 3, 4, 5, 6),
)

BUILTIN_METADATA = {"coco": COCO_KEYPOINTS, "mpii": MPII_KEYPOINTS}


def load_metadata(name_or_path: str | os.PathLike | KeypointMetadata) -> KeypointMetadata:
    """A built-in set ("coco", "mpii") or a YAML/JSON file describing a custom one."""
    if isinstance(name_or_path, KeypointMetadata):
        return name_or_path
    if str(name_or_path) in BUILTIN_METADATA:
        return BUILTIN_METADATA[str(name_or_path)]
    path = Path(name_or_path)
    if not path.is_file():
        raise MetadataError(f"keypoint metadata {str(path)!r} is neither built in ({', '.join(BUILTIN_METADATA)}) "
                            "nor an existing YAML/JSON file")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise MetadataError(f"keypoint metadata {str(path)!r} cannot be parsed: {error}") from None
    if not isinstance(data, Mapping):
        raise MetadataError(f"keypoint metadata {str(path)!r} must be a mapping of fields")
    return KeypointMetadata.from_dict(data, source=str(path))
