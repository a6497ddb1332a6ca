"""The README's bottom-up picture: a small HigherHRNet trained on the COCO sample, drawn by `hrnet.Predictor`.

    OMP_NUM_THREADS=1 python benchmarks/bottom_up_picture.py --data ../shared/data/coco_kpt --out docs/bottom_up_prediction.jpg

The same training as the slow test tests/tasks/bottom_up/test_bottom_up_training.py (4 COCO val2017
images padded to squares, 12 labelled people, 600 steps from scratch on one CPU thread, about 15
minutes), then one prediction with the whole official test pipeline (resize, grouping, adjust,
refine), every person found drawn. It proves the chain from targets to grouping to pixels on real
people; it is not a model that generalises (it has seen these people).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import torch

import hrnet
from hrnet.data.io import read_image
from hrnet.engine import config_from_dict, fit
from hrnet.engine.testing import coco_padded_to_squares, memorising_bottom_up_recipe

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/coco_kpt"))
    parser.add_argument("--out", type=Path, default=Path("docs/bottom_up_prediction.jpg"))
    parser.add_argument("--image", default="000000000785.png", help="the (padded) sample image to draw")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        annotations = coco_padded_to_squares(args.data, work)
        summary = fit(config_from_dict(memorising_bottom_up_recipe(annotations, steps=args.steps)), work / "run")
        print("COCO AP on the sample:", round(summary["metrics"]["AP"], 4))
        people = hrnet.Predictor(work / "run" / "last.pth", device="cpu")(work / args.image)
        picture = people.draw()
        original = read_image(args.data / (Path(args.image).stem + ".jpg"))
        picture = picture[: original.shape[0], : original.shape[1]]  # the padding off again
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"{len(people.scores)} people drawn -> {args.out}")


if __name__ == "__main__":
    main()
