"""What a prediction can be asked about, turned into RGB pictures: files, folders, arrays, videos, webcams.

Accepted inputs: a path to an image or a video, a folder (searched recursively for both), a PIL
image, an (H, W, 3) RGB uint8 numpy array (grey (H, W) and RGBA (H, W, 4) are converted), a
(3, H, W) tensor (uint8, or float in [0, 1]), a webcam index (streams only), or a list of these.
Video frames are decoded in a background thread, so decoding overlaps the network.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import torch

from ..data.io import IMAGE_SUFFIXES, VIDEO_SUFFIXES, ImageInfo, is_video, read_image_info
from ..errors import DataError

ACCEPTED = ("an image or video path, a folder, a PIL image, an (H, W, 3) RGB uint8 numpy array, a (3, H, W) tensor, "
            "or a list of these")
WEBCAM_TIMEOUT_SECONDS = 5.0


@dataclass
class Source:
    """One input to predict on: a file (`path`), or an in-memory picture (`array`), named `name`."""

    name: str
    path: Path | None = None
    array: np.ndarray | None = None

    @property
    def is_video(self) -> bool:
        return self.path is not None and is_video(self.path)


def _list_folder(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
    if not files:
        raise DataError(f"folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}) or videos "
                        f"({', '.join(VIDEO_SUFFIXES)})")
    return files


def to_rgb_array(picture: Any, name: str) -> np.ndarray:
    """An in-memory picture (PIL, numpy, tensor) as RGB uint8 (H, W, 3)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        Image = None
    if Image is not None and isinstance(picture, Image.Image):
        return np.array(picture.convert("RGB"), dtype=np.uint8)  # writable (Pillow's buffer is not)
    if isinstance(picture, torch.Tensor):
        if picture.dim() != 3 or picture.shape[0] not in (1, 3):
            raise DataError(f"{name}: a tensor input must be (3, H, W) (or (1, H, W)), got {tuple(picture.shape)}")
        array = picture.detach().cpu()
        if array.is_floating_point():
            array = (array.clamp(0, 1) * 255).round()
        picture = array.to(torch.uint8).permute(1, 2, 0).numpy()
    if not isinstance(picture, np.ndarray):
        raise DataError(f"{name}: cannot predict on a {type(picture).__name__}; give {ACCEPTED}")
    if picture.ndim == 2:
        picture = picture[..., None]
    if picture.ndim != 3 or picture.shape[2] not in (1, 3, 4):
        raise DataError(f"{name}: an array input must be (H, W, 3) RGB (or grey (H, W), RGBA (H, W, 4)), "
                        f"got shape {picture.shape}")
    if picture.dtype != np.uint8:
        if picture.dtype.kind == "f" and picture.max(initial=0) <= 1.0:
            picture = picture * 255.0
        picture = np.clip(np.round(picture), 0, 255).astype(np.uint8)
    if picture.shape[2] == 1:
        picture = np.repeat(picture, 3, axis=2)
    return np.ascontiguousarray(picture[..., :3])


def expand(inputs: Any) -> list[Source]:
    """Inputs -> Sources in order (folders expanded, sorted); raises DataError for anything else."""
    items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    if not items:
        raise DataError(f"nothing to predict on: give {ACCEPTED}")
    sources: list[Source] = []
    for index, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            path = Path(item)
            if path.is_dir():
                sources += [Source(name=str(p), path=p) for p in _list_folder(path)]
            elif path.is_file():
                if path.suffix.lower() not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
                    raise DataError(f"{path} is neither an image ({', '.join(IMAGE_SUFFIXES)}) nor a video "
                                    f"({', '.join(VIDEO_SUFFIXES)})")
                sources.append(Source(name=str(path), path=path))
            else:
                raise DataError(f"input {path} does not exist")
        elif isinstance(item, int) and not isinstance(item, bool):
            raise DataError(f"input {item}: a webcam index is a stream: use predictor.stream({item})")
        else:
            sources.append(Source(name=f"<{type(item).__name__} {index}>", array=to_rgb_array(item, f"input {index}")))
    return sources


def load(source: Source) -> tuple[np.ndarray, ImageInfo | None]:
    """The RGB picture of an image source, with EXIF orientation applied (a user's photo is predicted as
    it is displayed)."""
    if source.array is not None:
        return source.array, None
    return read_image_info(source.path, exif=True)


# ----------------------------------------------------------------------------- videos and webcams


def open_capture(source: str | os.PathLike | int) -> tuple[cv2.VideoCapture, float, int | None, str]:
    """(capture, fps, frame count or None, name) of a video file or a webcam index, or DataError."""
    if isinstance(source, int):
        capture = cv2.VideoCapture(source)
        if not capture.isOpened():
            raise DataError(f"webcam {source} cannot be opened: no camera with that index (on Linux /dev/video"
                            f"{source}); check it is connected and not used by another program")
        return capture, capture.get(cv2.CAP_PROP_FPS) or 30.0, None, f"webcam {source}"
    path = Path(source)
    if not path.is_file():
        raise DataError(f"video {path} does not exist")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DataError(f"video {path} cannot be opened (corrupt, or a codec OpenCV lacks); convert it to MP4 "
                        "(H.264) or pass its frames as images")
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    return capture, capture.get(cv2.CAP_PROP_FPS) or 25.0, count, str(path)


def frames(capture: cv2.VideoCapture, name: str, *, max_frames: int | None = None, buffer: int = 8,
           first_timeout: float = WEBCAM_TIMEOUT_SECONDS) -> Iterator[np.ndarray]:
    """RGB frames of an open capture, decoded in a background thread `buffer` frames ahead. A source
    that yields no first frame within `first_timeout` seconds is an error, not a hang."""
    frames_queue: queue.Queue = queue.Queue(maxsize=buffer)
    stop = threading.Event()
    done = object()

    def read() -> None:
        count = 0
        try:
            while not stop.is_set() and (max_frames is None or count < max_frames):
                ok, frame = capture.read()
                if not ok:
                    break
                frames_queue.put(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                count += 1
        finally:
            frames_queue.put(done)

    thread = threading.Thread(target=read, name=f"decode {name}", daemon=True)
    thread.start()
    try:
        first = True
        while True:
            try:
                item = frames_queue.get(timeout=first_timeout if first else None)
            except queue.Empty:
                raise DataError(f"{name} gave no frame within {first_timeout:.0f} s; check the camera or the file") from None
            first = False
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue
            try:
                frames_queue.get_nowait()
            except queue.Empty:
                time.sleep(0.01)
        capture.release()
