"""Classification prediction: top-k classes with names, for images, folders and video frames.

`ClassificationInference` is what `hrnet.Predictor` drives for this task: `prepare` runs in
DataLoader workers (the evaluation transform: resize the shorter side, centre crop, normalise),
`run` does the batched forward, the optional flip test and the top-k.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..inference.results import Result
from .classification import DataConfig, build_transform, classification_flip, draw_labels, to_tensor


@dataclass(frozen=True)
class ClassificationSettings:
    """top_k: classes reported per image; flip_test: the logits of the image and of its mirror averaged
    (`classification_flip`, as the evaluation's `data.test_flip`)."""

    top_k: int = 5
    flip_test: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.top_k, int) or self.top_k < 1:
            raise ConfigError(f"top_k must be a positive number of classes, got {self.top_k!r}")


@dataclass(eq=False)
class Classification(Result):
    """The top-k classes of one picture: `names` (k,), `indices` (k,) int, `scores` (k,) softmax
    probabilities, best first."""

    names: list[str] = field(default_factory=list)
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    RESULTS_FILE = "predictions.json"

    @property
    def top(self) -> list[dict[str, Any]]:
        return [{"class": n, "index": int(i), "score": round(float(s), 6)}
                for n, i, s in zip(self.names, self.indices, self.scores)]

    def draw(self) -> np.ndarray:
        return draw_labels(self.image, self.top)

    def to_json(self) -> dict[str, Any]:
        return {**self._header(), "top_k": self.top, "how": self.how}

    # ---- hrnet predict's folder output (see hrnet.inference.writer)

    VIDEO_SUFFIX = ""

    def files(self, out_dir: Path, stem: str) -> dict[str, str]:
        """`<stem>.png`: the top classes written on the picture."""
        return {"picture": str(self.save(out_dir / f"{stem}.png"))}

    def records(self, *, files: dict[str, str], index: int = 0) -> list[dict[str, Any]]:
        return [{"source": self.source, "picture": files["picture"], "top_k": self.top}]

    def line(self, picture: str | None = None) -> str:
        return ", ".join(f"{t['class']} {t['score']:.3f}" for t in self.top)

    def frame_record(self) -> dict[str, Any]:
        return {"frame": self.frame, "top_k": self.top}

    @classmethod
    def video_records(cls, frames: list[dict], *, source: str, picture: str) -> tuple[list[dict], dict[str, Any]]:
        records = [{"source": source, "picture": picture, "frames": len(frames), "top_k_per_frame": frames}]
        return records, {"frames": len(frames), "line": f"{len(frames)} frames -> {picture}"}


class ClassificationInference:
    """Classification for `hrnet.Predictor`: `prepare(rgb) -> (3, S, S)` tensor, `run` -> Classification."""

    result_type = Classification
    task = "classification"

    def __init__(self, model: nn.Module, *, data: DataConfig, classes: Sequence[str], device: torch.device,
                 settings: ClassificationSettings, how: dict[str, Any] | None = None):
        self.model, self.classes, self.device, self.settings = model, list(classes), device, settings
        self.transform = build_transform(data, train=False)
        self.how = {"task": "classification", "preprocess": f"resize {data.resize_size}, centre crop {data.image_size}",
                    "flip_test": settings.flip_test, **(how or {})}

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        return self.transform(to_tensor(image))

    @torch.no_grad()
    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) -> (N, classes) softmax, flip-averaged with `flip_test`."""
        batch = batch.to(self.device)
        logits = classification_flip(self.model, batch) if self.settings.flip_test else self.model(batch)
        return logits.float().softmax(dim=1).cpu()

    def run(self, pictures: list[np.ndarray], prepared: list[torch.Tensor], names: list[str],
            **options: Any) -> list[Classification]:
        if options:
            raise ConfigError(f"classification prediction has no per-call option(s) {', '.join(options)}")
        k = min(self.settings.top_k, len(self.classes))
        scores, indices = self.probabilities(torch.stack(prepared)).topk(k, dim=1)
        return [Classification(source=name, image=picture, how=dict(self.how), names=[self.classes[i] for i in row],
                               indices=row.numpy(), scores=score.numpy())
                for name, picture, row, score in zip(names, pictures, indices, scores)]
