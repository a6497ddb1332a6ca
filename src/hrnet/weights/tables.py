"""Tables of the registry: the README's "Pretrained weights" table and the `hrnet weights list` one."""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from .entry import Weights
from .registry import all_weights

TASK_ORDER = ("classification", "pose", "bottom_up_pose", "segmentation", "detection")
README_COLUMNS = ("arch", "tag", "task", "metric", "source", "licence")


def _arch_rank(arch: str) -> tuple[int, str]:
    from ..spec import VARIANTS

    order = list(VARIANTS)
    return (order.index(arch), arch) if arch in order else (len(order), arch)


def sorted_entries(entries: Iterable[Weights]) -> list[Weights]:
    """By task, then architecture (registry order), source and tag: the order a reader chooses in."""
    def key(w: Weights) -> tuple:
        task = TASK_ORDER.index(w.task) if w.task in TASK_ORDER else len(TASK_ORDER)
        return task, _arch_rank(w.arch), w.source, _natural(w.tag)
    return sorted(entries, key=key)


def _natural(text: str) -> tuple:
    """Digits compare as numbers: 40k before 160k."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def task_label(w: Weights) -> str:
    """The task with its head where it has one ("segmentation (ocr)"), and "pending" when unavailable."""
    parts = [h for h in (w.head,) if h is not None]
    if not w.available:
        parts.append("pending")
    return w.task + (f" ({', '.join(parts)})" if parts else "")


def metric_label(w: Weights) -> str:
    return str(w.metric) if w.metric is not None else "-"


def readme_table(entries: Sequence[Weights] | None = None) -> str:
    """The Markdown table of the README's "Pretrained weights" section (arch, tag, task, metric,
    source, licence), one row per registered entry; the README must contain exactly this text."""
    rows = [README_COLUMNS, ("---",) * len(README_COLUMNS)]
    for w in sorted_entries(all_weights() if entries is None else entries):
        rows.append((f"`{w.arch}`", f"`{w.tag}`", task_label(w), metric_label(w), w.source, w.licence))
    return "\n".join("| " + " | ".join(row) + " |" for row in rows) + "\n"


def text_table(entries: Sequence[Weights]) -> str:
    """Aligned plain-text columns for the terminal: name, task, headline metric, source, download."""
    header = ("name", "task", "metric", "source", "download", "licence")
    rows = [header] + [(w.name, task_label(w), metric_label(w), w.source,
                        "cached" if w.cache_path.is_file() else ("direct" if w.direct else "manual"), w.licence)
                       for w in sorted_entries(entries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
