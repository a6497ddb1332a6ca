"""Classification end to end: data formats, transforms, top-k, errors, train / eval / predict."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from hrnet.cli import main
from hrnet.data.io import DataError
from hrnet.engine import fit, load_config, load_run_checkpoint
from hrnet.engine.testing import (make_photo_folder, make_synthetic_folder, shared_data_dir,
                                  tiny_classification_recipe, write_recipe)
from hrnet.tasks.classification import (ClassificationTask, DataConfig, TopKEvaluator, build_transform,
                                        discover_classes, read_samples)


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    root = tmp_path_factory.mktemp("cls")
    return make_synthetic_folder(root / "train", per_class=6), make_synthetic_folder(root / "val", per_class=2, seed=1)


def test_folder_csv_and_json_lists_give_the_same_samples(tmp_path, stripes):
    train, _ = stripes
    classes = discover_classes(str(train))
    assert classes == ["stripes_h", "stripes_v"]
    folder = read_samples(str(train), classes)
    assert len(folder) == 12 and {label for _, label in folder} == {0, 1}
    rows = [(path.relative_to(train).as_posix(), classes[label]) for path, label in folder]
    csv_file = train / "list.csv"
    csv_file.write_text("path,label,note\n" + "".join(f"{p},{c},x\n" for p, c in rows))
    json_file = train / "list.json"
    json_file.write_text(json.dumps({"classes": classes, "samples": [{"path": p, "label": classes.index(c)}
                                                                     for p, c in rows]}))
    assert discover_classes(str(csv_file)) == classes and discover_classes(str(json_file)) == classes
    assert read_samples(str(csv_file), classes) == folder
    assert read_samples(str(json_file), classes) == folder
    (tmp_path / "bad.csv").write_text("file,class\na.png,x\n")
    with pytest.raises(DataError, match=r"bad\.csv: a CSV list needs a header with the columns path and label"):
        read_samples(str(tmp_path / "bad.csv"), classes)
    (tmp_path / "bad.json").write_text(json.dumps([{"path": "a.png", "label": "cat"}]))
    with pytest.raises(DataError, match=r"bad\.json: label 'cat' of a\.png is not a known class"):
        read_samples(str(tmp_path / "bad.json"), classes)


def test_transforms_follow_the_official_recipe():
    data = DataConfig(image_size=224, resize_size=256)
    image = torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8)
    torch.manual_seed(0)
    out = build_transform(data, train=True)(image)
    assert out.shape == (3, 224, 224) and out.dtype == torch.float32
    evaluated = build_transform(data, train=False)(image)
    # resize the shorter side to 256 (256 x 341), centre crop 224, ImageNet mean/std
    from torchvision.transforms.v2 import functional as F

    expected = F.center_crop(F.resize(image, [256], antialias=True), [224, 224]).float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    torch.testing.assert_close(evaluated, (expected - mean) / std)


def test_top1_top5():
    evaluator = TopKEvaluator(torch.device("cpu"), num_classes=10)
    logits = torch.arange(10.0).repeat(4, 1)  # ranking 9, 8, 7, 6, 5, ...
    labels = torch.tensor([9, 5, 4, 0])
    evaluator.update(lambda x: x, (logits, labels))
    evaluator.synchronize()
    metrics = evaluator.compute()
    assert metrics["top1"] == 25.0 and metrics["top5"] == 50.0


def test_corrupt_image_names_the_file(tmp_path, stripes, capsys):
    train = tmp_path / "train"
    shutil.copytree(stripes[0], train)
    bad = train / "stripes_h" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    path = write_recipe(tmp_path / "r.yaml", tiny_classification_recipe(train, stripes[1], train={"batch_size": 13}))
    assert main(["train", "-c", str(path), "-o", str(tmp_path / "run")]) == DataError.exit_code
    err = capsys.readouterr().err
    assert "broken.png cannot be decoded" in err


def test_missing_folder_names_it(tmp_path, stripes, capsys):
    path = write_recipe(tmp_path / "r.yaml", tiny_classification_recipe(tmp_path / "nowhere", stripes[1]))
    assert main(["train", "-c", str(path), "-o", str(tmp_path / "run")]) == DataError.exit_code
    assert f"data folder {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
    path = write_recipe(tmp_path / "r.yaml", tiny_classification_recipe(stripes[0], tmp_path / "noval"))
    assert main(["train", "-c", str(path), "-o", str(tmp_path / "run")]) == DataError.exit_code
    assert f"data folder {tmp_path / 'noval'} does not exist" in capsys.readouterr().err


def test_val_class_unknown_to_the_run(tmp_path, stripes):
    val = tmp_path / "val"
    shutil.copytree(stripes[1], val)
    (val / "dots").mkdir()
    config = load_config(write_recipe(tmp_path / "r.yaml", tiny_classification_recipe(stripes[0], val)))
    with pytest.raises(DataError, match=r"dots: class 'dots' is not among the 2 classes"):
        ClassificationTask(config).build_dataset("val")


def test_train_on_real_photos_then_eval_and_predict(tmp_path, capsys):
    data = shared_data_dir()
    if data is None:
        pytest.skip("shared real-image data (../shared/data/photos) is absent")
    train = make_photo_folder(tmp_path / "train", data / "photos", per_image=4, seed=0)
    val = make_photo_folder(tmp_path / "val", data / "photos", per_image=2, seed=1)
    recipe = tiny_classification_recipe(
        train, val, optimizer={"name": "adamw", "lr": 0.002, "weight_decay": 0.01},
        schedule={"name": "cosine", "warmup_epochs": 1}, train={"epochs": 5, "batch_size": 8, "plot": True,
                                                               "log_every": 2})
    recipe["data"].update(image_size=32, resize_size=36, scale=[0.5, 1.0])
    path = write_recipe(tmp_path / "r.yaml", recipe)
    run = tmp_path / "run"
    assert main(["train", "-c", str(path), "-o", str(run)]) == 0
    for name in ("config.yaml", "log.jsonl", "last.pth", "best.pth", "curves.png"):
        assert (run / name).is_file(), name
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    epochs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in epochs if r["kind"] == "epoch"]
    assert len(epochs) == 5
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    best = load_run_checkpoint(run / "best.pth")
    assert best["config"]["data"]["classes"] == ["people", "scenes"]
    capsys.readouterr()

    # `hrnet eval` reproduces the logged metrics of the checkpoint's epoch.
    for name, record in (("best.pth", next(r for r in epochs if r["epoch"] == best["best"]["epoch"])),
                         ("last.pth", epochs[-1])):
        assert main(["eval", "--checkpoint", str(run / name), "--json"]) == 0
        metrics = json.loads(capsys.readouterr().out)
        assert metrics["top1"] == pytest.approx(record["val/top1"], abs=1e-6)
        assert metrics["loss"] == pytest.approx(record["val/loss"], rel=1e-5)

    # `hrnet predict` on a folder and an image prints the top classes with scores.
    out = tmp_path / "pred"
    image = next((val / "people").iterdir())
    assert main(["predict", str(val / "scenes"), str(image), "--checkpoint", str(run / "best.pth"),
                 "-o", str(out), "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10 + 1 + 1
    assert all(("people" in line and "scenes" in line) for line in lines[:-1])
    results = json.loads((out / "predictions.json").read_text())
    assert len(results) == 11 and abs(sum(t["score"] for t in results[0]["top_k"]) - 1) < 1e-4
    assert (out / f"{image.stem}.png").is_file()


def test_fit_in_process_and_max_steps(tmp_path, stripes):
    config = load_config(write_recipe(tmp_path / "r.yaml", tiny_classification_recipe(*stripes)),
                         ["train.max_steps=2", "eval.every=0"])
    summary = fit(config, tmp_path / "run")
    assert summary["step"] == 2 and summary["best"] == {}
