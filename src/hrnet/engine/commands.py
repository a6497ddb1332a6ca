"""`hrnet train` and `hrnet eval` (`hrnet predict` is in `hrnet.inference.commands`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("hrnet")


def _overrides(args: argparse.Namespace) -> list[str]:
    return list(args.set or [])


def add_set(parser: argparse.ArgumentParser) -> None:
    """`--set KEY=VALUE`, one override per flag (repeat it), so it never swallows an input path."""
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", type=_key_value,
                        help="override a recipe value, e.g. --set optimizer.lr=0.01 (repeat for more)")


def _key_value(text: str) -> str:
    if "=" not in text or not text.split("=", 1)[0].strip():
        raise argparse.ArgumentTypeError(f"--set needs KEY=VALUE (e.g. --set train.epochs=2), got {text!r}")
    return text


_add_set = add_set


def _cmd_train(args: argparse.Namespace) -> int:
    import sys

    from .config import load_config
    from .interrupt import TrainingInterrupted
    from .runs import config_from_checkpoint, load_run_checkpoint
    from .progress import summary_line
    from .trainer import check_run_dir, fit

    overrides = _overrides(args)
    if args.config is None:
        if not (args.resume and args.out_dir):
            raise ValueError("--config RECIPE is required (or --resume --out-dir DIR of an existing run)")
        last = check_run_dir(Path(args.out_dir), resume=True)  # one clear line when there is no last.pth
        config = config_from_checkpoint(load_run_checkpoint(last), overrides, str(last))
    else:
        config = load_config(args.config, overrides)
    out_dir = args.out_dir or os.path.join("runs", Path(args.config).stem)
    try:
        summary = fit(config, out_dir, resume=args.resume)
    except TrainingInterrupted as error:  # Ctrl-C: one line saying what is saved and how to resume
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"hrnet train: {error}", file=sys.stderr, flush=True)
        return error.exit_code
    if int(os.environ.get("RANK", "0")) == 0:
        print(summary_line(summary, out_dir))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from . import distributed as dist_utils
    from .runs import load_for_inference
    from .progress import progress_enabled
    from .trainer import build_loader, evaluate

    on_runtime = args.runtime != "torch" or args.precision != "fp32"
    # onnxruntime and OpenVINO run on the CPU: inputs go there.
    device = dist_utils.resolve_device(args.device if args.runtime == "torch" else "cpu")
    created = dist_utils.setup(device)
    try:
        config, task, model = load_for_inference(args.checkpoint, args.config, _overrides(args), device)
        if args.split != "val":
            raise ValueError("only --split val is supported")
        if on_runtime:
            from ..runtime.commands import runtime_for_eval

            model = runtime_for_eval(model, config, args)
        loader, _ = build_loader(task, config, args.split, device)
        amp = config.train.amp if config.eval.amp and not on_runtime else "none"
        metrics = evaluate(model, task, loader, device, amp=amp, show_progress=progress_enabled(config))
    finally:
        dist_utils.teardown(created)
    if dist_utils.rank() == 0 and int(os.environ.get("RANK", "0")) == 0:
        if args.json:
            print(json.dumps(metrics))
        else:
            for key, value in metrics.items():
                print(f"{key}: {value:.4f}")
    return 0


def add_commands(subparsers: Any) -> None:
    train = subparsers.add_parser("train", help="train a recipe (alone, or under torchrun for DDP)",
                                  description="Train a recipe into a run directory (config.yaml, log.jsonl, "
                                              "last.pth, best.pth, curves.png). Under `torchrun "
                                              "--nproc_per_node=N -m hrnet train ...` it runs DDP.")
    train.add_argument("--config", "-c", default=None, help="recipe YAML (e.g. recipes/classification/hrnet_w18.yaml)")
    _add_set(train)
    train.add_argument("--out-dir", "-o", default=None, help="run directory (default runs/<recipe name>)")
    train.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pth when it exists")
    train.set_defaults(func=_cmd_train)

    evaluate = subparsers.add_parser("eval", help="evaluate a checkpoint on the recipe's val set",
                                     description="Evaluate a checkpoint. A training checkpoint carries its recipe; "
                                                 "official weights need --config.")
    evaluate.add_argument("--checkpoint", required=True, help="best.pth / last.pth of a run, or official weights")
    evaluate.add_argument("--config", "-c", default=None, help="recipe (default: the one saved in the checkpoint)")
    _add_set(evaluate)
    evaluate.add_argument("--split", default="val", help="data split (val)")
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    from ..runtime.commands import add_runtime_arguments

    add_runtime_arguments(evaluate)
    evaluate.set_defaults(func=_cmd_eval)

