"""Reading images and videos, with errors that name the file and say what to do.

Images are decoded with Pillow, completely, so that a truncated or corrupt file is an error naming
it (OpenCV decodes a truncated JPEG with a warning into mostly grey pixels)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from ..errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")

EXIF_ORIENTATION = 0x0112  # the TIFF/EXIF tag number of "Orientation"

__all__ = ["DataError", "ImageInfo", "read_image", "read_image_info", "read_json", "read_mask", "write_image", "read_video",
           "VideoWriter", "expand_inputs", "list_images", "is_video"]


def _open_decoded(path: str | os.PathLike, kind: str):
    """A Pillow image, decoded completely (so a truncated file fails here, not later as grey pixels)."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{kind} {path} does not exist" + ("" if not path.is_dir() else " (it is a folder)"))
    try:
        image = Image.open(path)
        image.load()
    except Image.DecompressionBombError as error:
        raise DataError(f"{kind} {path} is too large to decode safely ({error})") from None
    except (OSError, SyntaxError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{kind} {path} cannot be decoded ({reason}): it is corrupt, truncated or not an "
                        "image; replace or remove it") from None
    return image


@dataclass(frozen=True)
class ImageInfo:
    """How an image file became the RGB array: its Pillow `mode` (RGB needs no conversion), the EXIF
    orientation tag (1: none), and whether that orientation was applied (then coordinates refer to
    the picture as displayed, else to the stored pixels)."""

    mode: str
    exif_orientation: int = 1
    orientation_applied: bool = False

    @property
    def converted(self) -> bool:
        return self.mode != "RGB"

    @property
    def coordinates(self) -> str:
        """What pixel coordinates of results refer to (written into results files)."""
        if self.exif_orientation == 1:
            return "image pixels (no EXIF orientation)"
        if self.orientation_applied:
            return f"displayed image (EXIF orientation {self.exif_orientation} applied)"
        return f"stored pixels (EXIF orientation {self.exif_orientation} not applied)"


def _to_rgb(image) -> np.ndarray:
    """Any Pillow mode -> RGB uint8 (H, W, 3). 16- and 32-bit grey keep their high byte (as OpenCV
    does); alpha is dropped; palettes are expanded."""
    if image.mode == "RGB":
        return np.array(image, dtype=np.uint8)  # a writable copy (Pillow's buffer is read-only)
    if image.mode.startswith("I") or image.mode == "F":
        grey = np.asarray(image)
        if image.mode == "F":
            grey = np.clip(grey, 0, 255)
        elif grey.max(initial=0) > 255:
            grey = grey // 256
        return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    return np.array(image.convert("RGB"), dtype=np.uint8)


def read_image_info(path: str | os.PathLike, *, exif: bool = False) -> tuple[np.ndarray, ImageInfo]:
    """An image file as RGB uint8 (H, W, 3) and how it was read.

    exif=False (annotated data: COCO, MPII, VOC, CamVid, Cityscapes) keeps the stored pixels, as
    the official loaders do (OpenCV's IMREAD_IGNORE_ORIENTATION), because annotation coordinates
    refer to them. exif=True (a user's own photos) turns the picture as a viewer displays it.
    """
    from PIL import ImageOps

    image = _open_decoded(path, "image")
    orientation = int(image.getexif().get(EXIF_ORIENTATION, 1) or 1)
    applied = False
    if exif and orientation != 1:
        image = ImageOps.exif_transpose(image)
        applied = True
    return np.ascontiguousarray(_to_rgb(image)), ImageInfo(image.mode, orientation, applied)


def read_image(path: str | os.PathLike, *, exif: bool = False) -> np.ndarray:
    """An image file as an RGB uint8 array of shape (H, W, 3); see `read_image_info`."""
    return read_image_info(path, exif=exif)[0]


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A label image (one class index per pixel; palette PNGs keep their indices) as uint8 (H, W)."""
    image = _open_decoded(path, "mask")
    if image.mode in ("P", "L", "1"):
        return np.asarray(image.convert("L") if image.mode == "1" else image, dtype=np.uint8)
    if image.mode.startswith("I"):
        values = np.asarray(image)
        if values.max(initial=0) > 255 or values.min(initial=0) < 0:
            raise DataError(f"mask {path} is a {image.mode} image with values {int(values.min())}..{int(values.max())}; "
                            "label masks hold class indices 0..255 in one byte per pixel: re-save it as 8-bit")
        return values.astype(np.uint8)
    raise DataError(f"mask {path} has {len(image.getbands())} channels (mode {image.mode}); a label mask holds one "
                    "class index per pixel (a single-channel or palette PNG)")


def read_json(path: str | os.PathLike, what: str) -> Any:
    """A JSON file's content, or DataError naming `what` and the file (missing, not UTF-8, not JSON)."""
    import json

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{what} {path} is not valid JSON ({error})") from None


def write_image(path: str | os.PathLike, rgb: np.ndarray) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise DataError(f"could not write {path}: check the folder is writable and the suffix is an image format")


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in `folder` and below it, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"folder {folder} does not exist")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def expand_inputs(inputs: list[str | os.PathLike]) -> list[Path]:
    """Files and folders given on a command line -> image and video files, in order."""
    paths: list[Path] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            paths += list_images(item)
        elif item.is_file():
            if item.suffix.lower() not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
                raise DataError(f"{item} is neither an image ({', '.join(IMAGE_SUFFIXES)}) nor a video "
                                f"({', '.join(VIDEO_SUFFIXES)})")
            paths.append(item)
        else:
            raise DataError(f"input {item} does not exist")
    return paths


def read_video(path: str | os.PathLike) -> tuple[Iterator[np.ndarray], float, int]:
    """(RGB frames, frames per second, frame count) of a video file."""
    path = Path(path)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DataError(f"video {path} cannot be opened (missing, corrupt or an unsupported codec)")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))

    def frames() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    return frames(), fps, count


class VideoWriter:
    """MP4 writer for RGB frames (size fixed by the first frame)."""

    def __init__(self, path: str | os.PathLike, fps: float):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None

    def write(self, rgb: np.ndarray) -> None:
        if self._writer is None:
            height, width = rgb.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            if not self._writer.isOpened():
                raise DataError(f"cannot write video {self.path}: OpenCV has no mp4v encoder here")
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
