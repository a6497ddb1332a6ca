"""The README's Python API section runs as written, on small random-weight models and real photos.

The files it names (runs/*/best.pth, photo.jpg, people.jpg, street.jpg, clip.mp4) are made in a temporary
folder: tiny random models of each task saved as run checkpoints, photos from ../shared/data/photos and
the first frames of its pedestrian video.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

from helpers import one_thread, shared_data  # noqa: F401 (autouse)

README = Path(__file__).resolve().parents[1] / "README.md"
TINY = [{"modules": 1, "block": "bottleneck", "blocks": [1], "channels": [8]},
        {"modules": 1, "block": "basic", "blocks": [1, 1], "channels": [8, 16]},
        {"modules": 1, "block": "basic", "blocks": [1, 1, 1], "channels": [8, 16, 32]},
        {"modules": 1, "block": "basic", "blocks": [1, 1, 1, 1], "channels": [8, 16, 32, 64]}]
RUNS = {"pose": {"input_size": [64, 48]}, "cls": {"classes": ["people", "scenes", "things"], "image_size": 32,
                                                  "resize_size": 36},
        "seg": {"format": "camvid", "crop_size": [48, 48], "base_size": 96},
        "det": {"class_names": ["person", "car"], "min_size": 96, "max_size": 128, "fpn_channels": 16,
                "representation_size": 32}}
TASK_OF = {"pose": "pose", "cls": "classification", "seg": "segmentation", "det": "detection"}


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _save_run(path: Path, name: str) -> None:
    from hrnet.checkpoints import save_atomic
    from hrnet.engine.config import config_from_dict, config_to_dict
    from hrnet.engine.runs import CHECKPOINT_FORMAT
    from hrnet.tasks import get_task

    recipe = {"task": TASK_OF[name], "model": {"arch": "hrnet_w18_small_v1", "stages": TINY, "stem_channels": 16},
              "data": RUNS[name]}
    config = config_from_dict(recipe)
    torch.manual_seed(0)
    model = get_task(config.task)(config).build_model()
    save_atomic({"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "config": config_to_dict(config)}, path)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    photos = shared_data("photos")
    for name in RUNS:
        _save_run(tmp_path / "runs" / name / "best.pth", name)
    shutil.copy(photos / "zidane.jpg", tmp_path / "photo.jpg")
    shutil.copy(photos / "bus.jpg", tmp_path / "people.jpg")
    shutil.copy(photos / "leuvenA.jpg", tmp_path / "street.jpg")
    from hrnet.data.io import VideoWriter, read_video

    frames, fps, _ = read_video(photos / "vtest.avi")
    with VideoWriter(tmp_path / "clip.mp4", fps) as writer:
        for index, frame in zip(range(25), frames):
            writer.write(frame[::4, ::4])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_python_api_section_runs_as_written(workspace):
    blocks = python_blocks(section("Python API"))
    assert len(blocks) >= 2
    scope: dict = {}
    for block in blocks:
        exec(compile(block, "README.md (Python API)", "exec"), scope)
    assert (workspace / "out" / "photo.png").is_file() and (workspace / "out" / "clip.mp4").is_file()
    assert type(scope["people"]).__name__ == "Poses" and type(scope["found"]).__name__ == "Detections"
    assert scope["scene"].labels.shape == scope["scene"].size
