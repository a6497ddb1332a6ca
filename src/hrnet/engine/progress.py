"""Progress for people watching: a tqdm bar on a terminal, else a line at a steady interval.

Without a terminal (logs, CI, nohup) a bar would write thousands of carriage-return updates or
nothing at all; `progress(..., every_seconds=60)` prints instead one line a minute, e.g.

    train epoch 3/50: 120/400 steps (30%), 1.41 s/step, eta 6m35s; run 920/20000 steps, eta 7h28m; loss 0.8123

Only the main process prints (the engine passes `enabled=False, every_seconds=0` elsewhere).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Iterable, Iterator, TextIO

from . import distributed as dist_utils


def progress_enabled(config: Any) -> bool:
    """Whether bars are shown: `train.progress`, or (None) whether stderr is a terminal; rank 0 only."""
    wanted = None if config is None else config.train.progress
    if wanted is None:
        wanted = sys.stderr.isatty()
    return bool(wanted) and dist_utils.is_main_process()


def line_interval(config: Any) -> float:
    """Seconds between progress lines: `train.progress_every_seconds` when no bar is shown, else 0."""
    if config is None or progress_enabled(config) or not dist_utils.is_main_process():
        return 0.0
    return float(config.train.progress_every_seconds)


def progress(iterable: Iterable, *, enabled: bool, total: int | None = None, desc: str = "", unit: str = "it",
             every_seconds: float = 0.0, run_done: int | None = None, run_total: int | None = None):
    """A tqdm bar (rate and ETA) when `enabled`; else, with `every_seconds` > 0, `ProgressLines`;
    else the iterable itself. `run_done` / `run_total`: the whole run's position, for its ETA."""
    if enabled:
        try:
            from tqdm.auto import tqdm
        except ImportError:  # tqdm is optional: no bars without it
            return iterable
        return tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False)
    if every_seconds > 0:
        return ProgressLines(iterable, total=total, desc=desc, unit=unit, every_seconds=every_seconds,
                             run_done=run_done, run_total=run_total)
    return iterable


def duration(seconds: float) -> str:
    """3725 -> "1h02m", 395 -> "6m35s", 42.3 -> "42s"."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def rate_text(seconds_per_item: float, unit: str) -> str:
    if seconds_per_item <= 0:
        return f"- {unit}/s"
    return f"{seconds_per_item:.2f} s/{unit}" if seconds_per_item >= 1 else f"{1 / seconds_per_item:.1f} {unit}/s"


def plural(unit: str) -> str:
    return unit + ("es" if unit.endswith(("ch", "sh", "s", "x")) else "s")


class ProgressLines:
    """Iterate `iterable`, printing a progress line to `stream` each time `every_seconds` have
    passed on `clock` since the last line (the first after `every_seconds`). `set_postfix(**values)`
    adds values to the next lines, as tqdm's does."""

    def __init__(self, iterable: Iterable, *, total: int | None, desc: str, unit: str, every_seconds: float,
                 run_done: int | None = None, run_total: int | None = None,
                 clock: Callable[[], float] = time.monotonic, stream: TextIO | None = None):
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.every, self.run_done, self.run_total = every_seconds, run_done, run_total
        self.clock, self.stream = clock, stream
        self.postfix: dict[str, Any] = {}
        self.done = 0

    def __len__(self) -> int:
        return len(self.iterable)  # type: ignore[arg-type]

    def set_postfix(self, refresh: bool = False, **values: Any) -> None:
        self.postfix = values

    def __iter__(self) -> Iterator:
        start = last = self.clock()
        for item in self.iterable:
            yield item
            self.done += 1
            now = self.clock()
            if now - last >= self.every:
                last = now
                print(self.line(now - start), file=self.stream or sys.stderr, flush=True)

    def line(self, elapsed: float) -> str:
        per_item = elapsed / max(self.done, 1)
        text = f"{self.desc}: {self.done}"
        if self.total:
            text += f"/{self.total} {plural(self.unit)} ({100 * self.done / self.total:.0f}%)"
        else:
            text += f" {plural(self.unit)}"
        text += f", {rate_text(per_item, self.unit)}"
        if self.total:
            text += f", eta {duration(per_item * (self.total - self.done))}"
        if self.run_total:
            run_done = (self.run_done or 0) + self.done
            text += (f"; run {run_done}/{self.run_total} {plural(self.unit)}, "
                     f"eta {duration(per_item * (self.run_total - run_done))}")
        if self.postfix:
            text += "; " + ", ".join(f"{k} {v}" for k, v in self.postfix.items())
        return text

    def close(self) -> None:
        pass


def summary_line(summary: dict[str, Any], out_dir: Any) -> str:
    """What `hrnet train` prints at the end: steps, epochs (complete, and the partial one when a
    step limit stopped mid-epoch), why it stopped, the best metric, the run folder."""
    step, epoch = summary["step"], summary["epoch"]
    epoch_step, per_epoch = summary.get("epoch_step", 0), summary.get("steps_per_epoch", 0)
    text = f"trained {step} step{'s' * (step != 1)}"
    if epoch_step:
        complete = f"{epoch} complete epoch{'s' * (epoch != 1)} and " if epoch else ""
        text += f" ({complete}{epoch_step} of the {per_epoch} steps of epoch {epoch + 1})"
    else:
        text += f" ({epoch} epoch{'s' * (epoch != 1)})"
    stopped = summary.get("stopped")
    if stopped == "max_steps":
        text += ", stopped by train.max_steps"
    elif stopped == "time_budget":
        text += f", the steps planned for train.time_budget_minutes {summary.get('budget_minutes'):g}"
    best = summary.get("best") or {}
    if best:
        text += f"; best {best['metric']} {best['value']:.4f} at step {best['step']} (epoch {best['epoch']})"
    return f"{text}; run in {out_dir}"
