"""One published checkpoint as typed data: `Weights` (and its `Metric`s), validated when built.

Every field a caller may read is documented on `Weights`; the inference API reads class names,
input size, mean/std and pose decoding from here, `create_model(weights=...)` reads the task, head,
class count, fusion and `align_corners`, and `hrnet.hub` reads url, file name and hash.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import CheckpointError, ConfigError

SOURCES = ("timm", "mmpose", "mmseg", "mmdet", "official", "hrnet")
LICENCES = ("MIT", "Apache-2.0")
# Class-name lists `hrnet.weights.class_names` can resolve: ImageNet and COCO from torchvision's
# weights metadata, the rest from hrnet.data.classes.BUILTIN.
CLASS_LISTS = ("imagenet-1k", "coco", "cityscapes", "ade20k", "pascal_voc", "pascal_context", "pascal_context_59",
               "loveda", "potsdam", "vaihingen", "isaid", "lip", "coco_stuff")
KEYPOINT_SETS = ("coco", "mpii")
# Pose decodings: the official quarter offset, DARK (Zhang et al. 2020) and UDP (Huang et al. 2020,
# mmpose 0.x `post_dark_udp` + `transform_preds(use_udp=True)`).
DECODINGS = ("quarter", "dark", "udp")
KEYPOINT_TASKS = ("pose", "bottom_up_pose")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("bilinear", "bicubic")
NAME = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")
HEX = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True)
class Metric:
    """A published result: `value` in `unit` ("percent", or "fraction" as mmpose and the official
    pose repository publish AP / PCKh), on the evaluation split `dataset`, under `protocol`."""

    name: str
    value: float
    unit: str
    dataset: str
    protocol: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", float(self.value))
        if self.unit not in ("percent", "fraction"):
            raise ValueError(f"metric {self.name!r}: unit must be 'percent' or 'fraction', got {self.unit!r}")
        top = 100.0 if self.unit == "percent" else 1.0
        if not 0.0 <= self.value <= top:
            raise ValueError(f"metric {self.name!r}: {self.value} is outside 0..{top:g} ({self.unit})")
        if not self.name or not self.dataset:
            raise ValueError("a metric needs a name and the dataset it was measured on")

    @property
    def percent(self) -> float:
        """The value in percent (a fraction times 100), rounded to the published precision."""
        return round(self.value * (100.0 if self.unit == "fraction" else 1.0), 3)

    def __str__(self) -> str:
        return f"{self.name} {self.percent:g}"


@dataclass(frozen=True)
class Weights:
    """A checkpoint somebody published, named `ARCH.TAG` (`arch` is a `spec.VARIANTS` name).

    Where the file is: `url` (a direct download; for `direct=False`, the share page a person opens,
    following `manual`), cached as `file_name` under `cache_path`; `sha256` (where the publisher
    states it) or `hash_prefix` (the hex embedded in the published file name, checked against the
    start of the sha256 as torch.hub does). `source` is the publisher, `layout` the key layout
    (an `hrnet.layouts` name), `page` where it is published, `licence` its SPDX id.

    What the model is: `task` and `head` (`create_model`'s head option: None or "ocr"; for detection
    the detector, "faster_rcnn" / "mask_rcnn"), `num_classes` as `create_model` counts them
    (keypoints for pose; detection includes the background), `classes` (a `CLASS_LISTS` name) or
    `keypoints` (a `KEYPOINT_SETS` name), `fuse_mode` and `align_corners` of the backbone fusion and
    segmentation heads, `conv_bias` (False: the file has no conv biases where the model has them,
    loaded as zeros).

    How to run it: `input_size` (H, W) of training crops (detection: shorter side, longest side),
    `mean`/`std` of RGB in [0, 1], `crop_pct`/`interpolation` (classification evaluation: resize
    to input/crop_pct, centre crop), pose `decoding` ("quarter", "dark", "udp") with the Gaussian
    `dark_kernel` of DARK/UDP, and `flip_shift` (shift flipped heatmaps one column, all but UDP).

    What it achieves: `metrics` (the first is the headline one), `recipe` (a file in recipes/ that
    reproduces it), `config` (the publisher's config). `pending` names what this library still lacks
    to load it (an architecture or task being added); such an entry is listed but `available` only
    once everything it needs is registered.
    """

    name: str
    url: str
    file_name: str
    source: str
    layout: str
    task: str
    num_classes: int
    dataset: str
    licence: str
    page: str
    head: str | None = None
    classes: str | None = None
    keypoints: str | None = None
    sha256: str | None = None
    hash_prefix: str | None = None
    direct: bool = True
    manual: str | None = None
    input_size: tuple[int, int] | None = None
    crop_pct: float | None = None
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    fuse_mode: str | None = None
    align_corners: bool = False
    conv_bias: bool = True
    decoding: str | None = None
    dark_kernel: int | None = None
    metrics: tuple[Metric, ...] = ()
    recipe: str | None = None
    config: str | None = None
    aliases: tuple[str, ...] = ()
    pending: str | None = None
    notes: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        try:
            _normalise(self)
            _check_names(self)
            _check_file(self)
            _check_model(self)
            _check_running(self)
        except ValueError as error:
            raise ConfigError(f"weights {self.name!r}: {error}") from None

    # ------------------------------------------------------------------ derived

    @property
    def arch(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def metric(self) -> Metric | None:
        """The headline metric (the first published one), or None where nothing is published."""
        return self.metrics[0] if self.metrics else None

    @property
    def flip_shift(self) -> bool:
        """Whether flip test shifts the mirrored heatmaps one column (the official and mmpose
        `shift_heatmap=True`; UDP's aligned coordinates need no shift: `shift_heatmap=False`)."""
        return self.decoding != "udp"

    @property
    def cache_path(self) -> Path:
        """Where the file is kept: $HRNET_CACHE/weights/<name>/<file_name>."""
        from ..hub import cache_dir

        return cache_dir() / "weights" / self.name / self.file_name

    @property
    def available(self) -> bool:
        """True when this library registers everything the entry needs (always, unless `pending`)."""
        return not _missing(self)

    def replace(self, **changes: Any) -> "Weights":
        """A copy with fields replaced (validated again), e.g. another `url` for a mirror."""
        return dataclasses.replace(self, **changes)

    def get_path(self, *, timeout: float | None = None, retries: int | None = None) -> Path:
        """The cached file, downloading it first (atomically, hash-checked, with retries and a
        progress bar on a terminal). A `direct=False` entry, or any entry under HRNET_OFFLINE=1,
        that is not cached raises CheckpointError saying where to get it and how to place it."""
        from .. import hub

        target = self.cache_path
        if target.is_file():
            return target
        if not self.direct:
            raise CheckpointError(f"{self.name} is not in the cache ({target}) and cannot be downloaded "
                                  f"automatically: {self.manual_instructions()}")
        options = {k: v for k, v in (("timeout", timeout), ("retries", retries)) if v is not None}
        return hub.download(self.url, target, sha256=self.sha256, hash_prefix=self.hash_prefix,
                            manual=self.manual_instructions(), **options)

    def place(self, file: str | Path) -> Path:
        """Copy a file downloaded by hand into the cache, after checking its hash (where one is
        published) and that it is a readable checkpoint; nothing is written when a check fails."""
        from .. import hub
        from ..checkpoints import read_checkpoint

        file = Path(file)
        if not file.is_file():
            raise CheckpointError(f"{file} is not a file; pass the checkpoint downloaded for {self.name}")
        if self.sha256 or self.hash_prefix:
            hub.check_hash(file, sha256=self.sha256, hash_prefix=self.hash_prefix)
        read_checkpoint(file)
        return hub.place_file(file, self.cache_path)

    def manual_instructions(self) -> str:
        """How a person gets the file without this library's download."""
        how = self.manual or f"download {self.url} by hand"
        return (f"{how.rstrip('.')}, then run `hrnet weights place {self.name} FILE` to check it and copy it "
                "into the cache")


# ---------------------------------------------------------------------------- validation


def _normalise(w: Weights) -> None:
    """YAML gives lists and dicts: make the typed, hashable values."""
    set_ = lambda name, value: object.__setattr__(w, name, value)  # noqa: E731
    if w.input_size is not None:
        set_("input_size", tuple(int(v) for v in w.input_size))
    set_("mean", tuple(float(v) for v in w.mean))
    set_("std", tuple(float(v) for v in w.std))
    set_("aliases", tuple(w.aliases))
    set_("metrics", tuple(m if isinstance(m, Metric) else Metric(**_mapping(m, "metrics")) for m in w.metrics))
    if w.fuse_mode is None:
        set_("fuse_mode", "bilinear" if w.task == "segmentation" else "nearest")
    for name in ("sha256", "hash_prefix"):
        value = getattr(w, name)
        if value is not None:
            set_(name, str(value).lower())


def _mapping(value: Any, field_name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"field {field_name!r} holds {value!r}; each item is a mapping")
    return value


def _check_names(w: Weights) -> None:
    for name in (w.name, *w.aliases):
        if not NAME.match(name):
            raise ValueError(f"name {name!r} must look like ARCH.TAG (lower case letters, digits, underscores)")
    if w.source not in SOURCES:
        raise ValueError(f"field 'source' is {w.source!r}; choose one of {', '.join(SOURCES)}")
    if w.licence not in LICENCES:
        raise ValueError(f"field 'licence' is {w.licence!r}; use an SPDX id of {', '.join(LICENCES)}")
    if not w.page.startswith("https://"):
        raise ValueError(f"field 'page' must be an https:// address, got {w.page!r}")
    if w.pending is not None and not w.pending.strip():
        raise ValueError("field 'pending' is empty; say what the entry waits for, or drop the field")
    if w.recipe is not None and not re.match(r"^recipes/[\w/.-]+\.yaml$", w.recipe):
        raise ValueError(f"field 'recipe' {w.recipe!r} must be a path recipes/<task>/<name>.yaml")


def _check_file(w: Weights) -> None:
    if not w.url.startswith(("https://", "http://")):
        raise ValueError(f"field 'url' must be an http(s) address, got {w.url!r}")
    if not w.file_name or "/" in w.file_name or "\\" in w.file_name:
        raise ValueError(f"field 'file_name' {w.file_name!r} must be a bare file name")
    if w.sha256 is not None and not (len(w.sha256) == 64 and HEX.match(w.sha256)):
        raise ValueError(f"field 'sha256' must be 64 hex digits, got {w.sha256!r}")
    if w.hash_prefix is not None:
        if not (6 <= len(w.hash_prefix) <= 64 and HEX.match(w.hash_prefix)):
            raise ValueError(f"field 'hash_prefix' must be 6 to 64 hex digits, got {w.hash_prefix!r}")
        if w.hash_prefix not in w.file_name.lower():
            raise ValueError(f"field 'hash_prefix' {w.hash_prefix} is the hash in the published file name, "
                             f"but file_name {w.file_name!r} does not contain it")
        if w.sha256 is not None and not w.sha256.startswith(w.hash_prefix):
            raise ValueError("fields 'sha256' and 'hash_prefix' disagree")
    if not w.direct and not w.manual:
        raise ValueError("a direct=False entry needs 'manual': where a person downloads the file by hand")


def _check_model(w: Weights) -> None:
    if w.num_classes < 1 or (w.task == "detection" and w.num_classes < 2):
        raise ValueError(f"field 'num_classes' is {w.num_classes}; detection counts the background too")
    keypoint_task = w.task in KEYPOINT_TASKS
    if keypoint_task and w.classes is not None:
        raise ValueError(f"field 'classes' is for class lists; a {w.task} entry names 'keypoints'")
    if not keypoint_task and (w.keypoints is not None or w.classes is None):
        raise ValueError(f"a {w.task} entry names its class list in 'classes' (one of {', '.join(CLASS_LISTS)})")
    if w.classes is not None and w.classes not in CLASS_LISTS:
        raise ValueError(f"field 'classes' is {w.classes!r}; choose one of {', '.join(CLASS_LISTS)}")
    if w.keypoints is not None and w.keypoints not in KEYPOINT_SETS:
        raise ValueError(f"field 'keypoints' is {w.keypoints!r}; choose one of {', '.join(KEYPOINT_SETS)}")
    expected_fusion = "bilinear" if w.task == "segmentation" else "nearest"
    if w.fuse_mode != expected_fusion:
        raise ValueError(f"field 'fuse_mode' is {w.fuse_mode!r}, but create_model builds {w.task} models with "
                         f"{expected_fusion} fusion")
    if w.align_corners and w.task != "segmentation":
        raise ValueError("field 'align_corners' only applies to bilinear (segmentation) fusion")
    missing = _missing(w)
    if missing and w.pending is None:
        raise ValueError("; ".join(missing) + " (mark the entry 'pending' if that is being added)")
    if not missing:
        _check_layout_implies(w)


def _check_layout_implies(w: Weights) -> None:
    """What the registered layout fixes must agree with the entry (e.g. mmseg: no conv bias,
    align_corners=False)."""
    from ..layouts import by_name

    implies = by_name(w.layout).implies
    ours = {"task": w.task, "head": w.head, "align_corners": w.align_corners, "conv_bias": w.conv_bias,
            "fuse_mode": w.fuse_mode}
    for key, value in implies.items():
        if key in ours and ours[key] != value:
            raise ValueError(f"layout {w.layout!r} implies {key}={value!r}, the entry says {ours[key]!r}")


def _check_running(w: Weights) -> None:
    if w.input_size is not None and (len(w.input_size) != 2 or min(w.input_size) < 1):
        raise ValueError(f"field 'input_size' must be [height, width], got {list(w.input_size)}")
    for name in ("mean", "std"):
        values = getattr(w, name)
        if len(values) != 3 or not all(0.0 < v <= 1.0 for v in values):
            raise ValueError(f"field {name!r} must be 3 values in (0, 1] (RGB in [0, 1]), got {list(values)}")
    if w.interpolation not in INTERPOLATIONS:
        raise ValueError(f"field 'interpolation' is {w.interpolation!r}; choose {' or '.join(INTERPOLATIONS)}")
    if w.crop_pct is not None and not 0.0 < w.crop_pct <= 1.0:
        raise ValueError(f"field 'crop_pct' must lie in (0, 1], got {w.crop_pct}")
    if w.task == "pose" and w.decoding not in DECODINGS:
        raise ValueError(f"a pose entry needs 'decoding', one of {', '.join(DECODINGS)}; got {w.decoding!r}")
    if w.task == "bottom_up_pose" and w.decoding not in (None, "udp"):
        raise ValueError(f"field 'decoding' of a bottom-up entry is 'udp' or absent, got {w.decoding!r}")
    if w.task not in KEYPOINT_TASKS and w.decoding is not None:
        raise ValueError(f"field 'decoding' is for pose entries; a {w.task} entry has none")
    needs_kernel = w.task == "pose" and w.decoding in ("dark", "udp")
    if needs_kernel != (w.dark_kernel is not None):
        raise ValueError("field 'dark_kernel' is the Gaussian kernel of dark/udp decoding: give it for those only")
    if needs_kernel and (w.dark_kernel < 3 or w.dark_kernel % 2 == 0):
        raise ValueError(f"field 'dark_kernel' must be an odd size >= 3, got {w.dark_kernel}")


def _missing(w: Weights) -> list[str]:
    """What the library does not (yet) register for this entry: arch, task, head, layout."""
    from ..layouts import registered
    from ..models import HEADS, TASKS
    from ..spec import VARIANTS

    missing = []
    if w.arch not in VARIANTS:
        missing.append(f"architecture {w.arch!r} is not registered (spec.VARIANTS)")
    if w.task not in TASKS:
        missing.append(f"task {w.task!r} is not registered (models.TASKS)")
    elif w.head not in _heads(w.task, HEADS):
        known = ", ".join(map(str, _heads(w.task, HEADS)))
        missing.append(f"head {w.head!r} is not one of task {w.task!r}'s ({known})")
    if w.layout not in {layout.name for layout in registered()}:
        missing.append(f"layout {w.layout!r} is not registered (hrnet.layouts)")
    return missing


def _heads(task: str, heads: Mapping[str, Mapping[str | None, Any]]) -> tuple[str | None, ...]:
    if task == "detection":
        from ..detectors import DETECTORS

        return DETECTORS
    return tuple(heads.get(task, {None: None}))
