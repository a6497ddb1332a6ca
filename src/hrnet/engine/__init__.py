"""The training engine shared by every task: recipes, loops, DDP, AMP, checkpoints, logs, plots.

Command line (`hrnet.engine.commands`)::

    hrnet train --config recipes/classification/hrnet_w18.yaml [--set train.epochs=2 --set ...] [--out-dir DIR]
                [--resume]
    torchrun --nproc_per_node=4 -m hrnet train --config ...        # DDP: gloo on CPU, nccl on GPU
    hrnet eval --checkpoint DIR/best.pth [--set data.val=...]        # the recipe comes from the checkpoint
    hrnet predict IMAGES_OR_FOLDERS_OR_VIDEOS... --checkpoint DIR/best.pth [--out-dir OUT]

Plugging in a task (see `engine/task.py` for the exact protocol):

1. Write `hrnet/tasks/<name>...:<Name>Task` and register it in `hrnet.tasks.TASKS`.
2. `DataConfig`: a dataclass for the recipe's `data:` section. Field types are checked when the
   recipe is read (bool, int, float, str, Literal[...], X | None, list[X], tuple[...], dict[str, X],
   Any, nested dataclasses); unknown keys are errors naming the key. Give every field a default
   (or the recipe must set it). Raise ValueError in `__post_init__` for cross-field checks.
3. `__init__(config)`: `config` is the whole `RunConfig` (`config.model`, `config.data`, ...). You
   may fill in what the data decides (e.g. `config.model.num_classes`, class names in
   `config.data`): the engine saves the config after constructing the task, so `hrnet eval` and
   `hrnet predict` get it back from the checkpoint without the data.
4. `build_model()`: usually `self.config.model.create("<task>")` (`ModelConfig.create` calls
   `hrnet.create_model` with arch/inline stages, num_classes, head, align_corners, pretrained). The
   engine then sets activation checkpointing, moves it to the device, converts SyncBatchNorm (world
   size > 1 only) and wraps it in DDP. Do not do these yourself.
5. `build_dataset(split)` ("train" / "val"): a map-style dataset. The engine wraps it so that
   sample i of epoch e runs with python/numpy/torch RNGs seeded from (train.seed, e, i): use those
   global RNGs for augmentation and results do not depend on workers, ranks or restarts. Errors on
   bad files: raise `hrnet.data.io.DataError` naming the file.
6. `collate(samples)`: `torch.utils.data.default_collate` unless you need otherwise.
7. `train_step(model, batch, device) -> (loss, parts)`: move the batch (non_blocking=True), run the
   model (it may be DDP-wrapped: call it, do not reach into `.module` for the forward), return the
   scalar loss tensor and a dict of floats to log (same keys on every rank). The engine runs it
   under autocast, scales for accumulation/AMP, all-reduces the logged values, checks for NaN/inf,
   clips and steps.
8. `make_evaluator(device)`: an object with `main_metric`, `higher_is_better`, `update(model,
   batch)` (called under no_grad, model in eval mode, already unwrapped from DDP), `synchronize()`
   (sum your counters with `hrnet.engine.distributed.all_reduce_sum`, or gather with
   `all_gather_objects`; every rank sees a disjoint shard of the val set, no padding) and
   `compute() -> dict[str, float]`. `main_metric` picks the `best` checkpoint. Optional `how`:
   a dict of plain values saying how the numbers were obtained (test-time flip, scales, boxes),
   logged with them as "val_how". The engine calls `make_evaluator` once before the first step
   too: read and check there what evaluation will read (e.g. a COCO json's `area` fields), so a
   bad val file fails before training, not after the first epoch.
9. `inference_settings()` and `inference(model, device=..., **options)`: the typed settings shared
   by the evaluator and by prediction, and the `TaskInference` that `hrnet.Predictor` (and so
   `hrnet predict`) drives.

Optional task attributes: `head_prefixes` (tuple of parameter-name prefixes that get
`optimizer.head_lr_mult`; default ("head.",)), `find_unused_parameters` (bool, for DDP).

From Python::

    from hrnet.engine import load_config, fit
    config = load_config("recipes/classification/hrnet_w18.yaml", ["train.epochs=1"])
    summary = fit(config, "runs/w18")          # {"epoch", "step", "best", "metrics", ...}

Ctrl-C raises `TrainingInterrupted` (a KeyboardInterrupt) after writing `last.pth` at the step it
stopped; `hrnet train` prints one line with the resume command and exits with 130.

`train.batch_size` is the global batch of an optimizer step (split over processes and
accumulation steps), so the same recipe gives the same optimisation on 1 or N processes.
"""

# Submodules are imported on first use: the command line builds its parser from `engine.config`
# and `engine.commands` without importing torch (`hrnet list`, `hrnet --help` stay fast).
_LAZY = {
    **dict.fromkeys(("ConfigError", "EvalConfig", "ModelConfig", "OptimizerConfig", "RunConfig", "ScheduleConfig",
                     "TrainConfig", "config_from_dict", "config_to_dict", "dump_config", "load_config"), "config"),
    **dict.fromkeys(("CHECKPOINT_FORMAT", "config_from_checkpoint", "load_for_inference", "load_run_checkpoint"),
                    "runs"),
    "TrainingInterrupted": "interrupt",
    **dict.fromkeys(("TrainingDiverged", "build_loader", "evaluate", "fit", "prepare", "prepare_model",
                     "train_one_epoch"), "trainer"),
    "plot_curves": "runlog",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = sorted(_LAZY)
