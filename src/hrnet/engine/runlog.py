"""What a run writes besides checkpoints: `log.jsonl` (JsonLog), running averages (Meter) and
`curves.png` (plot_curves)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

TIMING_KEYS = ("time", "rate")  # the only log fields that differ between two runs of a deterministic recipe


class Meter:
    """Sums of named values over a number of steps."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
        self.count += 1

    def averages(self) -> dict[str, float]:
        return {k: v / self.count for k, v in self.sums.items()} if self.count else {}

    def state_dict(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums, self.count = dict(state["sums"]), int(state["count"])


class JsonLog:
    """log.jsonl, written by rank 0 only; every record is flushed at once."""

    def __init__(self, path: Path, enabled: bool):
        self.path = path
        self.enabled = enabled
        self.records: list[dict[str, Any]] = []

    def load(self, keep: Any = None) -> None:
        """Read the existing log, keeping the records `keep(record)` accepts (and rewrite it so)."""
        if not self.path.is_file():
            return
        records = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        self.records = [r for r in records if keep is None or keep(r)]
        if self.enabled and len(self.records) != len(records):
            tmp = self.path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in self.records))
            os.replace(tmp, self.path)

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self.enabled:
            with self.path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
                handle.flush()


def plot_curves(records: list[dict[str, Any]], path: Path) -> None:
    """curves.png: training loss against steps, evaluation metrics against epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in records if r.get("kind") == "train"]
    epochs = [r for r in records if r.get("kind") == "epoch"]
    metrics = sorted({k for r in epochs for k in r if k.startswith("val/") and isinstance(r[k], (int, float))})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss (window)", lw=1)
    if epochs and any("train_loss" in r for r in epochs):
        ax.plot([r["step"] for r in epochs if "train_loss" in r], [r["train_loss"] for r in epochs if "train_loss" in r],
                "o-", label="train loss (epoch)")
    if any("val/loss" in r for r in epochs):
        ax.plot([r["step"] for r in epochs if "val/loss" in r], [r["val/loss"] for r in epochs if "val/loss" in r],
                "s-", label="val loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    ax = axes[1]
    for key in metrics:
        if key == "val/loss":
            continue
        points = [(r["epoch"], r[key]) for r in epochs if key in r]
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=key)
    ax.set_xlabel("epoch")
    ax.set_title("evaluation")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)
