from pathlib import Path

import pytest

from hrnet.engine import load_config
from hrnet.tasks.segmentation.task import SegmentationTask

RECIPES = Path(__file__).resolve().parents[3] / "recipes" / "segmentation"


@pytest.mark.parametrize("name, head, align_corners", [("cityscapes_hrnet_w48", None, False),
                                                        ("cityscapes_hrnet_w48_ocr", "ocr", True)])
def test_cityscapes_recipes_mirror_the_official_settings(name, head, align_corners):
    config = load_config(RECIPES / f"{name}.yaml")
    assert (config.model.arch, config.model.head, config.model.align_corners) == ("hrnet_w48", head, align_corners)
    opt, data = config.optimizer, config.data
    assert (opt.name, opt.lr, opt.momentum, opt.nesterov, opt.weight_decay) == ("sgd", 0.01, 0.9, False, 5e-4)
    assert (config.schedule.name, config.schedule.power, config.schedule.warmup_epochs) == ("poly", 0.9, 0.0)
    assert (config.train.epochs, config.train.batch_size) == (484, 12)
    assert (data.format, data.crop_size, data.base_size, data.scale_range, data.flip) == \
        ("cityscapes", (512, 1024), 2048, (0.5, 2.1), True)
    assert (data.ohem_thresh, data.ohem_min_kept_per_image, data.ohem_aux_normalization) == (0.9, 43691, "all_pixels")
    if head == "ocr":
        assert data.output_weights == [0.4, 1.0]
    # HRNet-Semantic-Segmentation lib/datasets/cityscapes.py: fixed class weights; tools/test.py: windows of
    # TEST.IMAGE_SIZE (the whole 1024x2048 image) with the Cityscapes multi_scale_inference override.
    assert len(data.class_weights) == 19 and data.class_weights[0] == 0.8373 and data.class_weights[-1] == 1.0507
    assert (data.test_mode, data.test_crop_size) == ("cityscapes", (1024, 2048))
    task = SegmentationTask(config)
    assert task.inference_config().crop_size == (1024, 2048)
    criterion = task._build_criterion(None)
    assert criterion.class_weights.tolist() == pytest.approx(data.class_weights)


def test_head_learning_rate_option_reaches_the_optimizer():
    from hrnet.engine.optim import parameter_groups
    from hrnet.tasks.segmentation.task import SegmentationTask

    config = load_config(RECIPES / "cityscapes_hrnet_w48_ocr.yaml", ["optimizer.head_lr_mult=10",
                                                                     "model.arch=hrnet_w18_small_v1"])
    model = SegmentationTask(config).build_model()
    groups = {g["name"]: g["lr"] for g in parameter_groups(model, config.optimizer)}
    assert groups == {"backbone": 0.01, "head": pytest.approx(0.1)}


def test_camvid_recipe_reads_the_real_data(camvid_dir):
    from hrnet.tasks.segmentation.task import SegmentationTask

    config = load_config(RECIPES / "camvid_hrnet_w18_small_v1.yaml", [f"data.root={camvid_dir}"])
    task = SegmentationTask(config)
    assert task.classes.num_classes == 11 and task.classes.ignore_index == 11
    assert len(task.build_dataset("val")) == 101
