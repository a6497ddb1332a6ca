"""`hrnet predict`: the command line over `hrnet.Predictor` and `write_predictions`.

    hrnet predict --checkpoint runs/x/best.pth photos/ clip.mp4 --out-dir out
    hrnet predict --weights hrnet_w32.coco_256x192 photo.jpg --detector runs/det/best.pth
    hrnet predict --checkpoint runs/pose/best.pth --webcam 0 --max-frames 300 --out-dir out
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from ..engine.commands import add_set
from ..errors import EXIT_FAILED, ConfigError


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--option needs NAME=VALUE (e.g. --option flip_test=false), got {text!r}")
    return key.strip(), yaml.safe_load(value) if value.strip() else ""


def _predictor(args: argparse.Namespace):
    from .predictor import Predictor

    source = args.weights or args.pose or args.checkpoint
    options = dict(args.option or [])
    if args.top_k is not None:
        options["top_k"] = args.top_k
    return Predictor(source, config=args.config, overrides=list(args.set or []), device=args.device,
                     runtime=args.runtime, precision=args.precision, batch_size=args.batch_size,
                     workers=args.workers, detector=args.detector, **options)


def _cmd_predict(args: argparse.Namespace) -> int:
    from .writer import write_predictions

    if not args.inputs and args.webcam is None:
        raise ConfigError("give images, folders or videos to predict on (or --webcam N)")
    predictor = _predictor(args)
    inputs = list(args.inputs)
    summary = write_predictions(predictor, inputs, args.out_dir, strict=args.strict, max_frames=args.max_frames,
                                on_line=print) if inputs else None
    if args.webcam is not None:
        _webcam(predictor, args)
    print(f"results in {args.out_dir}")
    if summary is not None and summary.failures:
        print(f"{len(summary.failures)} of {len(summary.failures) + len(summary.predictions)} input(s) failed:",
              file=sys.stderr)
        for name, message in summary.failures:
            print(f"  {name}: {message}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _webcam(predictor: Any, args: argparse.Namespace) -> None:
    import json
    from pathlib import Path

    from .results import write_atomic

    out = Path(args.out_dir)
    stream = predictor.stream(args.webcam, max_frames=args.max_frames)
    records = stream.save(out / f"webcam{args.webcam}.mp4")
    write_atomic(out / f"webcam{args.webcam}.json", lambda tmp: Path(tmp).write_text(json.dumps(records)))
    print(f"webcam {args.webcam}: {len(records)} frames -> {out / f'webcam{args.webcam}.mp4'}")


def add_commands(subparsers: Any) -> None:
    predict = subparsers.add_parser(
        "predict", help="predict on images, folders, videos or a webcam",
        description="Predict with a run checkpoint, a weights name or weights + recipe on image files, folders "
                    "(searched recursively for images and videos), videos or a webcam. Prints one line per input, "
                    "writes pictures (a PNG per image, an MP4 per video) and the task's results file into "
                    "--out-dir, goes on past files that cannot be read and lists them at the end (exit code 1).")
    predict.add_argument("inputs", nargs="*", help="images, folders or videos")
    model = predict.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", help="best.pth / last.pth of a run, or weights of any known layout (+ --config)")
    model.add_argument("--weights", help="a registered weights name (hrnet weights list)")
    model.add_argument("--pose", help="a pose checkpoint (same as --checkpoint), usually with --detector")
    predict.add_argument("--detector", default=None,
                         help="pose: a detection checkpoint or weights name whose person boxes feed the pose model")
    predict.add_argument("--config", "-c", default=None, help="recipe (default: the one saved in the checkpoint)")
    add_set(predict)
    predict.add_argument("--option", action="append", type=_option, metavar="NAME=VALUE",
                         help="an inference setting of the task, e.g. --option flip_test=false (repeat for more)")
    predict.add_argument("--out-dir", "-o", default="predictions", help="where pictures and results go")
    predict.add_argument("--top-k", type=int, default=None, help="classification: how many classes to print (5)")
    predict.add_argument("--webcam", type=int, default=None, metavar="N", help="also stream webcam N into the folder")
    predict.add_argument("--max-frames", type=int, default=None, help="stop videos and the webcam after N frames")
    predict.add_argument("--batch-size", type=int, default=8, help="pictures per forward pass")
    predict.add_argument("--workers", type=int, default=0, help="DataLoader workers reading and preparing pictures")
    predict.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    predict.add_argument("--runtime", default="torch", choices=("torch", "onnxruntime", "openvino"))
    predict.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"))
    predict.add_argument("--strict", action="store_true", help="stop at the first input that fails")
    predict.set_defaults(func=_cmd_predict)
