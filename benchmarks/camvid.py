"""CamVid benchmark: train a small HRNetV2 from scratch with a CamVid recipe, evaluate on val.

    python benchmarks/camvid.py [--root ../shared/data/camvid] [--recipe RECIPE] [--minutes 120]
                                [--clock process] [--hold-out 0006R0_] [--out-dir runs/camvid-bench]
                                [--threads 1] [--set KEY=VALUE ...]

`--minutes` is the recipe key `train.time_budget_minutes`: the engine measures the step time on a
few steps and runs the schedule (poly) over as many steps as fit the budget. `--clock process`
(the default here) counts this process's CPU time, which on a machine shared with other jobs is
the time the benchmark itself used; use `wall` on a machine of your own (and `train.workers: 0`
keeps data loading inside the counted process either way).

Protocols: the val split (101 frames of sequence 0016E5, whose other frames are in the train
split), or with `--hold-out PREFIX` a whole train sequence held out (`data.val_groups`), trained on
the rest: new scenes. CamVid's train split holds 0001TP (62 frames), 0006R0 (101) and 0016E5 (204).

Prints and writes OUT_DIR/benchmark.json: mIoU (official formula and NaN-excluded) with the
recipe's test settings and re-evaluated without flip and with flip + scales, per-class IoU, pixel
accuracy, steps, the plan's step time, wall and CPU minutes, peak memory and the machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "segmentation" / "camvid_hrnet_w18_small_v1.yaml"
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "camvid"
THIN = ("pole", "sign symbol", "pedestrian", "bicyclist")
# Test-time settings re-evaluated on the final model: (name, data overrides).
VARIANTS = (("single scale, no flip", ["data.test_flip=false", "data.test_scales=[1.0]"]),
            ("single scale, flip", ["data.test_flip=true", "data.test_scales=[1.0]"]),
            ("scales 0.75-1.5, flip", ["data.test_flip=true", "data.test_scales=[0.75, 1.0, 1.25, 1.5]"]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(DEFAULT_ROOT), help="CamVid folder (train.txt, val.txt, ...)")
    parser.add_argument("--recipe", default=str(RECIPE))
    parser.add_argument("--minutes", type=float, default=None,
                        help="training time budget, train.time_budget_minutes (default: the recipe's)")
    parser.add_argument("--clock", choices=("wall", "process"), default="process", help="train.budget_clock")
    parser.add_argument("--hold-out", default=None, metavar="PREFIX",
                        help="evaluate on this train sequence, held out of training (data.val_groups)")
    parser.add_argument("--out-dir", default="runs/camvid-bench")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="recipe overrides")
    return parser.parse_args(argv)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    return max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def cpu_minutes() -> float:
    """CPU time of this process and its finished children (DataLoader workers), in minutes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime) / 60


def evaluate_variants(checkpoint: Path, overrides: list[str]) -> dict[str, dict[str, float]]:
    """The checkpoint's val metrics under each of VARIANTS' test settings."""
    from hrnet.engine import build_loader, evaluate, load_for_inference

    device = torch.device("cpu")
    results = {}
    for name, settings in VARIANTS:
        config, task, model = load_for_inference(checkpoint, None, [*overrides, *settings], device)
        loader, _ = build_loader(task, config, "val", device)
        print(f"evaluating the final model: {name}", file=sys.stderr, flush=True)
        results[name] = evaluate(model, task, loader, device, every_seconds=60.0)
    return results


def main(argv: list[str] | None = None) -> int:
    from hrnet.engine import fit, load_config

    args = parse_args(argv)
    if not (Path(args.root) / "train.txt").is_file():
        print(f"CamVid not found at {args.root} (needs train.txt, val.txt, train/, trainannot/, ...)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    overrides = [f"data.root={args.root}", f"train.budget_clock={args.clock}", *args.set]
    if args.minutes is not None:
        overrides.append(f"train.time_budget_minutes={args.minutes}")
    if args.hold_out:
        overrides.append(f"data.val_groups=[{args.hold_out}]")
    config = load_config(args.recipe, overrides)
    load_start = os.getloadavg()
    started, cpu_started = time.perf_counter(), cpu_minutes()
    summary = fit(config, args.out_dir)
    wall, cpu = time.perf_counter() - started, cpu_minutes() - cpu_started
    load_end = os.getloadavg()
    metrics = summary["metrics"]
    device = torch.device("cuda" if torch.cuda.is_available() and config.train.device != "cpu" else "cpu")
    data_overrides = [o for o in overrides if o.startswith("data.")]
    variants = evaluate_variants(Path(args.out_dir) / "last.pth", data_overrides)
    plan = summary.get("budget") or {}
    result = {
        "recipe": str(args.recipe), "overrides": overrides, "arch": config.model.arch,
        "protocol": f"held-out train sequence {args.hold_out}" if args.hold_out else "val split",
        "test": {"flip": config.data.test_flip, "scales": list(config.data.test_scales)},
        "ema": config.train.ema is not None, "epochs": summary["epoch"], "steps": summary["step"],
        "planned_step_seconds": plan.get("step_seconds"), "budget_clock": plan.get("clock"),
        "threads": torch.get_num_threads(), "wall_minutes": round(wall / 60, 1), "cpu_minutes": round(cpu, 1),
        "peak_memory_mb": round(peak_memory_mb(device), 1),
        "load_average_start": [round(v, 2) for v in load_start], "load_average_end": [round(v, 2) for v in load_end],
        "val_mIoU": metrics.get("mIoU"), "val_mIoU_present": metrics.get("mIoU_present"),
        "val_pixel_acc": metrics.get("pixel_acc"), "val_mean_acc": metrics.get("mean_acc"),
        "per_class_IoU": {k[4:]: v for k, v in metrics.items() if k.startswith("IoU/")},
        "test_variants": {name: {"mIoU": m["mIoU"], **{f"IoU/{c}": m[f"IoU/{c}"] for c in THIN}}
                          for name, m in variants.items()},
        "best": summary["best"],
    }
    Path(args.out_dir, "benchmark.json").write_text(json.dumps(result, indent=2))
    print_report(result)
    print(f"written {Path(args.out_dir, 'benchmark.json')}")
    return 0


def print_report(result: dict) -> None:
    print(f"CamVid {result['protocol']}, {result['arch']} from scratch: {result['steps']} steps ({result['epochs']} "
          f"epochs) at {result['planned_step_seconds'] or float('nan'):.2f} s/step ({result['budget_clock']} clock), "
          f"{result['wall_minutes']} min wall, {result['cpu_minutes']} min CPU, peak memory "
          f"{result['peak_memory_mb']:.0f} MB, load (5 min) {result['load_average_start'][1]} -> "
          f"{result['load_average_end'][1]}")
    print(f"mIoU {result['val_mIoU']:.2f} (official formula, test {result['test']}); NaN-excluded "
          f"{result['val_mIoU_present']:.2f}; pixel acc {result['val_pixel_acc']:.2f}, "
          f"mean acc {result['val_mean_acc']:.2f}")
    print("| test | mIoU | " + " | ".join(THIN) + " |\n|---|---|" + "---|" * len(THIN))
    for name, values in result["test_variants"].items():
        print(f"| {name} | {values['mIoU']:.2f} | " + " | ".join(f"{values[f'IoU/{c}']:.1f}" for c in THIN) + " |")
    print("| class | IoU |\n|---|---|")
    for name, value in result["per_class_IoU"].items():
        print(f"| {name} | {value:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
