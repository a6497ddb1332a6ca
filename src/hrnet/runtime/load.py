"""`load_runtime`: an eval-mode model as the same model on torch, onnxruntime or OpenVINO, fp32 or int8."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from ..errors import ConfigError, DataError, RuntimeFailure
from . import cache as cache_module
from .modules import MIN_SIZE, MODULES, RuntimeModule
from .parity import ParityCheck, compare, judge_fp32, judge_int8

log = logging.getLogger("hrnet")
from .names import PRECISIONS, RUNTIMES  # noqa: E402,F401 (defined without torch for the command line)
EXAMPLE_SIZE = (256, 256)  # H, W traced for a dynamic export (any size works afterwards)


@dataclass
class RuntimeReport:
    """What load_runtime did: the file, whether it was exported now (and why), the parity checks,
    and for int8 the operators that stay float32."""

    runtime: str
    precision: str
    onnx: Path | None = None
    exported: list[str] = field(default_factory=list)  # messages of the exports done now
    checks: list[ParityCheck] = field(default_factory=list)
    fp32_ops: dict[str, int] | None = None
    calibration_batches: int | None = None

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def __str__(self) -> str:
        lines = [*self.exported]
        if self.onnx is not None:
            lines.append(f"{self.runtime} {self.precision}: {self.onnx}")
        if self.calibration_batches:
            lines.append(f"int8 calibrated on {self.calibration_batches} batch(es)")
        lines += [str(check) for check in self.checks]
        if self.fp32_ops is not None:
            kept = ", ".join(f"{op} x{n}" for op, n in self.fp32_ops.items()) or "none"
            lines.append(f"{self.runtime} int8: operators kept in float32: {kept}")
        return "\n".join(lines)


def _check_choices(runtime: str, precision: str) -> None:
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if precision not in PRECISIONS[runtime]:
        offered = ", ".join(f"{r}: {'/'.join(p)}" for r, p in PRECISIONS.items())
        raise ConfigError(f"runtime {runtime!r} has no precision {precision!r} ({offered})")


def _is_detector(model: nn.Module) -> bool:
    from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

    return isinstance(model, GeneralizedRCNN)


def task_of(model: nn.Module) -> str | None:
    """classification / pose / segmentation for an HRNet, detection for a detector or its backbone."""
    from ..detectors import HRNetV2p

    if _is_detector(model) or isinstance(model, HRNetV2p):
        return "detection"
    return getattr(model, "task", None)


def model_device(model: nn.Module) -> torch.device:
    """The device to put a model's inputs on: cpu for a runtime module (or a detector running its
    backbone in one), else the device of the model's first parameter (or buffer; cpu if none)."""
    if any(isinstance(module, RuntimeModule) for module in model.modules()):
        return torch.device("cpu")
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def load_runtime(model: nn.Module, *, runtime: str, precision: str = "fp32", cache: str | Path | None = None,
                 source_hash: str | None = None, calibration: Iterable[torch.Tensor] | None = None,
                 input_size: tuple[int, int] | None = None, threads: int | None = None, name: str | None = None,
                 check: bool = True, exporter: str = "torchscript") -> nn.Module:
    """`model` (classification, pose or segmentation HRNet, or a torchvision detector) on `runtime`.

    runtime "torch": `hrnet.optimize(model)` (BatchNorm folded, channels-last; autocast for
    precision fp16/bf16). "onnxruntime" / "openvino": a RuntimeModule running the ONNX export on the
    CPU (`model_device(module)` is cpu), fp32 or int8 (static QDQ quantization calibrated on
    `calibration`: (N, 3, H, W) batches made with the task's own pre-processing; for a detector,
    lists of (3, H, W) images in [0, 1] or (N, 3, H, W) tensors, passed through its transform).
    A detector keeps its RPN and RoI heads in torch: the result is a copy whose `backbone` is the
    runtime module (returning the same OrderedDict of pyramid levels).

    The export is cached in `cache` (default `hrnet.hub.cache_dir()/exports`) as `name` (default:
    the model's kind and architecture digest) per input-size policy and precision, and reused while
    its sidecar's source hash equals `source_hash` (default: the sha256 of the state dict); else it
    is exported again. `input_size=None` exports dynamic N, H and W; (H, W) fixes H and W (an input
    of another size is a RuntimeFailure naming both). `threads`: the runtime's intra-op threads
    (default torch.get_num_threads()). With `check`, the runtime is compared with eager PyTorch
    (see `hrnet.runtime.parity`): fp32 beyond tolerance raises RuntimeFailure; int8 is reported in
    `module.report` and a collapse is logged as a warning.
    """
    _check_choices(runtime, precision)
    if runtime == "torch":
        return _torch_runtime(model, precision)
    if _is_detector(model):
        return _detector_runtime(model, runtime=runtime, precision=precision, cache=cache, source_hash=source_hash,
                                 calibration=calibration, input_size=input_size, threads=threads, name=name,
                                 check=check, exporter=exporter)
    if input_size is not None and min(input_size) < MIN_SIZE:
        raise ConfigError(f"input_size {input_size[0]}x{input_size[1]}: H and W must be at least {MIN_SIZE}")
    was_training = model.training
    model.eval()
    try:
        return _export_and_load(model, runtime=runtime, precision=precision,
                                folder=Path(cache) if cache is not None else cache_module.default_cache(),
                                source_hash=source_hash or cache_module.weights_hash(model),
                                calibration=None if calibration is None else list(calibration),
                                input_size=input_size, threads=threads or torch.get_num_threads(),
                                name=name or cache_module.structure_name(model), check=check, exporter=exporter)
    finally:
        model.train(was_training)


def _torch_runtime(model: nn.Module, precision: str) -> nn.Module:
    from .fastpath import optimize

    dtype = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    return optimize(model, fuse_bn=True, channels_last=True, dtype=dtype)


def _export_and_load(model: nn.Module, *, runtime: str, precision: str, folder: Path, source_hash: str,
                     calibration: list[torch.Tensor] | None, input_size: tuple[int, int] | None, threads: int,
                     name: str, check: bool, exporter: str) -> RuntimeModule:
    from .export import ensure_fp32, ensure_int8

    report = RuntimeReport(runtime, precision)
    policy = cache_module.policy_name(input_size)
    fp32 = cache_module.Entry.at(folder, name, policy, "fp32")
    meta = ensure_fp32(model, fp32, source_hash=source_hash, input_size=input_size, exporter=exporter,
                       report=report)
    entry = fp32
    if precision == "int8":
        entry = cache_module.Entry.at(folder, name, policy, "int8")
        meta = ensure_int8(fp32, entry, source_hash=source_hash, calibration=calibration, report=report)
    module = MODULES[runtime](entry.onnx, precision=precision, output_names=meta["outputs"],
                              dict_output=meta["dict_output"], input_size=input_size, threads=threads)
    report.onnx = entry.onnx
    report.calibration_batches = meta.get("calibration_batches")
    if precision == "int8":
        report.fp32_ops = _fp32_ops(module, entry, meta)
    if check:
        report.checks = _checks(module, model, entry, meta, calibration=calibration, input_size=input_size)
    module.report = report
    return module


def _fp32_ops(module: RuntimeModule, entry: cache_module.Entry, meta: dict[str, Any]) -> dict[str, int]:
    from .quantize import onnxruntime_fp32_ops, openvino_fp32_ops

    kept = meta.setdefault("fp32_ops", {})
    if module.runtime not in kept:
        kept[module.runtime] = (openvino_fp32_ops(module.compiled) if module.runtime == "openvino"
                                else onnxruntime_fp32_ops(entry.onnx))
        entry.write(meta)
    return kept[module.runtime]


def _random_batches(input_size: tuple[int, int] | None) -> list[torch.Tensor]:
    height, width = input_size or EXAMPLE_SIZE
    generator = torch.Generator().manual_seed(0)
    shapes = [(2, 3, height, width)] if input_size is not None else [(2, 3, height, width),
                                                                      (1, 3, height + 17, width + 31)]
    return [torch.randn(*shape, generator=generator) for shape in shapes]


def _checks(module: RuntimeModule, model: nn.Module, entry: cache_module.Entry, meta: dict[str, Any], *,
            calibration: list[torch.Tensor] | None, input_size: tuple[int, int] | None) -> list[ParityCheck]:
    """The parity checks of this runtime: computed once per export and runtime, kept in the sidecar."""
    stored = meta.setdefault("checks", {})
    if module.runtime in stored and not (module.precision == "int8" and calibration and
                                         stored[module.runtime][0]["inputs"] == "random"):
        return [ParityCheck(**c) for c in stored[module.runtime]]
    task = meta.get("task")
    if module.precision == "fp32":
        checks = []
        for x in _random_batches(input_size):
            check = compare(module, model, [x], runtime=module.runtime, precision="fp32", inputs="random", task=task)
            checks.append(judge_fp32(check, model, x))
        failed = [c for c in checks if not c.passed]
        if failed:
            raise RuntimeFailure(f"{entry.onnx}: {failed[0]}; the export does not reproduce the model: report it, "
                                 "and use runtime='torch' meanwhile")
    else:
        batches = calibration or _random_batches(input_size)
        inputs = "calibration" if calibration else "random"
        checks = [judge_int8(compare(module, model, batches, runtime=module.runtime, precision="int8",
                                     inputs=inputs, task=task))]
    stored[module.runtime] = [c.to_dict() for c in checks]
    entry.write(meta)
    return checks


def detector_inputs(detector: nn.Module, batches: Iterable[Any]) -> list[torch.Tensor]:
    """The backbone inputs (N, 3, H, W: normalised, resized, padded to 32) of a torchvision
    detector for batches of images ((3, H, W) in [0, 1], as a list or an (N, 3, H, W) tensor)."""
    inputs = []
    transform = detector.transform
    was_training = transform.training
    transform.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                images = list(batch) if isinstance(batch, (list, tuple)) or batch.dim() == 4 else [batch]
                inputs.append(transform(images)[0].tensors)
    finally:
        transform.train(was_training)
    return inputs


def _detector_runtime(model: nn.Module, *, calibration: Iterable[Any] | None, name: str | None,
                      **options: Any) -> nn.Module:
    backbone_calibration = None if calibration is None else detector_inputs(model, calibration)
    backbone = load_runtime(model.backbone, calibration=backbone_calibration,
                            name=name or f"{cache_module.structure_name(model)}-backbone", **options)
    backbone.out_channels = model.backbone.out_channels
    # Copy everything but the backbone, which is replaced by the runtime module.
    detector = copy.deepcopy(model, memo={id(model.backbone): backbone})
    detector.report = backbone.report
    return detector.eval()


def require_calibration(calibration: list[torch.Tensor] | None) -> list[torch.Tensor]:
    if not calibration:
        raise DataError("precision='int8' needs calibration batches (the task's pre-processing of typical images; "
                        "`hrnet export --int8 --calibrate DIR` or `--calibrate recipe:val`, or calibration=[...] in Python)")
    return calibration
