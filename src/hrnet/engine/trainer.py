"""The training loop: `fit` drives a Task through epochs; `train_one_epoch` and `evaluate` are the
plain pieces it is made of.

A run directory holds `config.yaml` (the resolved recipe), `log.jsonl` (one JSON object a line:
kind "train" every `train.log_every` steps, kind "epoch" after each epoch with the averages and the
evaluation metrics prefixed "val/"), `last.pth` and `best.pth` (written atomically) and
`curves.png`. Timing fields of the log (`time`, `rate`) are the only ones that differ between two
runs of a deterministic recipe.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..checkpoints import save_atomic
from . import distributed as dist_utils
from .config import RunConfig, config_from_dict, config_to_dict, dump_config
from .optim import build_optimizer, build_scheduler

log = logging.getLogger("hrnet")
CHECKPOINT_FORMAT = "hrnet-run/1"
TIMING_KEYS = ("time", "rate")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says which step and which checkpoint is good."""


# ----------------------------------------------------------------------------- small pieces


def progress(iterable: Iterable, *, enabled: bool, total: int | None = None, desc: str = "", unit: str = "it"):
    """A tqdm bar (rate and ETA) when enabled, else the iterable itself."""
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional: no bars without it
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False)


def progress_enabled(config: RunConfig | None) -> bool:
    wanted = None if config is None else config.train.progress
    if wanted is None:
        wanted = sys.stderr.isatty()
    return bool(wanted) and dist_utils.is_main_process()


def autocast(device: torch.device, amp: str, enabled: bool = True):
    """The autocast context of `train.amp` ("none", "bf16" or "fp16")."""
    if amp == "none" or not enabled:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def rng_state() -> dict[str, Any]:
    """RNG states of python, numpy and torch (CPU and CUDA), as plain data and tensors."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def model_spec(model: nn.Module) -> dict[str, Any] | None:
    """The HRNet spec inside `model` as plain data (None when it holds no HRNet backbone)."""
    from ..backbone import HRNetBackbone

    for module in model.modules():
        if isinstance(module, HRNetBackbone):
            return json.loads(json.dumps(dataclasses.asdict(module.spec)))
    return None


def enable_grad_checkpointing(model: nn.Module) -> int:
    """Recompute every stage of every HRNet backbone in `model` during backward; returns how many."""
    from ..backbone import HRNetBackbone

    count = 0
    for module in model.modules():
        if isinstance(module, HRNetBackbone):
            module.grad_checkpointing = True
            count += 1
    return count


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
    window_start: float = field(default_factory=time.time)
    started: float = field(default_factory=time.time)

    @property
    def is_main(self) -> bool:
        return dist_utils.is_main_process()

    @property
    def finished(self) -> bool:
        max_steps = self.config.train.max_steps
        return self.epoch >= self.config.train.epochs or (max_steps > 0 and self.step >= max_steps)

    # ---- checkpoints

    def checkpoint(self, metrics: dict[str, float] | None = None) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "task": self.config.task,
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "epoch": self.epoch,
            "epoch_step": self.epoch_step,
            "step": self.step,
            "best": dict(self.best),
            "metrics": dict(metrics or {}),
            "meters": {"epoch": self.epoch_meter.state_dict(), "window": self.window_meter.state_dict()},
            "rng": rng_state(),
            "spec": model_spec(unwrap(self.model)),
            "config": config_to_dict(self.config),
        }

    def save(self, name: str, metrics: dict[str, float] | None = None) -> None:
        if self.is_main:
            save_atomic(self.checkpoint(metrics), self.out_dir / f"{name}.pth")
        dist_utils.barrier()

    def restore(self, state: dict[str, Any]) -> None:
        unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        # The schedule's shape comes from this run's config (a resumed run may extend train.epochs);
        # only its position comes from the checkpoint.
        shapes = [dict(f.__dict__) for f in self.scheduler.lr_lambdas]
        base_lrs = list(self.scheduler.base_lrs)
        self.scheduler.load_state_dict(state["scheduler"])
        self.scheduler.base_lrs = base_lrs
        for factor, shape in zip(self.scheduler.lr_lambdas, shapes):
            factor.__dict__.update(shape)
        for group, base, factor in zip(self.optimizer.param_groups, self.scheduler.base_lrs,
                                       self.scheduler.lr_lambdas):
            group["lr"] = base * factor(self.scheduler.last_epoch)
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.epoch_step, self.step = int(state["epoch"]), int(state["epoch_step"]), int(state["step"])
        self.best = dict(state.get("best") or {})
        self.epoch_meter.load_state_dict(state["meters"]["epoch"])
        self.window_meter.load_state_dict(state["meters"]["window"])
        set_rng_state(state["rng"])


def load_run_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint written by the engine (weights plus training state, config and spec)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    from ..checkpoints import _torch_load

    state = _torch_load(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a training checkpoint of hrnet (no format {CHECKPOINT_FORMAT!r}); "
                         "for official weights use model.pretrained")
    return state


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
    """The task's model on `device`: activation checkpointing, SyncBatchNorm and DDP as configured."""
    model = task.build_model()
    if config.model.grad_checkpointing and not enable_grad_checkpointing(model):
        log.warning("model.grad_checkpointing: the model holds no HRNet backbone; ignored")
    model.to(device)
    if dist_utils.world_size() > 1:
        if config.model.sync_bn:
            model = dist_utils.convert_sync_batchnorm(model, device)
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None,
            find_unused_parameters=bool(getattr(task, "find_unused_parameters", False)))
    return model


def prepare(config: RunConfig, out_dir: str | os.PathLike, *, resume: bool = False) -> Run:
    """Build the task, model, loaders, optimizer, schedule and run directory (process group already up)."""
    from ..tasks import get_task

    t = config.train
    device = dist_utils.resolve_device(t.device)
    if t.amp == "fp16" and device.type != "cuda":
        raise ValueError("train.amp=fp16 needs a CUDA device; on CPU use train.amp=bf16")
    seed_everything(t.seed, t.deterministic)
    out_dir = Path(out_dir)
    last = out_dir / "last.pth"
    if last.exists() and not resume:
        raise ValueError(f"{out_dir} already holds a run ({last}); pass --resume to continue it or choose "
                         "another --out-dir")
    task = get_task(config.task)(config)
    train_loader, micro_batch = build_loader(task, config, "train", device)
    val_loader = build_loader(task, config, "val", device)[0] if config.eval.every > 0 else None
    model = prepare_model(task, config, device)
    steps_per_epoch = len(train_loader) // t.accumulate
    head_prefixes = tuple(getattr(task, "head_prefixes", ("head.",)))
    optimizer = build_optimizer(unwrap(model), config.optimizer, head_prefixes)
    scheduler = build_scheduler(optimizer, config.schedule, steps_per_epoch, t.epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=True) if t.amp == "fp16" else None
    run = Run(config=config, task=task, device=device, model=model, optimizer=optimizer, scheduler=scheduler,
              scaler=scaler, train_loader=train_loader, val_loader=val_loader, out_dir=out_dir,
              micro_batch=micro_batch, steps_per_epoch=steps_per_epoch, show_progress=progress_enabled(config))
    run.log = JsonLog(out_dir / "log.jsonl", enabled=run.is_main)
    if resume and last.exists():
        state = load_run_checkpoint(last)
        run.restore(state)
        completed = run.epoch
        # Drop what was logged after the checkpoint: the resumed run writes it again.
        run.log.load(lambda r: r.get("step", 0) <= run.step if r.get("kind") == "train" else r.get("epoch", 0) <= completed)
        if run.is_main:
            log.warning("resumed %s at epoch %d, step %d", last, run.epoch, run.step)
    elif run.is_main:
        (out_dir / "log.jsonl").unlink(missing_ok=True)
    if run.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(dump_config(config))
    dist_utils.barrier()
    return run


# ----------------------------------------------------------------------------- loops


def train_one_epoch(run: Run) -> dict[str, float]:
    """Train `run.epoch` from `run.epoch_step` to its end (or train.max_steps); returns the epoch's
    averages (reduced across processes). Raises TrainingDiverged on a NaN/inf loss."""
    config, t = run.config, run.config.train
    model, task, device = run.model, run.task, run.device
    accumulate = t.accumulate
    sampler: dist_utils.EpochSampler = run.train_loader.sampler
    sampler.set_epoch(run.epoch, skip=run.epoch_step * accumulate * run.micro_batch)
    model.train()
    steps = run.steps_per_epoch - run.epoch_step
    if t.max_steps:
        steps = min(steps, t.max_steps - run.step)
    batches = iter(run.train_loader)
    bar = progress(range(steps), enabled=run.show_progress, total=steps, desc=f"epoch {run.epoch + 1}/{t.epochs}",
                   unit="step")
    is_ddp = isinstance(model, nn.parallel.DistributedDataParallel)
    for _ in bar:
        loss_sum = torch.zeros((), device=device)
        part_sums: dict[str, float] = {}
        for micro in range(accumulate):
            batch = next(batches)
            sync = micro == accumulate - 1
            with (contextlib.nullcontext() if sync or not is_ddp else model.no_sync()):
                with autocast(device, t.amp):
                    loss, parts = task.train_step(model, batch, device)
                scaled = loss.float() / accumulate
                (run.scaler.scale(scaled) if run.scaler is not None else scaled).backward()
            loss_sum += loss.detach().float()
            for key, value in parts.items():
                part_sums[key] = part_sums.get(key, 0.0) + float(value)
        keys = sorted(part_sums)
        stats = torch.stack([loss_sum / accumulate,
                             (~torch.isfinite(loss_sum)).float(),
                             *[torch.tensor(part_sums[k] / accumulate, device=device) for k in keys]])
        stats = dist_utils.all_reduce_sum(stats.float()) if dist_utils.is_distributed() else stats.float()
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
        lr = run.optimizer.param_groups[0]["lr"] / run.optimizer.param_groups[0].get("lr_mult", 1.0)
        run.scheduler.step()
        run.step += 1
        run.epoch_step += 1
        values = {"loss": stats[0].item() / world, **{k: stats[2 + i].item() / world for i, k in enumerate(keys)}}
        run.epoch_meter.add(values)
        run.window_meter.add(values)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{values['loss']:.4f}", lr=f"{lr:.3g}", refresh=False)
        if run.step % t.log_every == 0:
            now = time.time()
            samples = run.window_meter.count * t.batch_size
            run.log.write({"kind": "train", "epoch": run.epoch + 1, "step": run.step, "lr": lr,
                           **run.window_meter.averages(), "time": round(now - run.started, 3),
                           "rate": round(samples / max(now - run.window_start, 1e-9), 2)})
            run.window_meter = Meter()
            run.window_start = now
        if t.checkpoint_every and run.step % t.checkpoint_every == 0 and run.epoch_step < run.steps_per_epoch:
            run.save("last")
    if hasattr(bar, "close"):
        bar.close()
    return run.epoch_meter.averages()


def _diverged(run: Run, what: str = "loss") -> None:
    last = run.out_dir / "last.pth"
    kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written yet"
    raise TrainingDiverged(
        f"{what} became NaN or infinite at epoch {run.epoch + 1}, step {run.step + 1}; training stopped and "
        f"{kept} (not overwritten). Lower optimizer.lr, set train.clip_grad_norm, add warmup "
        "(schedule.warmup_epochs) or use train.amp=bf16/none."
    )


def evaluate(model: nn.Module, task: Any, loader: Iterable, device: torch.device, *, amp: str = "none",
             show_progress: bool = False, evaluator: Any = None) -> dict[str, float]:
    """The task's metrics of `model` over `loader` (each process its shard, then reduced).
    `evaluator`: a fresh `task.make_evaluator(device)` unless given."""
    model = unwrap(model)
    was_training = model.training
    model.eval()
    evaluator = evaluator if evaluator is not None else task.make_evaluator(device)
    total = len(loader) if hasattr(loader, "__len__") else None
    with torch.no_grad(), autocast(device, amp):
        for batch in progress(loader, enabled=show_progress, total=total, desc="eval", unit="batch"):
            evaluator.update(model, batch)
    evaluator.synchronize()
    metrics = {k: float(v) for k, v in evaluator.compute().items()}
    model.train(was_training)
    return metrics


def _end_of_epoch(run: Run, train_metrics: dict[str, float]) -> None:
    config = run.config
    epoch_done = run.epoch_step >= run.steps_per_epoch
    last_epoch = run.epoch + 1 >= config.train.epochs or (config.train.max_steps and run.step >= config.train.max_steps)
    metrics: dict[str, float] = {}
    evaluator = None
    if run.val_loader is not None and ((run.epoch + 1) % config.eval.every == 0 or last_epoch):
        evaluator = run.task.make_evaluator(run.device)
        metrics = evaluate(run.model, run.task, run.val_loader, run.device, evaluator=evaluator,
                           amp=config.train.amp if config.eval.amp else "none", show_progress=run.show_progress)
    record = {"kind": "epoch", "epoch": run.epoch + 1, "step": run.step,
              **{f"train_{k}": v for k, v in train_metrics.items()},
              **{f"val/{k}": v for k, v in metrics.items()}}
    improved = False
    if evaluator is not None:
        key, higher = evaluator.main_metric, evaluator.higher_is_better
        value = metrics.get(key)
        if value is not None and math.isfinite(value):
            best = run.best.get("value")
            if best is None or (value > best if higher else value < best):
                run.best = {"metric": key, "value": value, "epoch": run.epoch + 1, "step": run.step}
                improved = True
        record["best"] = run.best.get("value")
    record["time"] = round(time.time() - run.started, 3)
    run.log.write(record)
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
        print(f"epoch {record['epoch']}/{config.train.epochs}: {shown}", file=sys.stderr, flush=True)


def fit(config: RunConfig, out_dir: str | os.PathLike, *, resume: bool = False) -> dict[str, Any]:
    """Train a recipe into `out_dir` (resuming from its last.pth with `resume`). Works alone or under
    torchrun (a process group is created here when WORLD_SIZE > 1, and destroyed at the end).
    Returns {"epoch", "step", "best", "metrics" (of the last evaluation)}."""
    device = dist_utils.resolve_device(config.train.device)
    created = dist_utils.setup(device)
    try:
        run = prepare(config, out_dir, resume=resume)
        if run.finished and run.is_main:
            log.warning("%s: nothing to do, the run already reached epoch %d / step %d", out_dir, run.epoch, run.step)
        while not run.finished:
            train_metrics = train_one_epoch(run)
            _end_of_epoch(run, train_metrics)
        last_metrics = next((r for r in reversed(run.log.records) if r.get("kind") == "epoch"), {})
        return {"epoch": run.epoch, "step": run.step, "best": run.best,
                "metrics": {k[4:]: v for k, v in last_metrics.items() if k.startswith("val/")}}
    finally:
        dist_utils.teardown(created)



def config_from_checkpoint(state: dict[str, Any], overrides: list[str] | tuple[str, ...] = (),
                           source: str = "checkpoint") -> RunConfig:
    if "config" not in state:
        raise ValueError(f"{source} holds no recipe: pass --config")
    return config_from_dict(state["config"], source, overrides)
