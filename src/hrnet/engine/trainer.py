"""The training loop: `fit` drives a Task through epochs; `train_one_epoch` and `evaluate` are the
plain pieces it is made of.

A run directory holds `config.yaml` (the resolved recipe), `log.jsonl` (one JSON object a line:
kind "train" every `train.log_every` steps, kind "epoch" after each epoch with the averages and the
evaluation metrics prefixed "val/", and how they were obtained under "val_how"), `last.pth` and
`best.pth` (written atomically) and `curves.png`. Timing fields of the log (`time`, `rate`) are
the only ones that differ between two runs of a deterministic recipe.

No lost work: `last.pth` is written before every evaluation (an evaluation that fails, or a
Ctrl-C during it, costs no training; the resumed run evaluates again), on Ctrl-C after the step
in progress (see `interrupt.py`), every `train.checkpoint_every` steps and after every epoch.
With `train.ema` the averaged weights are what is evaluated and what `model` holds in both
checkpoints; `last.pth` also keeps the trained weights, so a resumed run continues exactly.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..checkpoints import save_atomic
from ..errors import ConfigError
from . import budget as budget_utils
from . import distributed as dist_utils
from . import interrupt
from .config import RunConfig, config_to_dict, dump_config
from .ema import ModelEma
from .interrupt import TrainingInterrupted
from .optim import build_optimizer, build_scheduler
from .pieces import (autocast, contiguous_state, enable_grad_checkpointing, model_spec, rng_state,  # noqa: F401
                     seed_everything, set_rng_state, to_channels_last, unwrap)
from .progress import line_interval, progress, progress_enabled
from .runlog import JsonLog, Meter, plot_curves
from .runs import CHECKPOINT_FORMAT, load_run_checkpoint

log = logging.getLogger("hrnet")
# Files a killed save leaves behind (save_atomic's temporaries, the log and plot rewrites).
STALE_PATTERNS = (".last.pth.*.tmp", ".best.pth.*.tmp", ".curves.png.tmp.png", "log.jsonl.tmp")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says which step and which checkpoint is good."""


# ----------------------------------------------------------------------------- the run


@dataclass
class Run:
    """Everything a training run holds; built by `prepare`, driven by `fit`."""

    config: RunConfig
    task: Any
    device: torch.device
    model: nn.Module  # DDP-wrapped under a process group
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    train_loader: DataLoader
    val_loader: DataLoader | None
    out_dir: Path
    micro_batch: int
    steps_per_epoch: int
    epoch: int = 0  # the epoch in progress (or next to start)
    epoch_step: int = 0  # optimizer steps done inside it
    step: int = 0  # optimizer steps done in all
    best: dict[str, Any] = field(default_factory=dict)
    epoch_meter: Meter = field(default_factory=Meter)
    window_meter: Meter = field(default_factory=Meter)
    log: JsonLog | None = None
    show_progress: bool = False
    lines_every: float = 0.0  # seconds between progress lines (no bars), 0: none
    ema: ModelEma | None = None
    plan: budget_utils.BudgetPlan | None = None
    epoch_end_pending: bool = False  # the epoch's steps are done and saved, its end (evaluation, log) not yet
    saved_step: int | None = None  # the step of the newest last.pth
    window_start: float = field(default_factory=time.time)
    started: float = field(default_factory=time.time)

    @property
    def is_main(self) -> bool:
        return dist_utils.is_main_process()

    @property
    def step_limit(self) -> int | None:
        """The last step of the run: the budget's plan or train.max_steps (None: train.epochs decides)."""
        limits = [self.plan.total_steps] if self.plan is not None else []
        if self.config.train.max_steps > 0:
            limits.append(self.config.train.max_steps)
        return min(limits) if limits else None

    @property
    def total_epochs(self) -> int:
        if self.plan is not None:
            return max(1, math.ceil(self.plan.total_steps / max(1, self.steps_per_epoch)))
        return self.config.train.epochs

    @property
    def finished(self) -> bool:
        limit = self.step_limit
        return self.epoch >= self.total_epochs or (limit is not None and self.step >= limit)

    @property
    def eval_model(self) -> nn.Module:
        """What is evaluated and saved as `model`: the average with train.ema, else the model."""
        return self.ema.module if self.ema is not None else unwrap(self.model)

    def stop_reason(self) -> str:
        max_steps = self.config.train.max_steps
        if max_steps > 0 and self.step >= max_steps and (self.plan is None or max_steps < self.plan.total_steps):
            return "max_steps"
        return "time_budget" if self.plan is not None else "epochs"

    # ---- checkpoints

    def checkpoint(self, metrics: dict[str, float] | None = None) -> dict[str, Any]:
        state = {
            "format": CHECKPOINT_FORMAT,
            "task": self.config.task,
            "model": contiguous_state(self.eval_model.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "epoch": self.epoch,
            "epoch_step": self.epoch_step,
            "step": self.step,
            "epoch_end_pending": self.epoch_end_pending,
            "best": dict(self.best),
            "metrics": dict(metrics or {}),
            "meters": {"epoch": self.epoch_meter.state_dict(), "window": self.window_meter.state_dict()},
            "rng": rng_state(),
            "spec": model_spec(unwrap(self.model)),
            "config": config_to_dict(self.config),
        }
        if self.ema is not None:
            state["ema"] = {**self.ema.state_dict(), "trained_model": contiguous_state(unwrap(self.model).state_dict())}
        if self.plan is not None:
            state["budget"] = self.plan.state_dict()
        return state

    def save(self, name: str, metrics: dict[str, float] | None = None) -> None:
        if self.is_main:
            save_atomic(self.checkpoint(metrics), self.out_dir / f"{name}.pth")
        if name == "last":
            self.saved_step = self.step
        dist_utils.barrier()

    def restore(self, state: dict[str, Any]) -> None:
        averaged = state.get("ema")
        unwrap(self.model).load_state_dict(averaged["trained_model"] if averaged else state["model"])
        if self.ema is not None:
            if averaged:
                self.ema.load(state["model"], averaged)
            else:  # the first update copies the model (decay 0), so the average starts here
                self.ema.updates = 0
                log.warning("train.ema is on but the checkpoint holds no average: it starts at step %d",
                            int(state["step"]))
        self.optimizer.load_state_dict(state["optimizer"])
        self._restore_schedule(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.epoch_step, self.step = int(state["epoch"]), int(state["epoch_step"]), int(state["step"])
        self.epoch_end_pending = bool(state.get("epoch_end_pending", False))
        self.saved_step = self.step
        self.best = dict(state.get("best") or {})
        self.epoch_meter.load_state_dict(state["meters"]["epoch"])
        self.window_meter.load_state_dict(state["meters"]["window"])
        set_rng_state(state["rng"])

    def _restore_schedule(self, saved: dict[str, Any]) -> None:
        # The schedule's shape comes from this run's config (a resumed run may extend train.epochs);
        # only its position comes from the checkpoint.
        shapes = [dict(f.__dict__) for f in self.scheduler.lr_lambdas]
        base_lrs = list(self.scheduler.base_lrs)
        self.scheduler.load_state_dict(saved)
        self.scheduler.base_lrs = base_lrs
        for factor, shape in zip(self.scheduler.lr_lambdas, shapes):
            factor.__dict__.update(shape)
        for group, base, factor in zip(self.optimizer.param_groups, self.scheduler.base_lrs,
                                       self.scheduler.lr_lambdas):
            group["lr"] = base * factor(self.scheduler.last_epoch)


def _loader(task: Any, dataset: Any, *, batch_size: int, shuffle: bool, drop_last: bool, config: RunConfig,
            device: torch.device) -> DataLoader:
    workers = config.train.workers
    sampler = dist_utils.EpochSampler(len(dataset), shuffle=shuffle, seed=config.train.seed, drop_last=drop_last)
    generator = torch.Generator()
    generator.manual_seed(config.train.seed)
    return DataLoader(
        dist_utils.SeededDataset(dataset, config.train.seed), batch_size=batch_size, sampler=sampler,
        num_workers=workers, collate_fn=task.collate, pin_memory=device.type == "cuda", drop_last=drop_last,
        persistent_workers=workers > 0, generator=generator,
        worker_init_fn=interrupt.ignore_sigint_in_worker if workers > 0 else None,
    )


def build_loader(task: Any, config: RunConfig, split: str, device: torch.device) -> tuple[DataLoader, int]:
    """The loader of `split` ("train" or "val") for this process and its per-process batch size."""
    world = dist_utils.world_size()
    train = split == "train"
    if train:
        total, accumulate = config.train.batch_size, config.train.accumulate
        if total % (world * accumulate):
            raise ValueError(f"train.batch_size {total} must be divisible by processes ({world}) x "
                             f"train.accumulate ({accumulate})")
        batch = total // (world * accumulate)
    else:
        batch = max(1, (config.eval.batch_size or config.train.batch_size) // world)
    dataset = task.build_dataset(split)
    if train and len(dataset) < batch * world * config.train.accumulate:
        raise ValueError(f"the {split} set has {len(dataset)} samples, fewer than one batch of "
                         f"{config.train.batch_size}: lower train.batch_size")
    return _loader(task, dataset, batch_size=batch, shuffle=train, drop_last=train, config=config,
                   device=device), batch


def prepare_model(task: Any, config: RunConfig, device: torch.device) -> nn.Module:
    """The task's model on `device`: activation checkpointing, channels-last weights, SyncBatchNorm
    and DDP as configured."""
    model = task.build_model()
    if config.model.grad_checkpointing and not enable_grad_checkpointing(model):
        log.warning("model.grad_checkpointing: the model holds no HRNet backbone; ignored")
    model.to(device)
    if config.train.channels_last:
        model.to(memory_format=torch.channels_last)
    if dist_utils.world_size() > 1:
        if config.model.sync_bn:
            model = dist_utils.convert_sync_batchnorm(model, device)
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None,
            find_unused_parameters=bool(getattr(task, "find_unused_parameters", False)))
    return model


def check_run_dir(out_dir: Path, *, resume: bool) -> Path | None:
    """The last.pth to resume from (None for a new run), after refusing what would lose work:
    --resume without a last.pth, or a new run over an earlier one's checkpoints. Removes the
    temporary files of a save that was killed."""
    last, best = out_dir / "last.pth", out_dir / "best.pth"
    if resume and not last.is_file():
        had_best = f" (it has {best.name} but no {last.name})" if best.is_file() else ""
        raise ConfigError(f"--resume: {out_dir} holds no last.pth{had_best}, so there is nothing to resume; "
                          "check --out-dir, or run without --resume to start a new run")
    if not resume and last.exists():
        raise ConfigError(f"{out_dir} already holds a run ({last}); pass --resume to continue it or choose "
                          "another --out-dir")
    if not resume and best.exists():
        raise ConfigError(f"{out_dir} already holds {best.name} of an earlier run but no last.pth to resume from; "
                          f"choose another --out-dir, or move {best} away to start a new run there")
    if dist_utils.is_main_process() and out_dir.is_dir():
        stale = [p for pattern in STALE_PATTERNS for p in out_dir.glob(pattern)]
        for path in stale:
            path.unlink(missing_ok=True)
        if stale:
            log.warning("removed %d temporary file(s) of an interrupted save in %s", len(stale), out_dir)
    return last if resume else None


def prepare(config: RunConfig, out_dir: str | os.PathLike, *, resume: bool = False) -> Run:
    """Build the task, model, loaders (both data sets checked), optimizer, schedule (over the time
    budget's plan, if any) and run directory (process group already up)."""
    from ..tasks import get_task

    t = config.train
    device = dist_utils.resolve_device(t.device)
    if t.amp == "fp16" and device.type != "cuda":
        raise ValueError("train.amp=fp16 needs a CUDA device; on CPU use train.amp=bf16")
    seed_everything(t.seed, t.deterministic)
    out_dir = Path(out_dir)
    last = check_run_dir(out_dir, resume=resume)
    state = load_run_checkpoint(last) if last is not None else None
    task = get_task(config.task)(config)
    train_loader, micro_batch = build_loader(task, config, "train", device)
    val_loader = None
    if config.eval.every > 0:
        val_loader = build_loader(task, config, "val", device)[0]
        task.make_evaluator(device)  # reads and checks what evaluation reads (e.g. a COCO json) before step 1
    model = prepare_model(task, config, device)
    head_prefixes = tuple(getattr(task, "head_prefixes", ("head.",)))
    ema = ModelEma(unwrap(model), decay=t.ema.decay, warmup=t.ema.warmup, warmup_power=t.ema.warmup_power,
                   buffers=t.ema.buffers) if t.ema is not None else None
    run = Run(config=config, task=task, device=device, model=model,
              optimizer=build_optimizer(unwrap(model), config.optimizer, head_prefixes), scheduler=None,
              scaler=torch.amp.GradScaler(device.type, enabled=True) if t.amp == "fp16" else None,
              train_loader=train_loader, val_loader=val_loader, out_dir=out_dir, micro_batch=micro_batch,
              steps_per_epoch=len(train_loader) // t.accumulate, show_progress=progress_enabled(config),
              lines_every=line_interval(config), ema=ema)
    run.plan = _plan_budget(run, state)
    run.scheduler = build_scheduler(run.optimizer, config.schedule, run.steps_per_epoch, t.epochs,
                                    run.plan.total_steps if run.plan is not None else None)
    run.log = JsonLog(out_dir / "log.jsonl", enabled=run.is_main)
    if state is not None:
        run.restore(state)
        completed = run.epoch
        # Drop what was logged after the checkpoint: the resumed run writes it again.
        run.log.load(lambda r: r.get("step", 0) <= run.step if r.get("kind") == "train"
                     else r.get("epoch", 0) <= completed)
        if run.is_main:
            log.warning("resumed %s at epoch %d, step %d", last, run.epoch, run.step)
    elif run.is_main:
        (out_dir / "log.jsonl").unlink(missing_ok=True)
    if run.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(dump_config(config))
    dist_utils.barrier()
    return run


def _plan_budget(run: Run, state: dict[str, Any] | None) -> budget_utils.BudgetPlan | None:
    """The time budget's plan: from the checkpoint when resuming, else measured now."""
    minutes = run.config.train.time_budget_minutes
    if minutes is None:
        return None
    plan = budget_utils.plan_from_checkpoint(state, minutes)
    if plan is None:
        plan = budget_utils.make_plan(run)
    if run.is_main:
        print(budget_utils.describe(plan, run.steps_per_epoch), file=sys.stderr, flush=True)
    return plan


# ----------------------------------------------------------------------------- loops


def train_one_epoch(run: Run) -> dict[str, float]:
    """Train `run.epoch` from `run.epoch_step` to its end (or the run's step limit); returns the
    epoch's averages (reduced across processes). Raises TrainingDiverged on a NaN/inf loss and
    TrainingInterrupted (after saving last.pth) on Ctrl-C."""
    t = run.config.train
    sampler: dist_utils.EpochSampler = run.train_loader.sampler
    sampler.set_epoch(run.epoch, skip=run.epoch_step * t.accumulate * run.micro_batch)
    run.model.train()
    steps = run.steps_per_epoch - run.epoch_step
    if run.step_limit is not None:
        steps = max(0, min(steps, run.step_limit - run.step))
    batches = iter(run.train_loader)
    run_total = run.step_limit or run.total_epochs * run.steps_per_epoch
    bar = progress(range(steps), enabled=run.show_progress, total=steps, unit="step",
                   desc=f"train epoch {run.epoch + 1}/{run.total_epochs}", every_seconds=run.lines_every,
                   run_done=run.step, run_total=run_total)
    with interrupt.deferred():
        for _ in bar:
            values, lr, stop = _optimizer_step(run, batches)
            run.epoch_meter.add(values)
            run.window_meter.add(values)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{values['loss']:.4f}", lr=f"{lr:.3g}", refresh=False)
            if run.step % t.log_every == 0:
                _log_window(run, lr)
            if stop:
                _stop_interrupted(run)
            if t.checkpoint_every and run.step % t.checkpoint_every == 0 and run.epoch_step < run.steps_per_epoch:
                run.save("last")
    if hasattr(bar, "close"):
        bar.close()
    return run.epoch_meter.averages()


def _optimizer_step(run: Run, batches: Any) -> tuple[dict[str, float], float, bool]:
    """One optimizer step (accumulated micro-steps, clipping, AMP, EMA): (logged values, lr, stop)
    where stop says that a Ctrl-C arrived on some process."""
    t, model, device = run.config.train, run.model, run.device
    is_ddp = isinstance(model, nn.parallel.DistributedDataParallel)
    loss_sum = torch.zeros((), device=device)
    part_sums: dict[str, float] = {}
    for micro in range(t.accumulate):
        batch = next(batches)
        batch = to_channels_last(batch) if t.channels_last else batch
        sync = micro == t.accumulate - 1
        with (contextlib.nullcontext() if sync or not is_ddp else model.no_sync()):
            with autocast(device, t.amp):
                loss, parts = run.task.train_step(model, batch, device)
            scaled = loss.float() / t.accumulate
            (run.scaler.scale(scaled) if run.scaler is not None else scaled).backward()
        loss_sum += loss.detach().float()
        for key, value in parts.items():
            part_sums[key] = part_sums.get(key, 0.0) + float(value)
    keys = sorted(part_sums)
    stats = torch.stack([loss_sum / t.accumulate, (~torch.isfinite(loss_sum)).float(),
                         torch.tensor(float(interrupt.requested()), device=device),
                         *[torch.tensor(part_sums[k] / t.accumulate, device=device) for k in keys]]).float()
    distributed = dist_utils.is_distributed()
    stats = dist_utils.all_reduce_sum(stats) if distributed else stats
    world = dist_utils.world_size()
    if stats[1].item() > 0:
        _diverged(run)
    if t.clip_grad_norm is not None:
        if run.scaler is not None:
            run.scaler.unscale_(run.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(unwrap(model).parameters(), t.clip_grad_norm)
        if run.scaler is None and not torch.isfinite(norm):
            _diverged(run, what="gradient norm")
    if run.scaler is not None:
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    if run.ema is not None:
        run.ema.update(unwrap(model))
    lr = run.optimizer.param_groups[0]["lr"] / run.optimizer.param_groups[0].get("lr_mult", 1.0)
    run.scheduler.step()
    run.step += 1
    run.epoch_step += 1
    values = {"loss": stats[0].item() / world, **{k: stats[3 + i].item() / world for i, k in enumerate(keys)}}
    # Under DDP every process must stop at the same step: the reduced flag decides.
    stop = stats[2].item() > 0 if distributed else interrupt.requested()
    return values, lr, stop


def _log_window(run: Run, lr: float) -> None:
    now = time.time()
    samples = run.window_meter.count * run.config.train.batch_size
    run.log.write({"kind": "train", "epoch": run.epoch + 1, "step": run.step, "lr": lr,
                   **run.window_meter.averages(), "time": round(now - run.started, 3),
                   "rate": round(samples / max(now - run.window_start, 1e-9), 2)})
    run.window_meter = Meter()
    run.window_start = now


def resume_hint(out_dir: Path) -> str:
    return f"resume with: hrnet train --resume --out-dir {out_dir}"


def _stop_interrupted(run: Run) -> None:
    limit = run.step_limit
    run.epoch_end_pending = run.epoch_step >= run.steps_per_epoch or (limit is not None and run.step >= limit)
    run.save("last")
    last = run.out_dir / "last.pth"
    raise TrainingInterrupted(
        f"interrupted at step {run.step} (step {run.epoch_step} of {run.steps_per_epoch} of epoch {run.epoch + 1}); "
        f"saved {last}; {resume_hint(run.out_dir)}", last)


def _diverged(run: Run, what: str = "loss") -> None:
    last = run.out_dir / "last.pth"
    kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written yet"
    raise TrainingDiverged(
        f"{what} became NaN or infinite at epoch {run.epoch + 1}, step {run.step + 1}; training stopped and "
        f"{kept} (not overwritten). Lower optimizer.lr, set train.clip_grad_norm, add warmup "
        "(schedule.warmup_epochs) or use train.amp=bf16/none."
    )


def evaluate(model: nn.Module, task: Any, loader: Iterable, device: torch.device, *, amp: str = "none",
             show_progress: bool = False, evaluator: Any = None, every_seconds: float = 0.0) -> dict[str, float]:
    """The task's metrics of `model` over `loader` (each process its shard, then reduced).
    `evaluator`: a fresh `task.make_evaluator(device)` unless given (its `how`, when it has one,
    says how the numbers were obtained). `every_seconds`: progress lines without a bar."""
    model = unwrap(model)
    was_training = model.training
    model.eval()
    evaluator = evaluator if evaluator is not None else task.make_evaluator(device)
    total = len(loader) if hasattr(loader, "__len__") else None
    with torch.no_grad(), autocast(device, amp):
        for batch in progress(loader, enabled=show_progress, total=total, desc="eval", unit="batch",
                              every_seconds=every_seconds):
            evaluator.update(model, batch)
    evaluator.synchronize()
    metrics = {k: float(v) for k, v in evaluator.compute().items()}
    model.train(was_training)
    return metrics


def _evaluate_run(run: Run) -> tuple[Any, dict[str, float]]:
    config = run.config
    if run.ema is not None:
        run.ema.synchronize()
    evaluator = run.task.make_evaluator(run.device)
    try:
        metrics = evaluate(run.eval_model, run.task, run.val_loader, run.device, evaluator=evaluator,
                           amp=config.train.amp if config.eval.amp else "none", show_progress=run.show_progress,
                           every_seconds=run.lines_every)
    except Exception:
        if run.is_main:
            log.warning("evaluation of epoch %d failed; %s holds the training up to step %d (saved before the "
                        "evaluation): fix the problem, then %s", run.epoch + 1, run.out_dir / "last.pth", run.step,
                        resume_hint(run.out_dir))
        raise
    return evaluator, metrics


def _end_of_epoch(run: Run) -> None:
    """Evaluate (when due), log, pick best, advance the epoch, save best and last. `last.pth` is
    written first when an evaluation is due, so that an evaluation failure never costs training."""
    config = run.config
    train_metrics = run.epoch_meter.averages()
    epoch_done = run.epoch_step >= run.steps_per_epoch
    limit = run.step_limit
    last_epoch = run.epoch + 1 >= run.total_epochs or (limit is not None and run.step >= limit)
    evaluating = run.val_loader is not None and ((run.epoch + 1) % config.eval.every == 0 or last_epoch)
    if evaluating and not run.epoch_end_pending:
        run.epoch_end_pending = True
        run.save("last")
    metrics: dict[str, float] = {}
    evaluator = None
    if evaluating:
        evaluator, metrics = _evaluate_run(run)
    record = {"kind": "epoch", "epoch": run.epoch + 1, "step": run.step,
              **{f"train_{k}": v for k, v in train_metrics.items()},
              **{f"val/{k}": v for k, v in metrics.items()}}
    improved = False
    if evaluator is not None:
        if getattr(evaluator, "how", None):
            record["val_how"] = {k: v for k, v in evaluator.how.items() if k != "summary"}
        improved = _update_best(run, evaluator, metrics)
        record["best"] = run.best.get("value")
    record["time"] = round(time.time() - run.started, 3)
    run.log.write(record)
    run.epoch_end_pending = False
    if epoch_done:
        run.epoch += 1
        run.epoch_step = 0
        run.epoch_meter = Meter()
    if improved:
        run.save("best", metrics)
    run.save("last", metrics)
    if run.is_main and config.train.plot:
        plot_curves(run.log.records, run.out_dir / "curves.png")
    if run.is_main:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in record.items() if isinstance(v, float) and k != "time")
        print(f"epoch {record['epoch']}/{run.total_epochs}: {shown}", file=sys.stderr, flush=True)


def _update_best(run: Run, evaluator: Any, metrics: dict[str, float]) -> bool:
    key, higher = evaluator.main_metric, evaluator.higher_is_better
    value = metrics.get(key)
    if value is None or not math.isfinite(value):
        return False
    best = run.best.get("value")
    if best is None or (value > best if higher else value < best):
        run.best = {"metric": key, "value": value, "epoch": run.epoch + 1, "step": run.step}
        return True
    return False


def _interrupted(error: KeyboardInterrupt, run: Run | None, out_dir: Path) -> TrainingInterrupted:
    """A Ctrl-C outside the training steps, as a TrainingInterrupted saying what is saved."""
    if isinstance(error, TrainingInterrupted):
        return error
    last = out_dir / "last.pth"
    if run is None or run.saved_step is None:
        kept = f"{last} is unchanged" if last.exists() else "nothing was saved"
        return TrainingInterrupted(f"interrupted before the first training step; {kept}", None)
    if run.epoch_end_pending:
        return TrainingInterrupted(
            f"interrupted during the evaluation of epoch {run.epoch + 1}; {last} holds the training up to step "
            f"{run.saved_step} (the evaluation runs again on resume); {resume_hint(out_dir)}", last)
    return TrainingInterrupted(f"interrupted at step {run.step}; {last} holds step {run.saved_step}; "
                               f"{resume_hint(out_dir)}", last)


def _train(run: Run) -> None:
    if run.finished and not run.epoch_end_pending and run.is_main:
        log.warning("%s: nothing to do, the run already reached epoch %d / step %d", run.out_dir, run.epoch, run.step)
    if run.epoch_end_pending:  # resumed between an epoch's last step and its evaluation
        _end_of_epoch(run)
    while not run.finished:
        train_one_epoch(run)
        _end_of_epoch(run)


def fit(config: RunConfig, out_dir: str | os.PathLike, *, resume: bool = False) -> dict[str, Any]:
    """Train a recipe into `out_dir` (resuming from its last.pth with `resume`). Works alone or under
    torchrun (a process group is created here when WORLD_SIZE > 1, and destroyed at the end).
    Ctrl-C raises TrainingInterrupted (a KeyboardInterrupt) after saving what can be resumed.
    Returns {"epoch", "epoch_step", "steps_per_epoch", "step", "stopped" (epochs, max_steps or
    time_budget), "budget" (the plan or None), "best", "metrics" (of the last evaluation)}."""
    device = dist_utils.resolve_device(config.train.device)
    created = dist_utils.setup(device)
    run = None
    try:
        with interrupt.catch_sigint():
            try:
                run = prepare(config, out_dir, resume=resume)
                _train(run)
            except KeyboardInterrupt as error:
                raise _interrupted(error, run, Path(out_dir)) from None
        last_metrics = next((r for r in reversed(run.log.records) if r.get("kind") == "epoch"), {})
        return {"epoch": run.epoch, "epoch_step": run.epoch_step, "steps_per_epoch": run.steps_per_epoch,
                "step": run.step, "stopped": run.stop_reason(),
                "budget": run.plan.state_dict() if run.plan is not None else None,
                "budget_minutes": run.plan.minutes if run.plan is not None else None, "best": run.best,
                "metrics": {k[4:]: v for k, v in last_metrics.items() if k.startswith("val/")}}
    finally:
        dist_utils.teardown(created)
