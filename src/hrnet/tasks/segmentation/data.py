"""Segmentation datasets: where the image/mask pairs of each layout live, and one dataset class that
reads, checks and transforms a pair.

Layouts (split = "train" or "val"):
  cityscapes  ROOT/leftImg8bit/SPLIT/CITY/*_leftImg8bit.png + ROOT/gtFine/SPLIT/CITY/*_gtFine_labelIds.png
  ade20k      ROOT/images/{training,validation}/*.jpg + ROOT/annotations/{training,validation}/*.png
  camvid      ROOT/SPLIT.txt listing "image mask" pairs (SegNet's `/SegNet/CamVid/` prefix stripped),
              or, without the list, ROOT/SPLIT/*.png + ROOT/SPLITannot/*.png
  generic     an image folder + a mask folder paired by file stem (masks are PNGs), plus a class list
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ...data.io import DataError, list_images, read_image, read_mask
from .classes import ClassList

Pair = tuple[Path, Path]
FORMATS = ("cityscapes", "ade20k", "camvid", "generic")
CAMVID_PREFIX = "/SegNet/CamVid/"


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{what} folder {path} does not exist; check data.root and the dataset layout")
    return path


def cityscapes_pairs(root: str | os.PathLike, split: str) -> list[Pair]:
    root = Path(root)
    images = _require_dir(root / "leftImg8bit" / split, "Cityscapes image")
    pairs = []
    for image in sorted(images.glob("*/*_leftImg8bit.png")):
        stem = image.name[: -len("_leftImg8bit.png")]
        pairs.append((image, root / "gtFine" / split / image.parent.name / f"{stem}_gtFine_labelIds.png"))
    return pairs


def ade20k_pairs(root: str | os.PathLike, split: str) -> list[Pair]:
    folder = {"train": "training", "val": "validation"}.get(split, split)
    root = Path(root)
    return folder_pairs(root / "images" / folder, root / "annotations" / folder)


def camvid_pairs(root: str | os.PathLike, split: str) -> list[Pair]:
    root = Path(root)
    listing = root / f"{split}.txt"
    if not listing.is_file():
        return folder_pairs(root / split, root / f"{split}annot")
    return list_file_pairs(root, listing, strip_prefix=CAMVID_PREFIX)


def list_file_pairs(root: Path, listing: Path, *, strip_prefix: str = "") -> list[Pair]:
    """Pairs from a text file of "image mask" lines, paths relative to `root`."""
    pairs = []
    for number, line in enumerate(listing.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise DataError(f"{listing} line {number}: expected 'IMAGE MASK', got {line!r}")
        image, mask = (p[len(strip_prefix):] if strip_prefix and p.startswith(strip_prefix) else p for p in parts)
        pairs.append((root / image.lstrip("/"), root / mask.lstrip("/")))
    return pairs


def folder_pairs(image_dir: str | os.PathLike, mask_dir: str | os.PathLike) -> list[Pair]:
    """Every image in `image_dir` with the mask of the same stem (`.png`) in `mask_dir` (same sub-path)."""
    image_dir, mask_dir = Path(image_dir), Path(mask_dir)
    _require_dir(image_dir, "image")
    _require_dir(mask_dir, "mask")
    pairs, missing = [], []
    for image in list_images(image_dir):
        mask = (mask_dir / image.relative_to(image_dir)).with_suffix(".png")
        (pairs if mask.is_file() else missing).append((image, mask))
    if missing:
        shown = ", ".join(str(m) for _, m in missing[:3])
        raise DataError(f"{len(missing)} image(s) in {image_dir} have no mask in {mask_dir} (e.g. {shown}); "
                        "add the masks or move those images out")
    return pairs


def find_pairs(format: str, root: str | os.PathLike, split: str, *, image_dir: str = "images/{split}",
               mask_dir: str = "masks/{split}") -> list[Pair]:
    """The (image, mask) pairs of a split in one of FORMATS.

    generic: `image_dir`/`mask_dir` are relative to `root` and may contain `{split}`; a `ROOT/SPLIT.txt`
    of "image mask" lines, when present, selects and orders the pairs instead.
    """
    if format == "cityscapes":
        pairs = cityscapes_pairs(root, split)
    elif format == "ade20k":
        pairs = ade20k_pairs(root, split)
    elif format == "camvid":
        pairs = camvid_pairs(root, split)
    elif format == "generic":
        root = Path(root)
        listing = root / f"{split}.txt"
        if listing.is_file():
            pairs = list_file_pairs(root, listing)
        else:
            pairs = folder_pairs(root / image_dir.format(split=split), root / mask_dir.format(split=split))
    else:
        raise DataError(f"unknown data.format {format!r}; choose one of {', '.join(FORMATS)}")
    if not pairs:
        raise DataError(f"no {split} images found for data.format {format!r} under {root}")
    return pairs


def check_pairs_exist(pairs: Sequence[Pair], what: str) -> None:
    """DataError naming the missing files (the first few) before training starts, not at the first
    epoch that reaches them."""
    missing = [path for pair in pairs for path in pair if not path.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:3])
        raise DataError(f"{len(missing)} file(s) of {what} do not exist (e.g. {shown}); check data.root, the "
                        "list file or the folders")


def _in_group(path: Path, root: Path, prefix: str) -> bool:
    """`prefix` starts the file name, or (ending in "/") names a folder on the path below root."""
    if prefix.endswith("/"):
        try:
            parts = path.relative_to(root).parts[:-1]
        except ValueError:
            parts = path.parts[:-1]
        return prefix.rstrip("/") in parts
    return path.name.startswith(prefix)


def split_groups(pairs: Sequence[Pair], groups: Sequence[str], *, root: str | os.PathLike
                 ) -> tuple[list[Pair], list[Pair]]:
    """(pairs outside every group, pairs inside one), in their order, by image path. A group that
    matches nothing, or holding out everything, is a DataError that shows the names there are."""
    root = Path(root)
    held = [any(_in_group(image, root, g) for g in groups) for image, _ in pairs]
    for group in groups:
        if not any(_in_group(image, root, group) for image, _ in pairs):
            names = sorted({image.name[:8] for image, _ in pairs})[:6]
            raise DataError(f"data.val_groups: no train image's file name starts with {group!r} (nor a folder "
                            f"{group.rstrip('/')!r} for a prefix ending in '/'); file names begin like "
                            f"{', '.join(names)}")
    kept = [pair for pair, out in zip(pairs, held) if not out]
    if not kept:
        raise DataError(f"data.val_groups {list(groups)} hold out every train image: nothing is left to train on")
    return kept, [pair for pair, out in zip(pairs, held) if out]


Transform = Callable[[np.ndarray, np.ndarray], tuple[torch.Tensor, torch.Tensor]]


class SegmentationDataset(Dataset):
    """(image, mask) pairs read, mapped to train ids, checked and transformed.

    Item: {"image": (3, H, W) float32, "mask": (H', W') int64 train ids, "index": int}.
    A mask whose size differs from its image, or that holds a value outside the class list, raises
    `DataError` naming the file.
    """

    def __init__(self, *, pairs: Sequence[Pair], classes: ClassList, transform: Transform | None = None):
        self.pairs = list(pairs)
        self.classes = classes
        self.transform = transform

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 (H, W, 3) and train ids int64 (H, W), checked."""
        image_path, mask_path = self.pairs[index]
        image = read_image(image_path)
        return image, self.load_mask(index, image_size=image.shape[:2])

    def load_mask(self, index: int, *, image_size: tuple[int, int] | None = None) -> np.ndarray:
        image_path, mask_path = self.pairs[index]
        labels = self.classes.encode(read_mask(mask_path))
        if image_size is not None and labels.shape != tuple(image_size):
            raise DataError(f"mask {mask_path} is {labels.shape[1]}x{labels.shape[0]} (WxH) but its image {image_path} "
                            f"is {image_size[1]}x{image_size[0]}; masks must have their image's size")
        bad = self.classes.invalid_values(labels)
        if bad:
            raise DataError(f"mask {mask_path} holds labels {bad[:10]} outside the {self.classes.num_classes} classes "
                            f"(0..{self.classes.num_classes - 1}, ignore {self.classes.ignore_index}); fix the mask "
                            "or the class list")
        return labels

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, labels = self.load(index)
        if self.transform is None:
            image_t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255.0
            mask_t = torch.from_numpy(labels)
        else:
            image_t, mask_t = self.transform(image, labels)
        return {"image": image_t, "mask": mask_t, "index": index}

    def check(self) -> list[str]:
        """Read every pair and return one message per bad file (empty when all is well)."""
        problems = []
        for index, (image_path, _) in enumerate(self.pairs):
            try:
                height, width = _image_size(image_path)
                self.load_mask(index, image_size=(height, width))
            except DataError as error:
                problems.append(str(error))
        return problems

    def class_pixel_counts(self) -> np.ndarray:
        """(K,) int64 labelled pixels per class over all masks (ignore excluded)."""
        counts = np.zeros(self.classes.num_classes, dtype=np.int64)
        for index in range(len(self)):
            labels = self.load_mask(index)
            valid = labels[labels != self.classes.ignore_index]
            counts += np.bincount(valid.ravel(), minlength=self.classes.num_classes)
        return counts


def _image_size(path: Path) -> tuple[int, int]:
    """(H, W) from the file header, without decoding pixels."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.height, image.width
    except (OSError, ValueError):
        raise DataError(f"image {path} cannot be read (corrupt or not an image)") from None


WEIGHTINGS = ("none", "enet", "median_frequency")


def class_weights(counts: np.ndarray, method: str) -> np.ndarray | None:
    """Per-class loss weights from pixel counts (K,), or None for method "none".

    enet: 1 / ln(1.02 + frequency) (Paszke et al. 2016); median_frequency: median(freq) / freq
    (Eigen & Fergus 2015, used by SegNet on CamVid). Classes with no pixels get weight 0.
    """
    if method == "none":
        return None
    if method not in WEIGHTINGS:
        raise ValueError(f"unknown class weighting {method!r}; choose one of {', '.join(WEIGHTINGS)}")
    counts = np.asarray(counts, dtype=np.float64)
    if counts.sum() == 0:
        raise DataError("cannot compute class weights: the masks hold no labelled pixels")
    freq = counts / counts.sum()
    present = counts > 0
    weights = np.zeros_like(freq)
    if method == "enet":
        weights[present] = 1.0 / np.log(1.02 + freq[present])
    else:
        weights[present] = np.median(freq[present]) / freq[present]
    return weights.astype(np.float32)

