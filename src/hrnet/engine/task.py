"""The contract between the training engine and a task (classification, pose, segmentation, detection).

The engine (`hrnet.engine`) owns everything generic: recipes, the process group and DDP, the
sampler and loaders, optimizer, schedule, AMP, accumulation, clipping, checkpoints, logs, plots and
progress bars. A task owns what is specific: its data section, model, datasets, loss, evaluation
and prediction. Tasks register themselves in `hrnet.tasks.TASKS` (a dict from name to class).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
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

    def inference_settings(self) -> Any:
        """The task's typed inference settings from the recipe (a frozen dataclass), shared by its
        evaluator and by prediction, so `hrnet eval` and `hrnet predict` decode alike."""

    def inference(self, model: nn.Module, *, device: torch.device, **options: Any) -> "TaskInference":
        """The prediction side (`hrnet.Predictor` drives it): `inference_settings()` with `options`
        replaced by name (see `replace_settings`; unknown names raise)."""


class TaskInference(Protocol):
    """A task's prediction: `prepare` runs per picture in DataLoader workers (CPU: resize, normalise),
    `run` does the batched forward and returns one typed result (`hrnet.inference.results.Result`)
    per picture. Pictures are RGB uint8 (H, W, 3), as displayed; results are in their pixels."""

    task: str
    how: dict[str, Any]  # the settings that produce the results (recorded in each result's `how`)

    def prepare(self, image: Any) -> Any: ...

    def run(self, pictures: list[Any], prepared: list[Any], names: list[str], **options: Any) -> list[Any]: ...


@dataclass
class Prediction:
    """What `hrnet predict` reports for one input (an image or a video): the files it wrote."""

    source: str
    outputs: dict[str, Any]
    picture: str | None = None  # path of the picture written for a person to look at


def replace_settings(settings: Any, options: dict[str, Any], task: str) -> Any:
    """`settings` (a dataclass) with the fields named in `options` replaced; an unknown name is a
    ConfigError listing the known ones, a bad value the dataclass's own error."""
    from ..errors import ConfigError

    known = [f.name for f in dataclasses.fields(settings)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"unknown {task} option(s) {', '.join(unknown)}; known: {', '.join(known)}")
    try:
        return dataclasses.replace(settings, **options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{task} options: {error}") from None
