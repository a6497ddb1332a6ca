"""The `hrnet` command line: list, info, export, and the engine's train / eval, predict, weights, demo.

Every error the library can explain is an `hrnet.errors.HRNetError`: it is printed as one line and
the command exits with its kind's code (see `hrnet.errors`); a traceback appears only with `-v`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Any, Callable, Sequence

from .cli_args import head_options, model_tasks, parse_size

# Modules that add sub-commands: each has `add_commands(subparsers)`, and each sub-command parser
# sets `func` (args -> exit code). Imported only when the command line is built.
COMMAND_MODULES = ("hrnet.engine.commands", "hrnet.inference.commands", "hrnet.runtime.commands",
                   "hrnet.weights.commands")


def _cmd_list(args: argparse.Namespace) -> int:
    from .spec import LIST_PARAMETERS, VARIANTS

    print(f"{'model':<28}{'family':<12}{'params':>9}  with")
    for name in sorted(VARIANTS):
        task, params = LIST_PARAMETERS[name]
        family = "Lite-HRNet" if VARIANTS[name].stem == "shuffle" else "HRNet"
        head = "the ImageNet classifier" if task == "classification" else "the 17-keypoint pose head"
        print(f"{name:<28}{family:<12}{params / 1e6:>8.1f}M  {head}")
    print("sizes for a task and input: hrnet info NAME --task TASK --input HxW; published weights: hrnet weights list")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .complexity import describe

    print(describe(args.arch, task=args.task, input_size=args.input, num_classes=args.num_classes, head=args.head))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .tasks.segmentation.demo import demo_command

    return demo_command(out_dir=args.out_dir, minutes=args.minutes, epochs=args.epochs, size=args.size,
                        train_images=args.train_images, val_images=args.val_images, seed=args.seed,
                        threads=args.threads)


def _add_demo(sub: Any) -> None:
    demo = sub.add_parser(
        "demo", help="generate a small dataset, train, evaluate and draw a segmentation model (no data needed)",
        description="Train a small HRNetV2 on synthetic scenes drawn by the package, evaluate its mIoU and write "
                    "overlays and the loss curve: the whole pipeline in about two minutes on a CPU.")
    demo.add_argument("--out-dir", "-o", default="hrnet-demo", help="where data, run and pictures go")
    demo.add_argument("--minutes", type=float, default=2.0, help="training time budget (default 2)")
    demo.add_argument("--epochs", type=int, default=None, help="train exactly this many epochs (ignores --minutes)")
    demo.add_argument("--size", type=int, default=96, help="scene size in pixels")
    demo.add_argument("--train-images", type=int, default=320)
    demo.add_argument("--val-images", type=int, default=64)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--threads", type=int, default=None,
                      help="CPU threads for torch (default: torch's choice; 1 is faster on a busy machine)")
    demo.set_defaults(func=_cmd_demo)


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("arch", help="registered variant, e.g. hrnet_w32 (see `hrnet list`)")
    parser.add_argument("--task", default="classification", choices=model_tasks(), metavar="TASK",
                        help="the model's task: classification, pose, segmentation, ... (default classification)")
    parser.add_argument("--num-classes", type=int, default=None, help="classes, or keypoints for pose")
    parser.add_argument("--head", default=None, choices=head_options(), metavar="HEAD",
                        help="a task's other head, e.g. ocr (default: the task's own)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hrnet", description="High-Resolution Networks: models, training, export")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("list", help="registered variants").set_defaults(func=_cmd_list)

    info = sub.add_parser("info", help="parameters and multiply-adds of a model")
    _add_model_arguments(info)
    info.add_argument("--input", type=parse_size, default=None, help="HxW (default: the task's official size)")
    info.set_defaults(func=_cmd_info)


    _add_demo(sub)
    for name in COMMAND_MODULES:
        add_commands: Callable = importlib.import_module(name).add_commands
        add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        hint = " (--set takes one KEY=VALUE: repeat --set for each)" if any("=" in e for e in extra) else ""
        parser.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    return run_command(args.func, args, command=args.command, verbose=args.verbose)


def run_command(func: Callable, args: argparse.Namespace, *, command: str, verbose: bool) -> int:
    """Run a sub-command, turning every failure into one line on stderr and an exit code."""
    from .errors import EXIT_BUG, EXIT_INTERRUPTED, EXIT_OS, HRNetError, os_error_message

    try:
        return int(func(args) or 0)
    except HRNetError as error:
        return _fail(command, str(error), error.exit_code, verbose)
    except KeyboardInterrupt:
        return _fail(command, "interrupted", EXIT_INTERRUPTED, verbose)
    except OSError as error:
        return _fail(command, os_error_message(error), EXIT_OS, verbose)
    except (ValueError, FileNotFoundError) as error:  # bad input from code that predates HRNetError
        return _fail(command, str(error), 2, verbose)
    except Exception as error:  # noqa: BLE001 - a bug: say so, and how to report it
        message = (f"internal error {type(error).__name__}: {error}. This is a bug in hrnet; rerun with -v for the "
                   "traceback and report it")
        return _fail(command, message, EXIT_BUG, verbose)


def _fail(command: str, message: str, code: int, verbose: bool) -> int:
    if verbose:
        import traceback

        traceback.print_exc()
    print(f"hrnet {command}: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
