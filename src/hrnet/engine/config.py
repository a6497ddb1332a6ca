"""Recipes: a flat YAML file (no inheritance) mapped onto typed dataclasses.

    task: classification            # a name in hrnet.tasks.TASKS
    model:     {arch: hrnet_w18, num_classes: 1000}
    data:      {...}                # the task's own DataConfig dataclass
    optimizer: {name: sgd, lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 1.0e-4}
    schedule:  {name: multistep, milestones: [30, 60, 90], gamma: 0.1}
    train:     {epochs: 100, batch_size: 128}
    eval:      {}

Every section is optional except `task` (defaults below). An unknown key or a value of the wrong
type is a `ConfigError` naming the file and the dotted key. `--set model.arch=hrnet_w32` overrides
(values parsed as YAML, then typed like the recipe's own values).

Types a dataclass field may use (task DataConfigs too): bool, int, float (an int is accepted),
str, Literal[...] (choices), X | None, list[X], tuple[X, ...], tuple[X, Y], dict[str, X], Any,
and nested dataclasses.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import yaml

from ..errors import ConfigError  # re-exported: the engine's historical home of ConfigError

SECTIONS = ("model", "data", "optimizer", "schedule", "train", "eval")


# ----------------------------------------------------------------------------- the sections


@dataclass
class ModelConfig:
    """The network. `arch` is a registered variant (`hrnet list`); `stages` replaces its stages with
    an inline spec (4 entries of {modules, block, blocks, channels}), e.g. a tiny model for tests.
    `num_classes` is classes (or keypoints for pose); None: the task decides. `pretrained` is a
    checkpoint (official, timm or hrnet) loaded before training: a differing head is re-initialised.
    `weights` names published weights instead (`hrnet weights list`; ARCH.TAG or the TAG of `arch`),
    downloaded once and loaded the same way; unset head / num_classes / align_corners follow them.
    `sync_bn` converts BatchNorm to SyncBatchNorm, and only when the world size is above 1."""

    arch: str = "hrnet_w18"
    stages: list[dict[str, Any]] | None = None
    stem_channels: int | None = None
    num_classes: int | None = None
    head: str | None = None
    align_corners: bool | None = None
    pretrained: str | None = None
    weights: str | None = None
    grad_checkpointing: bool = False
    sync_bn: bool = True

    def spec(self):
        """The backbone spec: `arch`, with `stages` / `stem_channels` replaced when given."""
        from ..spec import StageSpec, get_spec

        spec = get_spec(self.arch)
        changes: dict[str, Any] = {}
        if self.stages is not None:
            try:
                changes["stages"] = tuple(StageSpec(**stage) for stage in self.stages)
            except TypeError as error:
                raise ConfigError(f"model.stages: {error}; each stage needs modules, block, blocks, channels") from None
        if self.stem_channels is not None:
            changes["stem_channels"] = self.stem_channels
        try:
            return spec.replace(**changes) if changes else spec
        except ValueError as error:
            raise ConfigError(f"model.stages: {error}") from None

    def create(self, task: str, **overrides: Any):
        """`hrnet.create_model` for this section: what a task's `build_model` usually returns,
        e.g. `config.model.create("pose")`. `overrides` replace create_model arguments
        (num_classes, head, align_corners, checkpoint)."""
        from ..models import create_model

        kwargs: dict[str, Any] = {"num_classes": self.num_classes, "head": self.head,
                                  "align_corners": self.align_corners, "checkpoint": self.pretrained}
        if self.weights is not None:  # a name (ARCH.TAG, or a TAG of arch), or a Weights entry from Python
            qualified = not isinstance(self.weights, str) or "." in self.weights
            kwargs["weights"] = self.weights if qualified else f"{self.arch}.{self.weights}"
        kwargs.update(overrides)
        return create_model(self.spec(), task=task, **kwargs)


@dataclass
class OptimizerConfig:
    """`weight_decay` goes to every parameter group (the official recipes decay BN and biases too,
    unless `no_decay_norm_bias`). Parameters of the head (names starting with the task's
    `head_prefixes`, default "head.") get `lr * head_lr_mult`."""

    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    head_lr_mult: float = 1.0
    no_decay_norm_bias: bool = False


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, applied per iteration. `milestones` are epochs (multistep);
    poly: lr * (1 - t)^power; cosine: down to `min_lr`. A linear warmup over `warmup_epochs`
    (may be fractional) or `warmup_iters` optimizer steps (not both) starts at lr * `warmup_factor`."""

    name: Literal["multistep", "poly", "cosine", "constant"] = "multistep"
    milestones: list[int] = field(default_factory=lambda: [30, 60, 90])
    gamma: float = 0.1
    power: float = 0.9
    min_lr: float = 0.0
    warmup_epochs: float = 0.0
    warmup_iters: int = 0
    warmup_factor: float = 0.001


@dataclass
class EmaConfig:
    """An exponential moving average of the weights (timm's ModelEmaV3 rule): after optimizer
    step n, ema = d_n * ema + (1 - d_n) * weights, with d_1 = 0 (a copy) and, from n = 2,
    d_n = `decay`, or with `warmup` min(`decay`, 1 - n^-`warmup_power`) (timm's
    1 - (1 + (n - 1) / gamma)^-power with gamma 1). Floating BatchNorm buffers (running mean and variance) are
    averaged like the weights (`buffers: average`, timm's default) or copied from the trained model
    (`copy`, timm's exclude_buffers); integer buffers are always copied."""

    decay: float = 0.9998
    warmup: bool = True
    warmup_power: float = 0.75  # timm: 3/4 for runs up to ~100k steps (2/3 for a million)
    buffers: Literal["average", "copy"] = "average"


@dataclass
class TrainConfig:
    """`batch_size` is the global batch of one optimizer step: each of N processes loads
    batch_size / (N * accumulate) samples per micro-step. `max_steps` (> 0) stops early (tests).
    `amp`: "bf16" (CPU or CUDA) or "fp16" (CUDA, with a GradScaler). `checkpoint_every` > 0 also
    writes `last` every that many steps inside an epoch (resume continues mid-epoch).

    `ema` (null: off): evaluate and save an exponential moving average of the weights (see
    EmaConfig); `best.pth` and `last.pth` then hold the average as `model` (what eval and predict
    load) and the trained weights for resuming. `time_budget_minutes` (null: off): train for as
    many optimizer steps as fit that many minutes of training steps (evaluations and checkpoints
    not counted), measured on `budget_probe_steps` steps before the first one; the schedule runs
    over those steps and `epochs` is ignored. The plan is saved in the checkpoint: a resumed run
    keeps it. `budget_clock`: "wall" (elapsed seconds) or "process" (CPU seconds of this process,
    all its threads: on a machine shared with other jobs, the time the run itself used; data
    loading counts only with `workers: 0`). `progress_every_seconds` (0: never): without progress
    bars (stderr not a terminal, or `progress: false`), print a progress line (steps, rate, eta)
    at that interval. `channels_last`: weights and 4-D batch tensors in NHWC memory order, the
    same values computed faster by oneDNN on CPU (BENCHMARKS.md); checkpoints are saved NCHW."""

    epochs: int = 100
    batch_size: int = 128
    accumulate: int = 1
    max_steps: int = 0
    workers: int = 4
    device: str = "auto"
    amp: Literal["none", "bf16", "fp16"] = "none"
    clip_grad_norm: float | None = None
    seed: int = 0
    deterministic: bool = False
    log_every: int = 20
    checkpoint_every: int = 0
    progress: bool | None = None  # None: bars only when stderr is a terminal
    progress_every_seconds: float = 60.0
    plot: bool = True
    ema: EmaConfig | None = None
    time_budget_minutes: float | None = None
    budget_probe_steps: int = 3
    budget_clock: Literal["wall", "process"] = "wall"
    channels_last: bool = False


@dataclass
class EvalConfig:
    """Evaluation after every `every` epochs (0: never during training). `batch_size` is global
    (0: the training batch). `amp` evaluates under the training autocast dtype."""

    every: int = 1
    batch_size: int = 0
    amp: bool = False


@dataclass
class RunConfig:
    task: str
    model: ModelConfig = field(default_factory=ModelConfig)
    data: Any = None  # the task's DataConfig instance
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    source: str = ""  # the recipe file it came from (not a recipe key)


SECTION_TYPES: dict[str, type] = {"model": ModelConfig, "optimizer": OptimizerConfig, "schedule": ScheduleConfig,
                                  "train": TrainConfig, "eval": EvalConfig}


# ----------------------------------------------------------------------------- typed conversion


@dataclass
class _Override:
    """A `--set` value: the text as given and its YAML reading (a str field takes the text)."""

    text: str
    value: Any


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


class _Mismatch(Exception):
    pass


def _convert(value: Any, tp: Any, key: str, where: str) -> Any:
    """`value` as type `tp`, or ConfigError naming `key`."""
    if isinstance(value, _Override):
        if tp is str or (typing.get_origin(tp) in (typing.Union, types.UnionType) and str in typing.get_args(tp)
                         and not isinstance(value.value, str) and value.value is not None):
            return value.text
        value = value.value
    try:
        return _convert_inner(value, tp, key, where)
    except _Mismatch:
        shown = repr(value) if len(repr(value)) < 60 else repr(value)[:57] + "..."
        raise ConfigError(f"{where}: {key} must be {_type_name(tp)}, got {shown} ({type(value).__name__})") from None


def _convert_inner(value: Any, tp: Any, key: str, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key, where)
            except ConfigError:
                if len([a for a in args if a is not type(None)]) == 1:
                    raise
        raise _Mismatch
    if origin is Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        raise _Mismatch
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # YAML 1.1 reads 1e-3 (no dot) as a string; accept every spelling Python's float() accepts.
            try:
                return float(value)
            except ValueError:
                pass
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if origin in (list, Sequence, tuple):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise _Mismatch
            return tuple(_convert(v, a, f"{key}[{i}]", where) for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_convert(v, item, f"{key}[{i}]", where) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _Mismatch
        key_type, value_type = args if args else (Any, Any)
        return {_convert(k, key_type, f"{key}", where): _convert(v, value_type, f"{key}.{k}", where)
                for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise _Mismatch
        return build_dataclass(tp, value, key, where)
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _Mismatch
    return value


def build_dataclass(cls: type, values: Mapping[str, Any], prefix: str, where: str) -> Any:
    """`cls(**values)` with every value checked against the field's type; unknown keys are errors."""
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: {prefix or 'the recipe'} must be a mapping of keys to values, "
                          f"got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    for name in values:
        if name not in fields:
            close = difflib.get_close_matches(str(name), list(fields), n=1)
            hint = f" (did you mean {prefix + '.' if prefix else ''}{close[0]}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {prefix + '.' if prefix else ''}{name}{hint}; "
                              f"known keys of {prefix or 'the recipe'}: {', '.join(fields)}")
    kwargs = {}
    for name, value in values.items():
        kwargs[name] = _convert(value, hints[name], f"{prefix}.{name}" if prefix else name, where)
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}: {prefix or 'the recipe'} needs the key(s) "
                          + ", ".join(f"{prefix}.{m}" if prefix else m for m in missing))
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:  # a DataConfig's own __post_init__ checks
        raise ConfigError(f"{where}: {prefix}: {error}") from None


# ----------------------------------------------------------------------------- loading


def parse_override(text: str) -> tuple[list[str], _Override]:
    """"a.b=value" -> (["a", "b"], value read as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set optimizer.lr=0.01")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), _Override(raw, value)


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Set each "a.b=value" inside the nested dict `raw` (in place; returns it)."""
    for text in overrides:
        path, value = parse_override(text)
        target = raw
        for depth, part in enumerate(path[:-1]):
            node = target.get(part)
            if node is None:
                node = target[part] = {}
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text}: {'.'.join(path[:depth + 1])} is a value, not a section")
            target = node
        target[path[-1]] = value
    return raw


def config_from_dict(raw: Mapping[str, Any], where: str = "recipe", overrides: Sequence[str] = ()) -> RunConfig:
    """A RunConfig from a recipe's nested dict (as read from YAML, or saved in a checkpoint)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a recipe is a mapping with `task:` and sections {', '.join(SECTIONS)}")
    raw = apply_overrides(_plain(raw), overrides)
    if where != "recipe" and overrides:
        where = f"{where} (with --set {' '.join(overrides)})"
    unknown = [k for k in raw if k not in ("task", *SECTIONS)]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), ["task", *SECTIONS], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"{where}: unknown key {unknown[0]}{hint}; a recipe has task, {', '.join(SECTIONS)}")
    task = raw.get("task")
    if isinstance(task, _Override):
        task = task.text
    if not isinstance(task, str):
        raise ConfigError(f"{where}: the recipe needs `task:` (one of classification, pose, segmentation, detection)")
    from ..tasks import get_task

    try:
        task_cls = get_task(task)
    except ValueError as error:
        raise ConfigError(f"{where}: task: {error}") from None
    sections = {name: build_dataclass(cls, raw.get(name) or {}, name, where) for name, cls in SECTION_TYPES.items()}
    data = build_dataclass(task_cls.DataConfig, raw.get("data") or {}, "data", where)
    config = RunConfig(task=task, data=data, source=str(where), **sections)
    _check(config, where)
    return config


def _plain(obj: Any) -> Any:
    """A deep copy made of dicts (so overrides never touch the caller's objects)."""
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


def _check(config: RunConfig, where: str) -> None:
    """Cross-field checks that a type alone cannot express."""
    t = config.train
    for key, value, low in (("train.epochs", t.epochs, 1), ("train.batch_size", t.batch_size, 1),
                            ("train.accumulate", t.accumulate, 1), ("train.log_every", t.log_every, 1),
                            ("train.max_steps", t.max_steps, 0), ("train.workers", t.workers, 0),
                            ("train.checkpoint_every", t.checkpoint_every, 0), ("eval.every", config.eval.every, 0),
                            ("eval.batch_size", config.eval.batch_size, 0)):
        if value < low:
            raise ConfigError(f"{where}: {key} must be >= {low}, got {value}")
    if config.schedule.warmup_epochs and config.schedule.warmup_iters:
        raise ConfigError(f"{where}: schedule.warmup_epochs and schedule.warmup_iters both set; give the warmup "
                          "in epochs or in iterations, not both")
    if config.schedule.warmup_epochs < 0 or config.schedule.warmup_iters < 0:
        raise ConfigError(f"{where}: schedule warmup must be >= 0")
    if not config.optimizer.lr > 0 or not math.isfinite(config.optimizer.lr):
        raise ConfigError(f"{where}: optimizer.lr must be a positive number, got {config.optimizer.lr}")
    if t.ema is not None and not 0 <= t.ema.decay < 1:
        raise ConfigError(f"{where}: train.ema.decay must be in [0, 1), got {t.ema.decay} (e.g. 0.9998)")
    if t.ema is not None and t.ema.warmup_power <= 0:
        raise ConfigError(f"{where}: train.ema.warmup_power must be positive, got {t.ema.warmup_power}")
    if t.time_budget_minutes is not None and not t.time_budget_minutes > 0:
        raise ConfigError(f"{where}: train.time_budget_minutes must be positive (or null for no budget), "
                          f"got {t.time_budget_minutes}")
    if t.budget_probe_steps < 1 or t.progress_every_seconds < 0:
        raise ConfigError(f"{where}: train.budget_probe_steps must be >= 1 and train.progress_every_seconds >= 0")
    if t.device not in ("auto", "cpu", "cuda") and not t.device.startswith("cuda:"):
        raise ConfigError(f"{where}: train.device must be auto, cpu, cuda or cuda:N, got {t.device!r}")
    from ..spec import VARIANTS

    if config.model.arch not in VARIANTS:
        close = difflib.get_close_matches(config.model.arch, list(VARIANTS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"{where}: model.arch {config.model.arch!r} is not a registered variant{hint}; "
                          f"known: {', '.join(sorted(VARIANTS))}")
    try:
        config.model.spec()  # a bad inline spec
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> RunConfig:
    """Read a recipe file and apply `--set` overrides ("key.sub=value")."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    return config_from_dict(raw or {}, str(path), overrides)


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """The resolved config as plain data (what config.yaml and checkpoints hold); round-trips
    through `config_from_dict`."""
    out: dict[str, Any] = {"task": config.task}
    for name in SECTIONS:
        out[name] = _to_plain(dataclasses.asdict(getattr(config, name)))
    return out


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


def dump_config(config: RunConfig) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False, default_flow_style=None)
