"""The contract between the training engine and a task (classification, pose, segmentation, detection).

The engine (`hrnet.engine`) owns everything generic: recipes, the process group and DDP, the
sampler and loaders, optimizer, schedule, AMP, accumulation, clipping, checkpoints, logs, plots and
progress bars. A task owns what is specific: its data section, model, datasets, loss, evaluation
and prediction. Tasks register themselves in `hrnet.tasks.TASKS` (a dict from name to class).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset


class Evaluator(Protocol):
    """Accumulates a metric over batches; under DDP each rank sees its shard of the data."""

    main_metric: str  # key of compute() used to pick the `best` checkpoint
    higher_is_better: bool

    def update(self, model: nn.Module, batch: Any) -> None:
        """Run `model` (already in eval mode, under torch.no_grad) on `batch` and accumulate."""

    def synchronize(self) -> None:
        """Reduce the accumulated state across ranks (no-op without a process group)."""

    def compute(self) -> dict[str, float]:
        """The metrics (call after synchronize); every rank gets the same numbers."""


class Task(Protocol):
    name: ClassVar[str]
    # Dataclass for the recipe's `data:` section (unknown keys are errors, as elsewhere).
    DataConfig: ClassVar[type]

    def __init__(self, config: Any) -> None:
        """`config` is the whole resolved run config (`config.data` is a DataConfig instance)."""

    def build_model(self) -> nn.Module: ...

    def build_dataset(self, split: str) -> Dataset:
        """split: "train" or "val"."""

    def collate(self, samples: list[Any]) -> Any:
        """Batch samples (torch's default_collate unless the task needs otherwise)."""

    def train_step(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        """Move `batch` to `device`, forward in training mode, return (loss, parts to log)."""

    def make_evaluator(self, device: torch.device) -> Evaluator: ...

    def predict(self, model: nn.Module, inputs: list[Path], out_dir: Path, **options: Any) -> list["Prediction"]:
        """`hrnet predict`: run on images, folders (already expanded) and videos; write pictures
        (PNG per image, MP4 per video) and a results file into `out_dir`."""


@dataclass
class Prediction:
    """What `hrnet predict` returns for one input image (a task may add fields in `extra`)."""

    source: str
    outputs: dict[str, Any]
    picture: str | None = None  # path of the picture written for a person to look at
