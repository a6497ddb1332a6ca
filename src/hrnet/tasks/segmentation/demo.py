"""`hrnet demo`: the whole segmentation pipeline on data the package draws itself.

    hrnet demo [--out-dir hrnet-demo] [--minutes 2]

1. writes a small labelled dataset of synthetic scenes (`synthetic.py`) in the generic layout;
2. writes a recipe for a small HRNetV2 and trains it with the engine (`hrnet train`'s code path),
   for as many epochs as fit the time budget on this machine (measured on a few steps first);
3. evaluates it (mIoU printed; `MIOU_FLOOR` is what a default run reaches at least);
4. writes overlays of val predictions next to the ground truth, and the loss curve;
5. prints where everything is and the commands that do the same on real data.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

log = logging.getLogger("hrnet")

# Val mIoU (percent, official formula) a demo run reaches at least: MIOU_FLOOR with the defaults (at
# least MIN_STEPS steps; measured: 62.5 after 280 steps on a busy 2-core machine, more steps on a
# faster one); MIOU_FLOOR_SHORT with the short setting the tests use (`--epochs 6 --train-images 160
# --size 64`, 120 steps; measured: 37).
MIOU_FLOOR = 50.0
MIOU_FLOOR_SHORT = 25.0
DEMO_BATCH = 8
MIN_STEPS = 250
# A small HRNetV2: the four stages of HRNet with one module and one block per branch, widths 16-128.
DEMO_STAGES = [
    {"modules": 1, "block": "bottleneck", "blocks": [1], "channels": [16]},
    {"modules": 1, "block": "basic", "blocks": [1, 1], "channels": [16, 32]},
    {"modules": 1, "block": "basic", "blocks": [1, 1, 1], "channels": [16, 32, 64]},
    {"modules": 1, "block": "basic", "blocks": [1, 1, 1, 1], "channels": [16, 32, 64, 128]},
]


def demo_recipe(data_root: Path, *, size: int, epochs: int, batch_size: int = DEMO_BATCH,
                seed: int = 0) -> dict[str, Any]:
    """The recipe the demo trains: the same keys as recipes/segmentation/*.yaml."""
    return {
        "task": "segmentation",
        "model": {"arch": "hrnet_w18_small_v1", "stages": DEMO_STAGES, "stem_channels": 32},
        "data": {"format": "generic", "root": str(data_root), "classes": "classes.txt",
                 "crop_size": [size, size], "base_size": None, "scale_range": [0.75, 1.5]},
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 5.0e-4},
        "schedule": {"name": "poly", "power": 0.9},
        "train": {"epochs": epochs, "batch_size": batch_size, "workers": 0, "seed": seed, "log_every": 5},
        "eval": {"every": max(1, epochs // 4), "batch_size": 16},
    }


def measure_step_seconds(config: Any, steps: int = 3) -> float:
    """Seconds per optimizer step of `config` on this machine (after one warm-up step)."""
    from ...tasks import get_task

    task = get_task(config.task)(config)
    dataset = task.build_dataset("train")
    model = task.build_model().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    batch = task.collate([dataset[i % len(dataset)] for i in range(config.train.batch_size)])
    started = 0.0
    for step in range(steps + 1):
        if step == 1:
            started = time.perf_counter()
        loss, _ = task.train_step(model, batch, torch.device("cpu"))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return (time.perf_counter() - started) / steps


def fastest_threads(config: Any) -> float:
    """Keep whichever of torch's thread count and a single thread trains faster (on a busy machine
    several threads can be many times slower than one); returns its seconds per step."""
    default = torch.get_num_threads()
    seconds = measure_step_seconds(config)
    if default > 1:
        torch.set_num_threads(1)
        single = measure_step_seconds(config)
        if single < seconds:
            return single
        torch.set_num_threads(default)
    return seconds


def comparison_grid(task: Any, model: torch.nn.Module, dataset: Any, count: int, zoom: int = 2) -> np.ndarray:
    """Rows of [image | ground truth | prediction] (overlays, enlarged `zoom` times) for the first
    `count` val images, above a legend of all classes."""
    from .visualize import draw_legend, overlay

    segmenter = task.inference(model.eval(), device=torch.device("cpu"), keep_scores=False)
    rows = []
    for index in range(min(count, len(dataset))):
        image, truth = dataset.load(index)
        [result] = segmenter.run([image], [segmenter.prepare(image)], [str(index)])
        cells = [image, overlay(image, truth, task.classes, legend=False),
                 overlay(image, result.labels, task.classes, legend=False)]
        rows.append(np.concatenate(cells, axis=1).repeat(zoom, axis=0).repeat(zoom, axis=1))
    grid = np.concatenate(rows, axis=0)
    legend = np.full((24 * task.classes.num_classes + 8, grid.shape[1], 3), 255, dtype=np.uint8)
    draw_legend(legend, list(zip(task.classes.names, task.classes.colors)), scale=1.0, text_color=(0, 0, 0))
    return np.concatenate([grid, legend], axis=0)


def run_demo(out_dir: str | Path = "hrnet-demo", *, minutes: float = 2.0, epochs: int | None = None,
             size: int = 96, train_images: int = 320, val_images: int = 64, seed: int = 0) -> dict[str, Any]:
    """Generate, train, evaluate, draw. Returns {"metrics", "run_dir", "overlays", "curves", "recipe", "epochs"}."""
    from ...data.io import write_image
    from ...engine import fit, load_config
    from ...engine.runs import load_for_inference
    from ...inference.predictor import Predictor
    from ...inference.writer import write_predictions
    from .synthetic import write_scenes

    out_dir = Path(out_dir)
    data_root = write_scenes(out_dir / "data", train=train_images, val=val_images, size=size, seed=seed)
    recipe_path = out_dir / "recipe.yaml"
    run_dir = out_dir / "run"
    if (run_dir / "last.pth").exists():
        raise ValueError(f"{run_dir} already holds a demo run: remove {out_dir} or choose another --out-dir")
    if epochs is None:
        recipe_path.parent.mkdir(parents=True, exist_ok=True)
        recipe_path.write_text(yaml.safe_dump(demo_recipe(data_root, size=size, epochs=1, seed=seed), sort_keys=False))
        step = fastest_threads(load_config(recipe_path))
        steps_per_epoch = train_images // DEMO_BATCH
        # ~15% of the budget goes to evaluation, checkpoints and plots; MIN_STEPS keep the mIoU floor
        # on a slow machine, at the cost of the time budget.
        budget = math.floor(0.85 * minutes * 60 / (step * steps_per_epoch))
        epochs = max(math.ceil(MIN_STEPS / steps_per_epoch), budget)
        print(f"one training step takes {step:.2f}s here: training {epochs} epochs ({epochs * steps_per_epoch} steps, "
              f"about {epochs * steps_per_epoch * step / 60:.1f} minutes)", flush=True)
    recipe_path.write_text(yaml.safe_dump(demo_recipe(data_root, size=size, epochs=epochs, seed=seed),
                                          sort_keys=False))
    started = time.perf_counter()
    summary = fit(load_config(recipe_path), run_dir)
    elapsed = time.perf_counter() - started
    _, task, model = load_for_inference(str(run_dir / "last.pth"), None, [], torch.device("cpu"))
    overlays = out_dir / "overlays.png"
    write_image(overlays, comparison_grid(task, model, task.build_dataset("val"), count=6))
    predictor = Predictor(run_dir / "last.pth", device="cpu")
    write_predictions(predictor, sorted((data_root / "images" / "val").glob("*.png"))[:4], out_dir / "predictions")
    return {"metrics": summary["metrics"], "run_dir": run_dir, "overlays": overlays, "curves": run_dir / "curves.png",
            "recipe": recipe_path, "epochs": epochs, "seconds": elapsed}


def _report(result: dict[str, Any], floor: float) -> str:
    metrics = result["metrics"]
    per_class = ", ".join(f"{k[4:]} {v:.1f}" for k, v in metrics.items() if k.startswith("IoU/"))
    run = result["run_dir"]
    verdict = "above" if metrics["mIoU"] >= floor else "BELOW"
    return "\n".join([
        f"trained {result['epochs']} epochs in {result['seconds']:.0f}s",
        f"val mIoU {metrics['mIoU']:.1f} ({verdict} the demo floor {floor:.0f}; official formula), "
        f"pixel accuracy {metrics['pixel_acc']:.1f}",
        f"per-class IoU: {per_class}",
        "",
        f"overlays (image | ground truth | prediction): {result['overlays']}",
        f"loss and mIoU curves:                         {result['curves']}",
        f"checkpoints, log and resolved recipe:         {run}/",
        "",
        "the same steps by hand:",
        f"  hrnet train --config {result['recipe']} --out-dir my-run",
        f"  hrnet eval --checkpoint {run}/best.pth",
        f"  hrnet predict --checkpoint {run}/best.pth IMAGES_OR_VIDEOS --out-dir predictions",
        "on your own data (images/train, masks/train, images/val, masks/val, classes.txt under ROOT):",
        f"  hrnet train --config {result['recipe']} --set data.root=ROOT --set 'data.crop_size=[512,512]' "
        "--out-dir my-run",
        "on CamVid or Cityscapes: recipes/segmentation/*.yaml with --set data.root=PATH",
    ])


def demo_command(*, out_dir: str, minutes: float, epochs: int | None, size: int, train_images: int,
                 val_images: int, seed: int, threads: int | None) -> int:
    """`hrnet demo` (the command line's options, see `hrnet.cli`): run the demo and print its report."""
    if threads:
        torch.set_num_threads(threads)
    result = run_demo(out_dir, minutes=minutes, epochs=epochs, size=size, train_images=train_images,
                      val_images=val_images, seed=seed)
    print(_report(result, MIOU_FLOOR if epochs is None else MIOU_FLOOR_SHORT))
    return 0
