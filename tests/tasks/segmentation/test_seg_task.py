"""SegmentationTask through the engine: the same path as `hrnet train`, `hrnet eval`, `hrnet predict`."""

import json
import shutil

import numpy as np
import pytest
import torch

from hrnet.cli import main
from hrnet.data.io import DataError
from hrnet.engine import ConfigError, config_from_dict, fit
from hrnet.tasks.segmentation.task import SegmentationTask


def test_train_eval_predict_from_the_command_line(scenes, recipe, tmp_path, capsys):
    data = shutil.copytree(scenes, tmp_path / "data")
    recipe_path = tmp_path / "recipe.json"  # JSON is YAML
    recipe_path.write_text(json.dumps(recipe(data)))
    run = tmp_path / "run"
    assert main(["train", "--config", str(recipe_path), "--out-dir", str(run)]) == 0
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    epoch = [r for r in logged if r["kind"] == "epoch"][-1]
    assert {"val/mIoU", "val/mIoU_present", "val/pixel_acc", "val/mean_acc", "val/IoU/disk"} <= set(epoch)
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run / "last.pth"), "--json", "--device", "cpu"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["mIoU"] == pytest.approx(epoch["val/mIoU"], abs=1e-6)
    # The class list travels in the checkpoint: predicting needs no dataset.
    images = shutil.copytree(data / "images" / "val", tmp_path / "images")
    shutil.rmtree(data)
    assert main(["predict", "--checkpoint", str(run / "last.pth"), str(images), "--out-dir",
                 str(tmp_path / "pred"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "background" in out and (tmp_path / "pred" / "00000_overlay.png").is_file()
    assert len(json.loads((tmp_path / "pred" / "predictions.json").read_text())) == 8


def test_ocr_model_trains_with_aux_and_main_losses(scenes, recipe, tmp_path):
    raw = recipe(scenes, loss="ohem", ohem_min_kept_per_image=250, class_weights="enet",
                      test_mode="slide", test_flip=True, test_scales=[0.75, 1.0])
    raw["model"]["head"] = "ocr"
    config = config_from_dict(raw)
    summary = fit(config, tmp_path / "run")
    assert summary["step"] == 2 and 0 <= summary["metrics"]["mIoU"] <= 100
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {"train_loss_aux", "train_loss_main"} <= set(logged[-1])
    assert config.model.num_classes == 5 and config.data.class_names[1] == "disk"


def test_train_step_loss_goes_down_on_one_batch(scenes, recipe):
    config = config_from_dict(recipe(scenes))
    task = SegmentationTask(config)
    dataset = task.build_dataset("train")
    model = task.build_model().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batch = task.collate([dataset[i] for i in range(4)])
    losses = []
    for _ in range(8):
        loss, parts = task.train_step(model, batch, torch.device("cpu"))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0] and set(parts) == {"loss_main"}


def test_collate_pads_mixed_sizes_and_the_evaluator_scores_each_unpadded(scenes, recipe):
    config = config_from_dict(recipe(scenes))
    task = SegmentationTask(config)
    samples = [{"image": torch.zeros(3, 4, 6), "mask": torch.zeros(4, 6, dtype=torch.long), "index": 0},
               {"image": torch.zeros(3, 8, 5), "mask": torch.ones(8, 5, dtype=torch.long), "index": 1}]
    batch = task.collate(samples)
    assert batch["image"].shape == (2, 3, 8, 6) and batch["mask"][0, 4:].eq(255).all()
    model = task.build_model().eval()
    evaluator = task.make_evaluator(torch.device("cpu"))
    with torch.no_grad():
        evaluator.update(model, batch)
    assert evaluator.meter.confusion.sum() == 4 * 6 + 8 * 5


def test_recipe_errors_name_the_problem(scenes, recipe, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(scenes, bare)
    (bare / "classes.txt").unlink()
    with pytest.raises(DataError, match="needs a class list.*classes.txt"):
        SegmentationTask(config_from_dict(recipe(bare)))
    raw = recipe(scenes)
    raw["model"]["num_classes"] = 19
    with pytest.raises(ValueError, match="num_classes is 19 but the class list has 5"):
        SegmentationTask(config_from_dict(raw))
    with pytest.raises(ConfigError, match="data.crop_sise"):
        config_from_dict(recipe(scenes, crop_sise=[4, 4]))
    with pytest.raises(ConfigError, match="data.loss"):
        config_from_dict(recipe(scenes, loss="focal"))


def test_a_saved_cityscapes_config_keeps_the_label_id_mapping(recipe):
    from hrnet.engine import config_to_dict

    config = config_from_dict(recipe("/nowhere", format="cityscapes"))
    SegmentationTask(config)
    assert config.data.class_names[0] == "road"
    reloaded = SegmentationTask(config_from_dict(config_to_dict(config)))
    assert reloaded.classes.label_map is not None and reloaded.classes.encode(np.uint8([7, 0])).tolist() == [0, 255]
