"""Time-budgeted training (`train.time_budget_minutes`): how many optimizer steps fit the budget.

Before the first step the engine times `train.budget_probe_steps` optimizer steps (after one
untimed warm-up step; elapsed time, or this process's CPU time with `train.budget_clock:
process`) on a copy of the model and optimizer, with a batch of the real training data
(its loading time included when `train.workers` is 0, since the loop then loads serially), and
plans `floor(budget / step time)` steps. The schedule (poly, cosine, the warmup, multistep
milestones in epochs) then runs over exactly those steps. The plan is saved in every checkpoint: a
resumed run keeps it instead of measuring again (a new `time_budget_minutes` on resume is
re-planned with the saved step time). Evaluations and checkpoint writes are not in the budget.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import torch

from . import distributed as dist_utils


@dataclass(frozen=True)
class BudgetPlan:
    """`total_steps` optimizer steps of `step_seconds` each fill `minutes` of training."""

    minutes: float
    step_seconds: float
    total_steps: int
    clock: str = "wall"

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "BudgetPlan":
        return cls(minutes=float(state["minutes"]), step_seconds=float(state["step_seconds"]),
                   total_steps=int(state["total_steps"]), clock=str(state.get("clock", "wall")))


def plan_steps(minutes: float, step_seconds: float, clock: str = "wall") -> BudgetPlan:
    """The plan for a budget at a measured step time (at least one step)."""
    if step_seconds <= 0:
        raise ValueError(f"step time must be positive, got {step_seconds}")
    return BudgetPlan(minutes=minutes, step_seconds=step_seconds,
                      total_steps=max(1, math.floor(minutes * 60.0 / step_seconds)), clock=clock)


def measure_step_seconds(step: Callable[[], None], *, steps: int, device: torch.device,
                         clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds per call of `step` (one optimizer step), averaged over `steps` calls after one
    untimed warm-up call. The python, numpy and torch RNG states are restored afterwards."""
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            step()
            _sync(device)
            started = clock()
            for _ in range(steps):
                step()
            _sync(device)
            return (clock() - started) / steps
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def probe_step(run: Any) -> Callable[[], None]:
    """One optimizer step of `run`'s recipe on copies of its model and optimizer (the run is not
    touched): `accumulate` forward/backward passes of a micro-batch of real training samples."""
    from .ema import copy_model
    from .optim import build_optimizer
    from .pieces import autocast, unwrap

    config, task, device = run.config, run.task, run.device
    model = copy_model(unwrap(run.model)).train()
    optimizer = build_optimizer(model, config.optimizer, tuple(getattr(task, "head_prefixes", ("head.",))))
    dataset = run.train_loader.dataset  # SeededDataset: items (epoch, index), global RNGs untouched
    count = min(run.micro_batch, len(dataset))
    serial_loading = config.train.workers == 0

    def load() -> Any:
        return task.collate([dataset[(0, i)] for i in range(count)])

    batch = load()

    def step() -> None:
        for _ in range(config.train.accumulate):
            micro = load() if serial_loading else batch
            with autocast(device, config.train.amp):
                loss, _ = task.train_step(model, micro, device)
            (loss.float() / config.train.accumulate).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


CLOCKS = {"wall": time.perf_counter, "process": time.process_time}


def make_plan(run: Any, measure: Callable[..., float] | None = None) -> BudgetPlan:
    """Measure this machine's step time for `run` (on `train.budget_clock`) and plan its budget;
    every process gets the slowest process's step time, so all plan the same number of steps."""
    measure = measure or measure_step_seconds
    t = run.config.train
    seconds = measure(probe_step(run), steps=t.budget_probe_steps, device=run.device, clock=CLOCKS[t.budget_clock])
    seconds = max(dist_utils.all_gather_objects(float(seconds)))
    return plan_steps(float(t.time_budget_minutes), seconds, t.budget_clock)


def plan_from_checkpoint(state: dict[str, Any] | None, minutes: float) -> BudgetPlan | None:
    """The saved plan (re-planned at its step time when the budget changed), or None without one."""
    saved = (state or {}).get("budget")
    if not saved:
        return None
    plan = BudgetPlan.from_state(saved)
    return plan if plan.minutes == minutes else plan_steps(minutes, plan.step_seconds, plan.clock)


def describe(plan: BudgetPlan, steps_per_epoch: int) -> str:
    epochs = plan.total_steps / max(1, steps_per_epoch)
    clock = "" if plan.clock == "wall" else " of CPU time"
    return (f"time budget {plan.minutes:g} min{clock} at {plan.step_seconds:.3f} s/step: {plan.total_steps} steps "
            f"({epochs:.1f} epochs of {steps_per_epoch} steps)")

