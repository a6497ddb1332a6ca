"""Every failure a user can cause is one clear line and a distinct exit code (issue 14's table).

Each case runs the command line in-process (`hrnet.cli.main`) on files made in tmp_path and asserts the
exit code and that stderr names the file / field and the fix, with no traceback. Exit codes:
hrnet.errors (1 some inputs failed, 2 usage, 3 config, 4 data, 5 checkpoint, 6 missing dependency,
7 runtime, 8 operating system, 70 bug, 130 interrupted).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from hrnet.cli import main
from hrnet.engine.testing import TINY_STAGES
from helpers import one_thread  # noqa: F401 (autouse)

POSE_RECIPE = {"task": "pose", "model": {"arch": "hrnet_w18_small_v1", "stages": TINY_STAGES, "stem_channels": 16},
               "data": {"input_size": [64, 48]}}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """A folder of good and bad inputs, a tiny pose run checkpoint and a recipe."""
    from hrnet.checkpoints import save_atomic
    from hrnet.engine.config import config_from_dict, config_to_dict
    from hrnet.engine.runs import CHECKPOINT_FORMAT
    from hrnet.tasks import get_task

    root = tmp_path_factory.mktemp("errors")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(root / "good.jpg", quality=95)
    whole = (root / "good.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(whole[: len(whole) // 3])
    (root / "notes.txt").write_text("hello")
    (root / "empty").mkdir()
    (root / "bad.mp4").write_bytes(b"not a video at all")
    (root / "mixed").mkdir()
    for name in ("good.jpg", "truncated.jpg"):
        (root / "mixed" / name).write_bytes((root / name).read_bytes())
    config = config_from_dict(POSE_RECIPE)
    torch.manual_seed(0)
    model = get_task("pose")(config).build_model()
    save_atomic({"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "config": config_to_dict(config)},
                root / "pose.pth")
    (root / "recipe.yaml").write_text(yaml.safe_dump(POSE_RECIPE))
    (root / "typo.yaml").write_text(yaml.safe_dump({**POSE_RECIPE, "data": {"inptu_size": [64, 48]}}))
    (root / "badtype.yaml").write_text(yaml.safe_dump({**POSE_RECIPE, "data": {"sigma": "wide"}}))
    (root / "broken.yaml").write_text("task: pose\ndata: {input_size: [64, 48\n")
    torch.save({k: v.int() for k, v in model.state_dict().items()}, root / "ints.pth")
    whole = (root / "pose.pth").read_bytes()
    (root / "half.pth").write_bytes(whole[: len(whole) // 2])
    (root / "text.pth").write_text("these are not weights")
    torch.save({"epoch": 3}, root / "meta.pth")
    return root


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


# (case, argv with {root}, exit code, regex the message must contain)
CASES = [
    # checkpoints
    ("missing checkpoint", ["predict", "--checkpoint", "{root}/none.pth", "{root}/good.jpg"], 5, r"none\.pth does not exist"),
    ("checkpoint is a folder", ["predict", "--checkpoint", "{root}/empty", "{root}/good.jpg"], 5, r"empty is a folder"),
    ("truncated checkpoint", ["predict", "--checkpoint", "{root}/half.pth", "-c", "{root}/recipe.yaml",
                              "{root}/good.jpg"], 5, r"half\.pth: not a readable PyTorch checkpoint .*truncated"),
    ("text as checkpoint", ["predict", "--checkpoint", "{root}/text.pth", "-c", "{root}/recipe.yaml",
                            "{root}/good.jpg"], 5, r"text\.pth: not a readable PyTorch checkpoint"),
    ("no tensors in checkpoint", ["predict", "--checkpoint", "{root}/meta.pth", "-c", "{root}/recipe.yaml",
                                  "{root}/good.jpg"], 5, r"meta\.pth: holds a dict with keys \['epoch'\]"),
    ("integer weights", ["predict", "--checkpoint", "{root}/ints.pth", "-c", "{root}/recipe.yaml", "{root}/good.jpg"],
     5, r"is int32, but the model's is float32"),
    ("weights without a recipe", ["predict", "--checkpoint", "{root}/ints.pth", "{root}/good.jpg"], 3,
     r"holds weights only: give its recipe \(--config RECIPE"),
    ("unknown weights name", ["predict", "--weights", "hrnet_w32.coco_256x129", "{root}/good.jpg"], 5,
     r"hrnet_w32\.coco_256x192"),
    # inputs
    ("missing input", ["predict", "--checkpoint", "{root}/pose.pth", "{root}/absent.jpg"], 4, r"absent\.jpg does not exist"),
    ("empty folder", ["predict", "--checkpoint", "{root}/pose.pth", "{root}/empty"], 4, r"empty holds no images"),
    ("not an image", ["predict", "--checkpoint", "{root}/pose.pth", "{root}/notes.txt"], 4, r"notes\.txt is neither an image"),
    ("truncated jpeg in a folder", ["predict", "--checkpoint", "{root}/pose.pth", "{root}/mixed", "-o", "{out}"], 1,
     r"truncated\.jpg: image .* cannot be decoded .*truncated"),
    ("strict stops at the bad file", ["predict", "--checkpoint", "{root}/pose.pth", "{root}/mixed", "-o", "{out}",
                                      "--strict"], 4, r"truncated\.jpg cannot be decoded"),
    ("unreadable video", ["predict", "--checkpoint", "{root}/pose.pth", "{root}/bad.mp4", "-o", "{out}"], 1,
     r"bad\.mp4: FAILED|bad\.mp4 cannot be opened"),
    ("absent webcam", ["predict", "--checkpoint", "{root}/pose.pth", "--webcam", "97", "-o", "{out}"], 4,
     r"webcam 97 cannot be opened"),
    ("nothing to predict", ["predict", "--checkpoint", "{root}/pose.pth"], 3, r"give images, folders or videos"),
    # options and recipes
    ("unknown option", ["predict", "--checkpoint", "{root}/pose.pth", "{root}/good.jpg", "--option", "flip=true"], 3,
     r"unknown pose option\(s\) flip; known: flip_test"),
    ("bad option value", ["predict", "--checkpoint", "{root}/pose.pth", "{root}/good.jpg", "--option",
                          "decoding=magic"], 3, r"decoding 'magic': choose one of quarter, dark, argmax, udp"),
    ("top-k zero", ["predict", "--checkpoint", "{root}/pose.pth", "{root}/good.jpg", "--top-k", "0"], 3,
     r"unknown pose option\(s\) top_k"),
    ("unknown recipe key", ["predict", "--checkpoint", "{root}/pose.pth", "-c", "{root}/typo.yaml", "{root}/good.jpg"],
     3, r"typo\.yaml: unknown key data\.inptu_size \(did you mean data\.input_size\?\)"),
    ("ill-typed recipe value", ["predict", "--checkpoint", "{root}/pose.pth", "-c", "{root}/badtype.yaml",
                                "{root}/good.jpg"], 3, r"badtype\.yaml: data\.sigma must be float, got 'wide'"),
    ("broken yaml", ["predict", "--checkpoint", "{root}/pose.pth", "-c", "{root}/broken.yaml", "{root}/good.jpg"], 3,
     r"broken\.yaml: not valid YAML"),
    ("missing recipe", ["predict", "--checkpoint", "{root}/pose.pth", "-c", "{root}/none.yaml", "{root}/good.jpg"], 3,
     r"recipe .*none\.yaml does not exist"),
    ("--set override of a bad key", ["predict", "--checkpoint", "{root}/pose.pth", "--set", "data.sgima=2",
                                     "{root}/good.jpg"], 3, r"unknown key data\.sgima \(did you mean data\.sigma\?\)"),
    ("unknown architecture", ["info", "hrnet_w19"], 3, r"unknown architecture 'hrnet_w19'.*hrnet_w18"),
    ("run checkpoint with another arch", ["predict", "--checkpoint", "{root}/pose.pth", "--set", "model.arch=hrnet_w32",
                                          "--set", "model.stages=null", "--set", "model.stem_channels=null",
                                          "{root}/good.jpg"], 5, r"pose\.pth.*HRNet"),
    ("crop of one pixel", ["predict", "--checkpoint", "{root}/pose.pth", "--set", "data.input_size=[1,1]",
                           "{root}/good.jpg"], 3, r"input_size"),
    # operating system
    ("out-dir is a file", ["predict", "--checkpoint", "{root}/pose.pth", "{root}/good.jpg", "-o", "{root}/good.jpg"],
     8, r"good\.jpg: a file stands where a folder should be"),
]


@pytest.mark.parametrize("case, argv, code, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line(case, argv, code, message, files, tmp_path, capsys):
    argv = [a.format(root=files, out=tmp_path / "out") for a in argv]
    exit_code, err = _run(argv, capsys)
    assert exit_code == code, err
    assert "Traceback" not in err
    import re

    assert re.search(message, err), err


@pytest.mark.parametrize("argv, message", [
    (["info", "hrnet_w32", "--input", "0x0"], "height and width must be positive"),
    (["info", "hrnet_w32", "--input", "256by192"], "HxW"),
    (["predict", "--checkpoint", "x.pth", "--set", "novalue", "a.jpg"], "--set needs KEY=VALUE"),
    (["predict", "a.jpg"], "one of the arguments --checkpoint --weights --pose is required"),
])
def test_malformed_command_lines_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as error:
        main(argv)
    assert error.value.code == 2 and message in capsys.readouterr().err


def test_a_set_value_never_swallows_an_input(files, tmp_path, capsys):
    """`--set data.predict.keypoint_threshold=0.5 good.jpg`: one KEY=VALUE per --set, the image stays an input."""
    code, err = _run(["predict", "--checkpoint", str(files / "pose.pth"), "--set", "data.predict.keypoint_threshold=0.5",
                      str(files / "good.jpg"), "-o", str(tmp_path / "out")], capsys)
    assert code == 0, err and (tmp_path / "out" / "good.png").is_file()


def test_a_folder_with_a_bad_file_writes_everything_else(files, tmp_path, capsys):
    code, err = _run(["predict", "--checkpoint", str(files / "pose.pth"), str(files / "mixed"), "-o",
                      str(tmp_path / "out")], capsys)
    assert code == 1 and "1 of 2 input(s) failed" in err
    assert (tmp_path / "out" / "good.png").is_file()
    assert len(json.loads((tmp_path / "out" / "keypoints.json").read_text())) == 1


def test_disk_full_and_missing_runtime_are_one_line(files, tmp_path, capsys, monkeypatch):
    import hrnet.inference.results as results

    def full(path, rgb):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(results, "write_image", full)
    code, err = _run(["predict", "--checkpoint", str(files / "pose.pth"), str(files / "good.jpg"), "-o",
                      str(tmp_path / "out")], capsys)
    assert code == 8 and "the disk is full" in err
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` now raises ImportError
    code, err = _run(["predict", "--checkpoint", str(files / "pose.pth"), str(files / "good.jpg"), "-o",
                      str(tmp_path / "out"), "--runtime", "openvino"], capsys)
    assert code == 6 and "pip install" in err and "openvino" in err


# COCO json fields every task reads (pose, bottom-up pose, detection share `hrnet.data.coco`): a wrong one
# is exit 4 before the first step, naming the file, the record and the field.
def _coco(root: Path) -> dict:
    Image.fromarray(np.full((60, 80, 3), 128, np.uint8)).save(root / "a.jpg")
    person = {"id": 5, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 400.0, "bbox": [10, 10, 20, 30],
              "num_keypoints": 17, "keypoints": [15, 20, 2] * 17}
    return {"images": [{"id": 1, "file_name": "a.jpg", "width": 80, "height": 60}], "annotations": [person],
            "categories": [{"id": 1, "name": "person", "keypoints": [str(i) for i in range(17)], "skeleton": []}]}


COCO_CASES = [
    ("image without width", lambda c: c["images"][0].pop("width"), r"images\[0\] \(id 1\) field 'width' lacks it"),
    ("width a word", lambda c: c["images"][0].update(width="wide"), r"field 'width' holds 'wide' \(str\)"),
    ("no image_id", lambda c: c["annotations"][0].pop("image_id"), r"annotations\[0\] \(id 5\) field 'image_id'"),
    ("unknown image_id", lambda c: c["annotations"][0].update(image_id=9), r"names image 9, which is not in 'images'"),
    ("bbox a string", lambda c: c["annotations"][0].update(bbox="10,10,20,30"), r"field 'bbox' holds '10,10,20,30'"),
    ("bbox of length 2", lambda c: c["annotations"][0].update(bbox=[10, 10]), r"field 'bbox' holds \[10, 10\]"),
    ("NaN keypoint", lambda c: c["annotations"][0]["keypoints"].__setitem__(4, float("nan")),
     r"field 'keypoints' holds a NaN or a non-number"),
    ("short keypoints", lambda c: c["annotations"][0].update(keypoints=[1, 2, 2]), r"'keypoints' holds 3 values"),
    ("annotations missing", lambda c: c.pop("annotations"), r"'annotations'"),
]


# Detection reads no keypoints and takes the image size from the pixels; bottom-up pose reads no boxes.
NOT_READ = {"detection": ("NaN keypoint", "short keypoints", "image without width", "width a word"),
            "bottom_up_pose": ("bbox a string", "bbox of length 2"), "pose": ()}
COCO_TASK_CASES = [pytest.param(task, *case, id=f"{task}: {case[0]}") for task in NOT_READ for case in COCO_CASES
                   if case[0] not in NOT_READ[task]]


@pytest.mark.parametrize("task, case, change, message", COCO_TASK_CASES)
def test_bad_coco_fields_name_the_record_before_training(task, case, change, message, tmp_path, capsys):
    coco = _coco(tmp_path)
    change(coco)
    (tmp_path / "bad.json").write_text(json.dumps(coco))
    data = {"train_annotations": str(tmp_path / "bad.json"), "train_images": str(tmp_path),
            "val_annotations": str(tmp_path / "bad.json"), "val_images": str(tmp_path)}
    if task == "detection":
        data = {"train": str(tmp_path / "bad.json"), "val": str(tmp_path / "bad.json")}
    recipe = {"task": task, "model": {"arch": "hrnet_w18_small_v1", "stages": TINY_STAGES, "stem_channels": 16},
              "data": data, "train": {"epochs": 1, "batch_size": 1, "workers": 0, "device": "cpu"}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    code, err = _run(["train", "-c", str(tmp_path / "recipe.yaml"), "--out-dir", str(tmp_path / "run")], capsys)
    import re

    assert code == 4 and "bad.json" in err and re.search(message, err), err
    assert not (tmp_path / "run" / "last.pth").exists()
