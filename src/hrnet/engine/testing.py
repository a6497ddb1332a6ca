"""Small things for tests of the engine and the tasks: a tiny HRNet spec and a real-image folder.

    from hrnet.engine.testing import TINY_STAGES, shared_data_dir, make_photo_folder
    recipe = {"task": "pose", "model": {"stages": TINY_STAGES, "stem_channels": 16}, ...}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

# A four-stage HRNet of one module per stage, one block per branch, widths 8/16/32/64: trains on a
# CPU in a fraction of a second per step at 32x32 (use with `stem_channels: 16`).
TINY_STAGES: list[dict[str, Any]] = [
    {"modules": 1, "block": "bottleneck", "blocks": [1], "channels": [8]},
    {"modules": 1, "block": "basic", "blocks": [1, 1], "channels": [8, 16]},
    {"modules": 1, "block": "basic", "blocks": [1, 1, 1], "channels": [8, 16, 32]},
    {"modules": 1, "block": "basic", "blocks": [1, 1, 1, 1], "channels": [8, 16, 32, 64]},
]

# Two visually distinct classes of real photos (people / buildings and streets).
PHOTO_CLASSES = {
    "people": ("zidane.jpg", "bus.jpg", "messi5.jpg", "grace_hopper.jpg", "astronaut.png"),
    "scenes": ("building.jpg", "leuvenA.jpg", "china.jpg", "rocket.jpg", "flower.jpg"),
}


def tiny_classification_recipe(train_data: str | os.PathLike = "", val_data: str | os.PathLike = "", /,
                               **sections: dict) -> dict:
    """A classification recipe of the tiny HRNet on 32x32 crops, one process, no workers;
    `sections` update its sections, e.g. train={"epochs": 1}."""
    recipe = {
        "task": "classification",
        "model": {"arch": "hrnet_w18_small_v1", "stages": TINY_STAGES, "stem_channels": 16},
        "data": {"train": str(train_data), "val": str(val_data), "image_size": 32, "resize_size": 36},
        "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
        "schedule": {"name": "constant"},
        "train": {"epochs": 2, "batch_size": 8, "workers": 0, "log_every": 1, "seed": 3, "plot": False},
        "eval": {"every": 1},
    }
    for name, values in sections.items():
        recipe[name].update(values)
    return recipe


def write_recipe(path: str | os.PathLike, recipe: dict) -> Path:
    """`recipe` as a YAML file at `path`."""
    import yaml

    path = Path(path)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def shared_data_dir() -> Path | None:
    """The shared real-data folder (`$HRNET_DATA`, else ../shared/data beside the checkout), or None."""
    candidates = [os.environ.get("HRNET_DATA", "")] + [str(p / "shared" / "data")
                                                       for p in Path(__file__).resolve().parents]
    for candidate in candidates:
        if candidate and Path(candidate, "photos").is_dir():
            return Path(candidate)
    return None


def make_photo_folder(dest: str | os.PathLike, photos: str | os.PathLike, *, per_image: int = 4, size: int = 48,
                      seed: int = 0, classes: dict[str, tuple[str, ...]] = PHOTO_CLASSES) -> Path:
    """An ImageFolder `dest/<class>/<image>.jpg` of random square crops (30-70 % of the shorter
    side, resized to `size`) of real photos, `per_image` crops of each photo."""
    import cv2

    dest, photos = Path(dest), Path(photos)
    rng = np.random.default_rng(seed)
    for name, files in classes.items():
        folder = dest / name
        folder.mkdir(parents=True, exist_ok=True)
        for file in files:
            image = cv2.imread(str(photos / file))
            if image is None:
                raise FileNotFoundError(f"photo {photos / file} is missing or unreadable")
            height, width = image.shape[:2]
            for index in range(per_image):
                side = int(min(height, width) * rng.uniform(0.3, 0.7))
                y, x = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
                crop = cv2.resize(image[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)
                cv2.imwrite(str(folder / f"{Path(file).stem}_{index}.jpg"), crop)
    return dest


def make_synthetic_folder(dest: str | os.PathLike, *, per_class: int = 8, size: int = 40, seed: int = 0) -> Path:
    """An ImageFolder of two easy classes drawn with numpy (no data needed): `stripes_h` and
    `stripes_v`, noisy horizontal or vertical stripes of random period and colour."""
    import cv2

    dest = Path(dest)
    rng = np.random.default_rng(seed)
    for label, name in enumerate(("stripes_h", "stripes_v")):
        folder = dest / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            period = int(rng.integers(4, 10))
            wave = (np.arange(size) // period % 2).astype(np.float32)
            pattern = wave[:, None] * np.ones((1, size), np.float32)
            if label:
                pattern = pattern.T
            colour = rng.uniform(80, 255, size=3)
            image = pattern[..., None] * colour + rng.normal(0, 20, (size, size, 3))
            cv2.imwrite(str(folder / f"{name}_{index}.png"), np.clip(image, 0, 255).astype(np.uint8))
    return dest


def coco_padded_to_squares(coco_dir: str | os.PathLike, dest: str | os.PathLike,
                           annotations: str = "test_coco.json") -> Path:
    """The COCO sample's images padded to squares at the bottom and right (PNG, the same pixels) and
    its annotations with the new sizes (`dest/square.json`, coordinates unchanged): a bottom-up
    model's square training crop and its test resize then see the same picture."""
    import json

    from ..data.io import read_image, write_image

    coco_dir, dest = Path(coco_dir), Path(dest)
    data = json.loads((coco_dir / annotations).read_text())
    for image in data["images"]:
        rgb = read_image(coco_dir / image["file_name"])
        side = max(rgb.shape[:2])
        square = np.zeros((side, side, 3), np.uint8)
        square[: rgb.shape[0], : rgb.shape[1]] = rgb
        image["file_name"] = Path(image["file_name"]).stem + ".png"
        image["width"] = image["height"] = side
        write_image(dest / image["file_name"], square)
    (dest / "square.json").write_text(json.dumps(data))
    return dest / "square.json"


def memorising_bottom_up_recipe(annotations: str | os.PathLike, *, steps: int = 600, repeat: int = 10) -> dict:
    """A small HigherHRNet that memorises the (square-padded) COCO sample of `coco_padded_to_squares`:
    the official targets, losses and factors, the augmentation off, so no flip test. 4 images x
    `repeat` passes: one batch of 4 per step. Used by the slow AP test and the README's picture."""
    folder = str(Path(annotations).parent)
    channels = [16, 32, 64, 128]
    stages = [{"modules": 1, "block": "bottleneck", "blocks": [1], "channels": channels[:1]}] + [
        {"modules": 1, "block": "basic", "blocks": [1] * n, "channels": channels[:n]} for n in (2, 3, 4)]
    epochs = steps // repeat
    return {
        "task": "bottom_up_pose",
        "model": {"arch": "hrnet_w18_small_v1", "stem_channels": 32, "stages": stages},
        "data": {"train_annotations": str(annotations), "train_images": folder,
                 "val_annotations": str(annotations), "val_images": folder, "train_repeat": repeat,
                 "input_size": 320, "max_rotation": 0.0, "min_scale": 1.0, "max_scale": 1.0, "max_translate": 0.0,
                 "flip": 0.0, "test": {"flip": False}},
        "optimizer": {"name": "adam", "lr": 0.005, "weight_decay": 0.0},
        "schedule": {"name": "multistep", "milestones": [int(epochs * 0.8)], "gamma": 0.1, "warmup_iters": 20},
        "train": {"epochs": epochs, "batch_size": 4, "workers": 0, "device": "cpu", "plot": False, "seed": 0},
        "eval": {"every": epochs},
    }
