"""What the command modules share: argument types, and choices read from a registry on first use.

argparse checks `value in choices` and lists them in `--help`; a `RegistryChoices` fetches them then,
from the one registry of the concept (e.g. `models.TASKS`), so building the command line imports
neither torch nor the models and `hrnet list` / `hrnet --help` answer at once.
"""

from __future__ import annotations

import argparse
from typing import Callable, Iterable, Iterator, Sequence


def parse_size(text: str) -> tuple[int, int]:
    """An `HxW` argument (e.g. 256x192) -> (height, width), both positive."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--input must look like HxW (e.g. 224x224), got {text!r}") from None
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"--input {text}: height and width must be positive")
    return height, width


class RegistryChoices(Sequence[str]):
    def __init__(self, load: Callable[[], Iterable[str]]):
        self._load = load
        self._items: tuple[str, ...] | None = None

    @property
    def items(self) -> tuple[str, ...]:
        if self._items is None:
            self._items = tuple(self._load())
        return self._items

    def __getitem__(self, index):  # type: ignore[override]
        return self.items[index]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.items)

    def __contains__(self, value: object) -> bool:
        return value in self.items


def model_tasks(*, include_backbone: bool = True) -> RegistryChoices:
    """`models.TASKS` (the tasks `create_model` builds)."""
    def load() -> Sequence[str]:
        from .models import TASKS

        return [t for t in TASKS if include_backbone or t != "backbone"]

    return RegistryChoices(load)


def head_options() -> RegistryChoices:
    """Every non-default `head=` of `models.HEADS` (e.g. "ocr")."""
    def load() -> Sequence[str]:
        from .models import HEADS

        return sorted({name for heads in HEADS.values() for name in heads if name is not None})

    return RegistryChoices(load)
