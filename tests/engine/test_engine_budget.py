"""Time-budgeted training: the step-time measurement (fake clock), the plan, the schedule over the
planned steps (injected step time), and a resumed run keeping its plan."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from hrnet.engine import budget, fit, load_config, load_run_checkpoint
from hrnet.engine.testing import tiny_classification_recipe, write_recipe


def test_measure_step_seconds_with_a_fake_clock_restores_the_rngs():
    calls, times = [], iter([100.0, 103.0])

    def step():
        calls.append(1)
        torch.rand(3), np.random.rand(), random.random()  # a step that draws from every RNG

    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    seconds = budget.measure_step_seconds(step, steps=4, device=torch.device("cpu"), clock=lambda: next(times))
    assert seconds == 0.75 and len(calls) == 5  # one warm-up call, untimed
    after = (torch.rand(1).item(), np.random.rand(), random.random())
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    assert after == (torch.rand(1).item(), np.random.rand(), random.random())


def test_plan_fills_the_budget():
    plan = budget.plan_steps(2.0, 0.7)
    assert plan.total_steps == 171 and plan.total_steps * 0.7 <= 120 < (plan.total_steps + 1) * 0.7
    assert budget.plan_steps(0.001, 5.0).total_steps == 1
    assert budget.BudgetPlan.from_state(plan.state_dict()) == plan
    assert budget.plan_from_checkpoint({"budget": plan.state_dict()}, 2.0) == plan
    assert budget.plan_from_checkpoint({"budget": plan.state_dict()}, 4.0).total_steps == 342  # saved step time
    assert budget.plan_from_checkpoint({}, 2.0) is None


def _lrs(run_dir):
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [r["lr"] for r in records if r["kind"] == "train"]


def _recipe(tmp_path, stripes, **train):
    recipe = tiny_classification_recipe(*stripes, schedule={"name": "poly", "power": 0.9},
                                        train={"time_budget_minutes": 0.1, **train}, eval={"every": 2})
    return write_recipe(tmp_path / "r.yaml", recipe)


def test_the_schedule_runs_over_the_budget(tmp_path, stripes, monkeypatch):
    seen = {}

    def fake_measure(step, *, steps, device, clock):
        seen["steps"], seen["clock"] = steps, clock
        return 0.5  # 0.1 minutes = 6 s at 0.5 s per step: 12 steps

    monkeypatch.setattr(budget, "measure_step_seconds", fake_measure)
    summary = fit(load_config(_recipe(tmp_path, stripes, budget_probe_steps=2)), tmp_path / "run")
    assert seen["steps"] == 2
    assert summary["step"] == 12 and summary["stopped"] == "time_budget"
    assert summary["epoch"] == 4  # 24 images, batch 8: 3 steps an epoch; train.epochs (2) is ignored
    assert _lrs(tmp_path / "run") == pytest.approx([0.01 * (1 - i / 12) ** 0.9 for i in range(12)])
    saved = load_run_checkpoint(tmp_path / "run" / "last.pth")["budget"]
    assert saved == {"minutes": 0.1, "step_seconds": 0.5, "total_steps": 12, "clock": "wall"}
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3, 4] and "val/top1" in epochs[-1]  # the last epoch evaluates


def test_resume_keeps_the_plan(tmp_path, stripes, monkeypatch):
    monkeypatch.setattr(budget, "measure_step_seconds", lambda step, **kwargs: 0.5)
    path = _recipe(tmp_path, stripes)
    first = fit(load_config(path, ["train.max_steps=5"]), tmp_path / "run")
    assert first["step"] == 5 and first["stopped"] == "max_steps"

    def refuse(*args, **kwargs):
        raise AssertionError("a resumed run measured the step time again")

    monkeypatch.setattr(budget, "measure_step_seconds", refuse)
    summary = fit(load_config(path), tmp_path / "run", resume=True)
    assert summary["step"] == 12 and summary["budget"]["total_steps"] == 12
    assert _lrs(tmp_path / "run") == pytest.approx([0.01 * (1 - i / 12) ** 0.9 for i in range(12)])


def test_process_clock_plans_on_cpu_time(tmp_path, stripes, monkeypatch):
    seen = {}

    def fake_measure(step, *, steps, device, clock):
        seen["clock"] = clock
        return 1.0

    monkeypatch.setattr(budget, "measure_step_seconds", fake_measure)
    config = load_config(_recipe(tmp_path, stripes, budget_clock="process"), ["train.max_steps=1"])
    summary = fit(config, tmp_path / "run")
    assert seen["clock"] is budget.CLOCKS["process"] and summary["budget"]["clock"] == "process"


def test_the_real_probe_times_real_steps(tmp_path, stripes):
    """Without an injected time: a positive step time, and the run itself unchanged by the probe."""
    path = _recipe(tmp_path, stripes)
    budgeted = fit(load_config(path, ["train.max_steps=2", "schedule.name=constant"]), tmp_path / "a")
    plain = fit(load_config(path, ["train.max_steps=2", "schedule.name=constant", "train.time_budget_minutes=null"]),
                tmp_path / "b")
    assert budgeted["budget"]["step_seconds"] > 0 and plain["budget"] is None
    a = load_run_checkpoint(tmp_path / "a" / "last.pth")["model"]
    b = load_run_checkpoint(tmp_path / "b" / "last.pth")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
