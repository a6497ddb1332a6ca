"""CamVid benchmark: train a small HRNetV2 from scratch with the CamVid recipe, evaluate on val.

    python benchmarks/camvid.py [--root ../shared/data/camvid] [--minutes 120] [--out-dir runs/camvid-bench]
                                [--threads N] [--set KEY=VALUE ...]

With `--minutes`, the number of epochs is chosen so that training fits the budget on this machine
(the step time is measured first; the poly schedule then runs to zero within the budget). Prints
and writes (OUT_DIR/benchmark.json) the val mIoU (official formula and NaN-excluded), per-class IoU,
pixel accuracy, wall time and peak memory.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "segmentation" / "camvid_hrnet_w18_small_v1.yaml"
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "camvid"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(DEFAULT_ROOT), help="CamVid folder (train.txt, val.txt, ...)")
    parser.add_argument("--recipe", default=str(RECIPE))
    parser.add_argument("--minutes", type=float, default=None,
                        help="training time budget (default: the recipe's epochs)")
    parser.add_argument("--out-dir", default="runs/camvid-bench")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the faster of N and 1)")
    parser.add_argument("--evals", type=int, default=3, help="evaluations during training (the last one included)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="recipe overrides")
    return parser.parse_args(argv)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def budget_epochs(config, minutes: float, threads: int | None) -> int:
    """Epochs that fit `minutes` of training (evaluations not counted) at the measured step time."""
    from hrnet.tasks.segmentation.demo import fastest_threads, measure_step_seconds

    if threads:
        step = measure_step_seconds(config)
    else:
        step = fastest_threads(config)
    from hrnet.tasks import get_task

    steps_per_epoch = len(get_task(config.task)(config).build_dataset("train")) // config.train.batch_size
    epochs = max(1, math.floor(minutes * 60 / (step * steps_per_epoch)))
    print(f"{step:.2f}s per step with {torch.get_num_threads()} thread(s), {steps_per_epoch} steps per epoch: "
          f"{epochs} epochs fit {minutes:g} minutes", flush=True)
    return epochs


def main(argv: list[str] | None = None) -> int:
    from hrnet.engine import fit, load_config

    args = parse_args(argv)
    if not (Path(args.root) / "train.txt").is_file():
        print(f"CamVid not found at {args.root} (needs train.txt, val.txt, train/, trainannot/, ...)", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = [f"data.root={args.root}", *args.set]
    config = load_config(args.recipe, overrides)
    if args.minutes is not None:
        config.train.epochs = budget_epochs(config, args.minutes, args.threads)
    config.eval.every = max(1, config.train.epochs // max(1, args.evals))
    started = time.perf_counter()
    summary = fit(config, args.out_dir)
    wall = time.perf_counter() - started
    metrics = summary["metrics"]
    device = torch.device("cuda" if torch.cuda.is_available() and config.train.device != "cpu" else "cpu")
    result = {
        "recipe": str(args.recipe), "overrides": overrides, "arch": config.model.arch,
        "epochs": summary["epoch"], "steps": summary["step"], "threads": torch.get_num_threads(),
        "wall_seconds": round(wall, 1), "peak_memory_mb": round(peak_memory_mb(device), 1),
        "val_mIoU": metrics.get("mIoU"), "val_mIoU_present": metrics.get("mIoU_present"),
        "val_pixel_acc": metrics.get("pixel_acc"), "val_mean_acc": metrics.get("mean_acc"),
        "per_class_IoU": {k[4:]: v for k, v in metrics.items() if k.startswith("IoU/")},
        "best": summary["best"],
    }
    Path(args.out_dir, "benchmark.json").write_text(json.dumps(result, indent=2))
    print(f"CamVid val, {config.model.arch} from scratch, {summary['epoch']} epochs / "
          f"{summary['step']} steps in {wall / 60:.1f} min, peak memory {result['peak_memory_mb']:.0f} MB")
    print(f"mIoU {result['val_mIoU']:.2f} (official formula: a class absent from ground truth and prediction counts "
          f"0), {result['val_mIoU_present']:.2f} NaN-excluded; pixel acc {result['val_pixel_acc']:.2f}, "
          f"mean acc {result['val_mean_acc']:.2f}")
    print("| class | IoU |\n|---|---|")
    for name, value in result["per_class_IoU"].items():
        print(f"| {name} | {value:.2f} |")
    print(f"written {Path(args.out_dir, 'benchmark.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
