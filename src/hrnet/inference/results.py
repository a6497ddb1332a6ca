"""What every prediction returns: a typed result per task with `draw()`, `save()` and `to_json()`.

Each task defines its result (a dataclass deriving from `Result`): classification's top-k, pose's
keypoints, segmentation's label map, detection's boxes. They share the input's name, the picture
the prediction was made on (for drawing), what the coordinates refer to, and `how`: the settings
that produced the numbers (flip test, decoding, box source, scales, runtime).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..data.io import IMAGE_SUFFIXES, VideoWriter, write_image
from ..errors import DataError


@dataclass(eq=False)
class Result:
    """One image's (or video frame's) prediction.

    `image` is the RGB uint8 picture (H, W, 3) the prediction refers to, as displayed (EXIF
    orientation applied for photos); every coordinate of the result is in its pixels, as
    `coordinates` says. `frame` is the index in a video (None for an image)."""

    source: str
    image: np.ndarray = field(repr=False)
    how: dict[str, Any] = field(default_factory=dict)
    coordinates: str = "image pixels"
    frame: int | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the picture."""
        return int(self.image.shape[0]), int(self.image.shape[1])

    def draw(self) -> np.ndarray:
        """The picture with the prediction drawn on it: RGB uint8 (H, W, 3)."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """The prediction as plain JSON data (COCO-results style where COCO has a format)."""
        raise NotImplementedError

    def _header(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "height": self.size[0], "width": self.size[1],
                               "coordinates": self.coordinates}
        if self.frame is not None:
            out["frame"] = self.frame
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write the drawn picture (.png, .jpg, ...) or the JSON (.json) to `path`, atomically: a failed
        save leaves no partial file."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(self.to_json())))
        elif suffix in IMAGE_SUFFIXES:
            write_atomic(path, lambda tmp: write_image(tmp, self.draw()))
        else:
            raise DataError(f"cannot save a result as {path}: use an image suffix ({', '.join(IMAGE_SUFFIXES)}) "
                            "or .json")
        return path


def write_atomic(path: Path, write: Callable[[str], Any]) -> None:
    """Call `write(temporary path)` (same folder, same suffix), then rename over `path`; on failure the
    temporary file is removed and `path` is untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


class ResultStream:
    """Results of a video or webcam, frame by frame, produced lazily as it is iterated.

    `fps` is the source's frame rate; `save(path)` consumes the stream and writes an MP4 of the
    drawn frames at that rate (atomically), returning the results' JSON."""

    def __init__(self, results: Iterator[Result], *, source: str, fps: float, frames: int | None):
        self._results = results
        self.source = source
        self.fps = fps
        self.frames = frames  # the source's frame count when known (None for a webcam)

    def __iter__(self) -> Iterator[Result]:
        return self._results

    def save(self, path: str | os.PathLike, *, on_result: Callable[[Result], None] | None = None) -> list[dict]:
        """Write the drawn frames to `path` (.mp4) and return every frame's `to_json()`."""
        path = Path(path)
        if path.suffix.lower() != ".mp4":
            raise DataError(f"a stream saves as an .mp4 video, not {path.name}")
        records: list[dict] = []

        def write(tmp: str) -> None:
            with VideoWriter(tmp, self.fps) as writer:
                for result in self:
                    writer.write(result.draw())
                    records.append(result.to_json())
                    if on_result is not None:
                        on_result(result)

        write_atomic(path, write)
        return records
