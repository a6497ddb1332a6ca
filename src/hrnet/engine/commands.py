"""`hrnet train`, `hrnet eval` and `hrnet predict`."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("hrnet")


def _overrides(args: argparse.Namespace) -> list[str]:
    return [item for group in (args.set or []) for item in group]


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="append", nargs="+", metavar="KEY=VALUE",
                        help="override recipe values, e.g. --set optimizer.lr=0.01 train.epochs=2 (repeatable)")


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .trainer import config_from_checkpoint, fit, load_run_checkpoint

    overrides = _overrides(args)
    if args.config is None:
        if not (args.resume and args.out_dir):
            raise ValueError("--config RECIPE is required (or --resume --out-dir DIR of an existing run)")
        last = Path(args.out_dir) / "last.pth"
        config = config_from_checkpoint(load_run_checkpoint(last), overrides, str(last))
    else:
        config = load_config(args.config, overrides)
    out_dir = args.out_dir or os.path.join("runs", Path(args.config).stem)
    summary = fit(config, out_dir, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        best = summary["best"]
        best_text = f"; best {best['metric']} {best['value']:.4f} at epoch {best['epoch']}" if best else ""
        print(f"trained {summary['step']} steps ({summary['epoch']} complete epochs){best_text}; run in {out_dir}")
    return 0


def load_for_inference(checkpoint: str, config_path: str | None, overrides: list[str], device: Any):
    """(config, task, model on device in eval mode) from a run checkpoint, or from official/timm
    weights plus a recipe."""
    from ..checkpoints import CheckpointError
    from ..tasks import get_task
    from .config import load_config
    from .trainer import CHECKPOINT_FORMAT, config_from_checkpoint, load_run_checkpoint

    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    state = None
    if path.suffix != ".safetensors":
        try:
            state = load_run_checkpoint(path)
        except CheckpointError:
            raise
        except ValueError:
            pass  # official or timm weights
    if state is not None:
        config = load_config(config_path, overrides) if config_path else config_from_checkpoint(state, overrides, str(path))
        config.model.pretrained = None
        task = get_task(config.task)(config)
        model = task.build_model()
        model.load_state_dict(state["model"])
    else:
        if not config_path:
            raise ValueError(f"{path} holds weights only (not an hrnet training checkpoint of format "
                             f"{CHECKPOINT_FORMAT}): pass --config RECIPE to say which task and model they are for")
        config = load_config(config_path, overrides)
        config.model.pretrained = str(path)
        task = get_task(config.task)(config)
        model = task.build_model()
    model.to(device).eval()
    return config, task, model


def _cmd_eval(args: argparse.Namespace) -> int:
    from . import distributed as dist_utils
    from .trainer import build_loader, evaluate, progress_enabled

    device = dist_utils.resolve_device(args.device)
    created = dist_utils.setup(device)
    try:
        config, task, model = load_for_inference(args.checkpoint, args.config, _overrides(args), device)
        if args.split != "val":
            raise ValueError("only --split val is supported")
        loader, _ = build_loader(task, config, args.split, device)
        metrics = evaluate(model, task, loader, device, amp=config.train.amp if config.eval.amp else "none",
                           show_progress=progress_enabled(config))
    finally:
        dist_utils.teardown(created)
    if dist_utils.rank() == 0 and int(os.environ.get("RANK", "0")) == 0:
        if args.json:
            print(json.dumps(metrics))
        else:
            for key, value in metrics.items():
                print(f"{key}: {value:.4f}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from ..data.io import expand_inputs
    from . import distributed as dist_utils

    device = dist_utils.resolve_device(args.device)
    inputs = expand_inputs(args.inputs)
    if not inputs:
        raise ValueError(f"no images found in {' '.join(args.inputs)}")
    checkpoint = args.pose or args.checkpoint
    if checkpoint is None:
        raise ValueError("predict needs --checkpoint CKPT (or --pose POSE_CKPT with --detector DET_CKPT)")
    config, task, model = load_for_inference(checkpoint, args.config, _overrides(args), device)
    out_dir = Path(args.out_dir)
    options: dict[str, Any] = {"top_k": args.top_k} if args.top_k is not None else {}
    if args.detector:
        if config.task != "pose":
            raise ValueError(f"--detector gives person boxes to a pose model, but {checkpoint} is a {config.task} model")
        from ..tasks.detection.task import load_person_detector

        # The pose task applies its own box score threshold (data.predict.box_score_threshold).
        options["detector"] = load_person_detector(args.detector, device=device, score_threshold=0.0)
    predictions = task.predict(model, inputs, out_dir, **options)
    formatter = getattr(task, "format_prediction", None)
    for prediction in predictions:
        text = formatter(prediction) if formatter else json.dumps(prediction.outputs)
        print(f"{prediction.source}: {text}")
    print(f"results in {out_dir}")
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
    evaluate.set_defaults(func=_cmd_eval)

    predict = subparsers.add_parser("predict", help="run a checkpoint on images and folders",
                                    description="Predict on image files and folders (searched recursively); "
                                                "prints one line per image and writes pictures and results "
                                                "into --out-dir.")
    predict.add_argument("inputs", nargs="+", help="images, folders (or videos, where the task supports them)")
    model_choice = predict.add_mutually_exclusive_group(required=True)
    model_choice.add_argument("--checkpoint", help="best.pth / last.pth of a run, or official weights")
    model_choice.add_argument("--pose", help="a pose checkpoint (same as --checkpoint), usually with --detector")
    predict.add_argument("--detector", default=None,
                         help="a detection run checkpoint whose person boxes feed the pose model (top-down)")
    predict.add_argument("--config", "-c", default=None, help="recipe (default: the one saved in the checkpoint)")
    _add_set(predict)
    predict.add_argument("--out-dir", "-o", default="predictions", help="where pictures and results go")
    predict.add_argument("--top-k", type=int, default=None, help="classification: how many classes to print (5)")
    predict.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    predict.set_defaults(func=_cmd_predict)
