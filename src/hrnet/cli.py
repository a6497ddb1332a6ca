"""The `hrnet` command line: list, info, export, and the engine's train / eval / predict, and demo."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Callable, Sequence

# Modules that add sub-commands: each has `add_commands(subparsers)`, and each sub-command parser
# sets `func` (args -> exit code). Imported only when the command line is built.
COMMAND_MODULES = ("hrnet.engine.commands", "hrnet.tasks.segmentation.demo")


def _parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--input must look like HxW (e.g. 224x224), got {text!r}") from None
    return height, width


def _cmd_list(args: argparse.Namespace) -> int:
    from . import list_models
    from .complexity import count_parameters
    from .models import create_model
    import torch

    print(f"{'model':<22}{'params (classification)':>26}")
    for name in list_models():
        with torch.device("meta"):
            params = count_parameters(create_model(name))
        print(f"{name:<22}{params / 1e6:>25.1f}M")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .complexity import describe

    print(describe(args.arch, task=args.task, input_size=args.input, num_classes=args.num_classes, head=args.head))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_onnx
    from .models import create_model

    model = create_model(args.arch, task=args.task, num_classes=args.num_classes, head=args.head,
                         checkpoint=args.checkpoint)
    report = export_onnx(model, args.output, input_size=args.input, opset=args.opset, check=not args.no_check)
    print(report)
    return 0


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("arch", help="registered variant, e.g. hrnet_w32 (see `hrnet list`)")
    parser.add_argument("--task", default="classification", choices=("classification", "pose", "segmentation"),
                        help="detection models: see `hrnet train` recipes under recipes/detection")
    parser.add_argument("--num-classes", type=int, default=None, help="classes, or keypoints for pose")
    parser.add_argument("--head", default=None, choices=("ocr",), help="segmentation head (default HRNetV2)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hrnet", description="High-Resolution Networks: models, training, export")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("list", help="registered variants").set_defaults(func=_cmd_list)

    info = sub.add_parser("info", help="parameters and multiply-adds of a model")
    _add_model_arguments(info)
    info.add_argument("--input", type=_parse_size, default=None, help="HxW (default: the task's official size)")
    info.set_defaults(func=_cmd_info)

    export = sub.add_parser("export", help="export to ONNX (dynamic batch, height, width) and check with onnxruntime")
    _add_model_arguments(export)
    export.add_argument("--checkpoint", default=None, help="weights to load (official, timm or hrnet)")
    export.add_argument("--output", "-o", required=True, help="the .onnx file to write")
    export.add_argument("--input", type=_parse_size, default=(256, 256), help="HxW of the example input")
    export.add_argument("--opset", type=int, default=18)
    export.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    export.set_defaults(func=_cmd_export)

    for name in COMMAND_MODULES:
        add_commands: Callable = importlib.import_module(name).add_commands
        add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as error:
        # Bad input (a recipe key, a file, a checkpoint): one clear line, no traceback.
        print(f"hrnet {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
