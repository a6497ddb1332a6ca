"""Reading images and videos, with errors that name the file and say what to do."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


class DataError(ValueError):
    """Bad input data: the message names the file (and the field) and the fix."""


def _imread(path: str | os.PathLike, kind: str, flags: int) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{kind} {path} does not exist")
    image = cv2.imread(str(path), flags)
    if image is None:
        raise DataError(f"{kind} {path} cannot be decoded (corrupt, truncated or not an image); replace or remove it")
    return image


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as an RGB uint8 array of shape (H, W, 3)."""
    return cv2.cvtColor(_imread(path, "image", cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A label image (one byte per pixel, palette PNGs keep their indices) as uint8 (H, W)."""
    mask = _imread(path, "mask", cv2.IMREAD_UNCHANGED)
    if mask.ndim == 3:
        # OpenCV expands palette PNGs (e.g. PASCAL VOC) to colour; Pillow keeps their class indices.
        from PIL import Image

        with Image.open(path) as pil:
            if pil.mode == "P":
                return np.asarray(pil, dtype=np.uint8)
        raise DataError(f"mask {path} has {mask.shape[2]} colour channels; a label mask holds one class index per "
                        "pixel (a single-channel or palette PNG)")
    return mask


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
