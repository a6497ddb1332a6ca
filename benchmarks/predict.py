"""Where the time of `hrnet.Predictor` goes: the network versus reading, pre- and post-processing, drawing.

    OMP_NUM_THREADS=1 python benchmarks/predict.py --photos ../shared/data/photos --repeat 2
    OMP_NUM_THREADS=1 python benchmarks/predict.py --video ../shared/data/photos/vtest.avi --tasks segmentation

For each task a Predictor of the full-size architecture (random weights: the time does not depend on
them) predicts on a batch of real photos (and optionally every frame of a video, drawn and written
as `hrnet predict` does); the network's forward passes are timed inside the same run, so "share in
network" is their time over the whole call. Pose uses the whole photo as the person box.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import hrnet

CASES = {
    "classification": ("hrnet_w18", {"data": {"image_size": 224, "resize_size": 256}}),
    "pose": ("hrnet_w32", {"data": {"input_size": [256, 192]}}),
    "segmentation": ("hrnet_w18_small_v1", {"data": {"format": "camvid", "crop_size": [360, 480], "base_size": 480}}),
    "detection": ("hrnet_w18", {"data": {"class_names": ["person"], "min_size": 512, "max_size": 853}}),
}


class Timed(nn.Module):
    """The model, with the seconds spent in its forward passes added up in `seconds`."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.inner = model
        self.seconds = 0.0

    def forward(self, *args, **kwargs):
        started = time.perf_counter()
        out = self.inner(*args, **kwargs)
        self.seconds += time.perf_counter() - started
        return out


def predictor(task: str, runtime: str) -> tuple[hrnet.Predictor, Timed]:
    from hrnet.engine.config import config_from_dict
    from hrnet.tasks import get_task

    arch, extra = CASES[task]
    recipe = {"task": task, "model": {"arch": arch}, **extra}
    torch.manual_seed(0)
    model = get_task(task)(config_from_dict(recipe)).build_model().eval()
    timed = Timed(model)
    made = hrnet.Predictor(timed if runtime == "torch" else model, task=task, config=recipe, device="cpu",
                           runtime=runtime, batch_size=8)
    if runtime != "torch":  # time the runtime module the Predictor made
        timed = Timed(made.model)
        made.inference.model = timed
    return made, timed


def photos_case(task: str, photos: list[Path], runtime: str) -> dict:
    made, timed = predictor(task, runtime)
    made(photos[:2])  # warm up (first-call allocations, export caches)
    timed.seconds = 0.0
    started = time.perf_counter()
    results = made(photos)
    with tempfile.TemporaryDirectory() as out:
        for index, result in enumerate(results):
            result.save(Path(out) / f"{index}.png")
    total = time.perf_counter() - started
    return {"task": task, "inputs": f"{len(photos)} photos", "seconds": total, "network": timed.seconds}


def video_case(task: str, video: Path, runtime: str, max_frames: int | None) -> dict:
    made, timed = predictor(task, runtime)
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        summary = hrnet.write_predictions(made, [video], out, max_frames=max_frames)
        total = time.perf_counter() - started
    frames = summary.predictions[0].outputs["frames"]
    return {"task": task, "inputs": f"{frames} frames of {video.name}", "seconds": total, "network": timed.seconds,
            "fps": frames / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=Path("../shared/data/photos"))
    parser.add_argument("--repeat", type=int, default=1, help="use the photos this many times (a bigger batch)")
    parser.add_argument("--video", type=Path, default=None, help="also predict on every frame of this video")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--tasks", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--runtime", default="torch", choices=("torch", "onnxruntime", "openvino"))
    args = parser.parse_args()
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".png")) * args.repeat
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), runtime {args.runtime}")
    print("| task | inputs | seconds | in the network | share in network | frames/s |")
    print("|---|---|---|---|---|---|")
    for task in args.tasks:
        rows = [photos_case(task, photos, args.runtime)]
        if args.video is not None:
            rows.append(video_case(task, args.video, args.runtime, args.max_frames))
        for row in rows:
            fps = f"{row['fps']:.1f}" if "fps" in row else ""
            print(f"| {row['task']} | {row['inputs']} | {row['seconds']:.1f} | {row['network']:.1f} | "
                  f"{100 * row['network'] / row['seconds']:.0f}% | {fps} |", flush=True)


if __name__ == "__main__":
    main()
