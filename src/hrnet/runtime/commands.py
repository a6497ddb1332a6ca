"""`hrnet export`: a model to ONNX or OpenVINO, float32 or int8, checked against PyTorch (and evaluated).

    hrnet export hrnet_w18 --task classification --checkpoint w18.pth -o w18.onnx --input 224x224
    hrnet export --checkpoint runs/camvid/best.pth --format openvino --int8 --calibrate frames/ \
        --eval -o camvid_int8.xml --input 360x480

Also the helpers `hrnet eval --runtime ... --precision ...` uses (`runtime_for_eval`).
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cli_args import head_options, model_tasks, parse_size
from ..errors import ConfigError
from .names import PRECISIONS, RUNTIMES

if TYPE_CHECKING:  # annotations only: the command line builds without importing torch
    import torch

log = logging.getLogger("hrnet")
FORMATS = {"onnx": "onnxruntime", "openvino": "openvino"}


def cache_beside(checkpoint: str | None) -> Path | None:
    """`<checkpoint folder>/exports` when that folder is writable (exports live next to the
    weights), else None (the library cache)."""
    import os

    if checkpoint is None:
        return None
    folder = Path(checkpoint).resolve().parent
    return folder / "exports" if os.access(folder, os.W_OK) else None


def _load(args: argparse.Namespace) -> tuple[Any, Any, torch.nn.Module]:
    """(config or None, task or None, eval-mode model) from ARCH (+ --checkpoint) or a run checkpoint
    / weights + --config."""
    from ..engine.commands import _overrides
    from ..engine.runs import load_for_inference

    if args.arch is None or args.config is not None:
        if args.checkpoint is None:
            raise ConfigError("hrnet export needs ARCH (e.g. hrnet_w18 --task classification) or --checkpoint of a "
                              "run (runs/x/best.pth), or weights with --config RECIPE")
        import torch

        config, task, model = load_for_inference(args.checkpoint, args.config, _overrides(args), torch.device("cpu"))
        return config, task, model
    from ..models import create_model

    model = create_model(args.arch, task=args.task, num_classes=args.num_classes, head=args.head,
                         checkpoint=args.checkpoint)
    return None, None, model.eval()


def _calibration(args: argparse.Namespace, task_name: str, config: Any) -> list[Any] | None:
    if not args.int8:
        return None
    if args.calibrate is None:
        raise ConfigError("--int8 needs --calibrate SOURCE: a folder of 8-64 typical images of the task, or "
                          "recipe:val (the run's own val inputs)")
    from .calibration import source_batches

    return source_batches(task_name, args.calibrate, config=config, input_size=args.input,
                          limit=args.calibration_limit)


def _write(source: Path, out: Path, runtime: str) -> list[Path]:
    """Copy the cached ONNX file (and its sidecar) to `out`, or save it as OpenVINO IR (.xml + .bin)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    sidecar = source.with_suffix(".json")
    if runtime == "openvino":
        import openvino

        xml = out if out.suffix == ".xml" else out.with_suffix(".xml")
        # Keep float32 weights (save_model would halve them to fp16 by default).
        openvino.save_model(openvino.Core().read_model(str(source)), str(xml), compress_to_fp16=False)
        shutil.copyfile(sidecar, xml.with_suffix(".json"))
        return [xml, xml.with_suffix(".bin"), xml.with_suffix(".json")]
    shutil.copyfile(source, out)
    shutil.copyfile(sidecar, out.with_suffix(".json"))
    return [out, out.with_suffix(".json")]


def _evaluate(config: Any, task: Any, eager: torch.nn.Module, fast: torch.nn.Module) -> list[str]:
    from ..engine.trainer import build_loader, evaluate

    import torch

    device = torch.device("cpu")
    loader, _ = build_loader(task, config, "val", device)
    before = evaluate(eager, task, loader, device)
    after = evaluate(fast, task, loader, device)
    lines = []
    for key, value in before.items():
        if key in after and "/" not in key:
            lines.append(f"  {key}: eager {value:.4f}   runtime {after[key]:.4f}   change {after[key] - value:+.4f}")
    return lines


def _cmd_export(args: argparse.Namespace) -> int:
    from .load import load_runtime, task_of

    runtime = FORMATS[args.format]
    if args.static and args.input is None:
        raise ConfigError("--static fixes the export's size: give it with --input HxW")
    if args.eval and args.config is None and args.arch is not None:
        raise ConfigError("--eval needs the recipe of the val set: --config RECIPE (or a run checkpoint without ARCH)")
    config, task, model = _load(args)
    task_name = config.task if config is not None else task_of(model) or args.task
    calibration = _calibration(args, task_name, config)
    precision = "int8" if args.int8 else "fp32"
    options = dict(runtime=runtime, cache=cache_beside(args.checkpoint), threads=args.threads,
                   input_size=args.input if args.static else None, exporter=args.exporter, check=not args.no_check)
    reports = []
    if precision == "int8":  # the float32 file is made first anyway: show its check too
        reports.append(load_runtime(model, precision="fp32", **options).report)
    fast = load_runtime(model, precision=precision, calibration=calibration, **options)
    reports.append(fast.report)
    for report in reports:
        print(report)
    written = _write(fast.report.onnx, Path(args.output), runtime)
    print("wrote " + ", ".join(str(p) for p in written)
          + (" (the detector's backbone; its RPN and RoI heads stay in PyTorch)" if task_name == "detection" else ""))
    if args.eval:
        print(f"val metrics, eager PyTorch vs {runtime} {precision}:")
        print("\n".join(_evaluate(config, task, model, fast)))
    # An int8 collapse is not an error of the command line, but scripts must be able to see it.
    return 0 if all(r.passed for r in reports) else 1


def runtime_for_eval(model: torch.nn.Module, config: Any, args: argparse.Namespace) -> torch.nn.Module:
    """`hrnet eval --runtime R --precision P`: the loaded model on that runtime (the export cached next
    to the checkpoint), printing what the runtime reports."""
    from .load import load_runtime

    calibration = None
    if args.precision == "int8" and args.calibrate is not None:  # else the cached int8 export, if any
        from .calibration import source_batches

        calibration = source_batches(config.task, args.calibrate, config=config)
    fast = load_runtime(model, runtime=args.runtime, precision=args.precision, calibration=calibration,
                        cache=cache_beside(args.checkpoint), threads=args.threads)
    report = getattr(fast, "report", None)
    if report is not None:
        log.warning("%s", report)
    return fast


CALIBRATE_HELP = ("int8: what to calibrate on: a folder of typical images, or recipe:val / recipe:train, the "
                  "inputs of the run's own data as evaluation / training makes them (for pose: the person crops); "
                  "without it a cached int8 export is reused")


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """--runtime, --precision, --calibrate, --threads (for `hrnet eval`)."""
    precisions = sorted({p for ps in PRECISIONS.values() for p in ps})
    parser.add_argument("--runtime", default="torch", choices=RUNTIMES,
                        help="torch (default), onnxruntime or openvino (both on the CPU; exported once and cached "
                             "next to the checkpoint)")
    parser.add_argument("--precision", default="fp32", choices=precisions,
                        help="fp32; int8 (onnxruntime/openvino, with --calibrate); fp16/bf16 (torch autocast)")
    parser.add_argument("--calibrate", default=None, metavar="SOURCE", help=CALIBRATE_HELP)
    parser.add_argument("--threads", type=int, default=None, help="runtime threads (default: torch's)")


def add_commands(subparsers: Any) -> None:
    from ..engine.commands import add_set

    export = subparsers.add_parser(
        "export", help="export to ONNX or OpenVINO (float32 or int8), checked against PyTorch",
        description="Export a model to ONNX (onnxruntime) or OpenVINO IR, float32 or int8 (static QDQ "
                    "quantization calibrated on --calibrate images), with dynamic batch and image size unless "
                    "--static. Prints the parity with eager PyTorch, the operators int8 keeps in float32, and with "
                    "--eval the val metrics under both. A detector exports its backbone (RPN and RoI heads stay in "
                    "PyTorch).")
    export.add_argument("arch", nargs="?", default=None,
                        help="registered variant, e.g. hrnet_w18 (omit with --checkpoint of a run)")
    export.add_argument("--task", default="classification", choices=model_tasks(include_backbone=False), metavar="TASK")
    export.add_argument("--num-classes", type=int, default=None, help="classes, or keypoints for pose")
    export.add_argument("--head", default=None, choices=head_options(), metavar="HEAD",
                        help="segmentation head (default HRNetV2)")
    export.add_argument("--checkpoint", default=None,
                        help="weights (official, timm, mm*, hrnet) for ARCH, or a run's best.pth / last.pth alone")
    export.add_argument("--config", "-c", default=None, help="recipe (default: the one saved in a run checkpoint)")
    add_set(export)
    export.add_argument("--format", default="onnx", choices=tuple(FORMATS),
                        help="onnx (checked with onnxruntime) or openvino (IR .xml/.bin, checked with OpenVINO)")
    export.add_argument("--int8", action="store_true", help="static int8 quantization (needs --calibrate)")
    export.add_argument("--calibrate", default=None, metavar="SOURCE", help=CALIBRATE_HELP)
    export.add_argument("--calibration-limit", type=int, default=32, help="at most this many calibration images")
    export.add_argument("--eval", action="store_true", help="also evaluate eager and runtime on the recipe's val set")
    export.add_argument("--output", "-o", required=True, help="the .onnx (or OpenVINO .xml) file to write")
    export.add_argument("--input", type=parse_size, default=None,
                        help="HxW: the calibration size, and with --static the only size the export takes")
    export.add_argument("--static", action="store_true", help="fix H and W at --input (N stays dynamic)")
    export.add_argument("--threads", type=int, default=None, help="runtime threads for the checks")
    export.add_argument("--exporter", default="torchscript", choices=("torchscript", "dynamo"),
                        help="ONNX exporter: torchscript (fast, default) or dynamo (torch.export)")
    export.add_argument("--opset", type=int, default=17, help=argparse.SUPPRESS)
    export.add_argument("--no-check", action="store_true", help="skip the comparison with PyTorch")
    export.set_defaults(func=_cmd_export)
