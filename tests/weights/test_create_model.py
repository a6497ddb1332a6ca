"""`create_model(arch, weights=...)` and recipes' `model.weights`: what follows from the entry, what
must agree (each mismatch an error naming both sides), and fine-tuning (ImageNet backbones for
other tasks, another class count) as `model.pretrained` does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import hrnet
from hrnet.errors import CheckpointError
from hrnet.layouts.official import official_key
from hrnet.weights import registry
from helpers import randomize_batchnorm, tiny_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def publish(server, cache, tiny_arch, repoint, monkeypatch):
    """publish(name, model, *, layout_keys) -> a registry entry `hrnet_tiny.<tag of name>` serving
    `model`'s weights in the official layout, registered for get_weights / recipes."""
    root, base, _ = server
    table = dict(registry._registry())
    monkeypatch.setattr(registry, "_registry", lambda: table)

    def publish_(name: str, model: torch.nn.Module) -> hrnet.Weights:
        entry = hrnet.get_weights(name)
        path = root / f"{entry.tag}.pth"
        torch.save({official_key(k): v for k, v in model.state_dict().items()}, path)
        served = repoint(entry, path, base, arch=tiny_arch)
        table[served.name] = served
        return served
    return publish_


def _model(task, **options):
    torch.manual_seed(0)
    model = hrnet.create_model(tiny_spec(), task=task, **options)
    for param in model.parameters():
        param.data.add_(torch.randn_like(param) * 0.01)
    return randomize_batchnorm(model).eval()


def test_the_weights_decide_task_head_classes_and_align_corners(publish, tiny_arch):
    source = _model("segmentation", head="ocr", num_classes=19, align_corners=True)
    entry = publish("hrnet_w48.cityscapes_ocr_official", source)
    model = hrnet.create_model(tiny_arch, weights=entry.tag).eval()  # the bare TAG of the arch
    assert model.weights is entry and model.task == "segmentation" and type(model.head).__name__ == "OCRHead"
    assert model.spec.align_corners is True and model.head.cls_head.out_channels == 19
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))
    other = hrnet.create_model(tiny_arch, weights=entry.name, align_corners=False)
    assert any("align_corners=False" in note and "trained with True" in note for note in other.load_report.notes)


def test_imagenet_weights_initialise_other_tasks_backbones(publish, tiny_arch):
    source = _model("classification")
    entry = publish("hrnet_w32.ms_in1k", source)
    pose = hrnet.create_model(tiny_arch, task="pose", weights=entry.name)
    assert pose.task == "pose" and pose.weights is entry
    assert any("loaded the backbone only" in note for note in pose.load_report.notes)
    assert torch.equal(pose.backbone.conv1.weight, source.backbone.conv1.weight)
    detector = hrnet.create_model(tiny_arch, task="detection", num_classes=3, weights=entry.name)
    assert torch.equal(detector.backbone.body.conv1.weight, source.backbone.conv1.weight)


def test_another_class_count_reinitialises_the_class_layer(publish, tiny_arch):
    entry = publish("hrnet_w32.coco_256x192", _model("pose"))
    model = hrnet.create_model(tiny_arch, weights=entry.name, num_classes=5)
    assert model.head.final_layer.out_channels == 5
    assert any("re-initialised the class layer" in note for note in model.load_report.notes)


@pytest.mark.parametrize("arch, kwargs, message", [
    ("hrnet_w48", {"weights": "hrnet_w32.coco_256x192"}, "are for architecture hrnet_w32, not hrnet_w48"),
    ("hrnet_w32", {"weights": "hrnet_w32.coco_256x192", "task": "segmentation"},
     "are for task 'pose', not 'segmentation'"),
    ("hrnet_w48", {"weights": "hrnet_w48.cityscapes_fcn_512x1024_40k", "head": "ocr"},
     r"segmentation head default \(None\), not 'ocr'"),
    ("hrnet_w18", {"weights": "hrnet_w18.coco_faster_rcnn_1x", "detector": "mask_rcnn"},
     "detection detector 'faster_rcnn', not 'mask_rcnn'"),
    ("hrnet_w32", {"weights": "hrnet_w32.coco_256x192", "checkpoint": "x.pth"}, "not both"),
    ("hrnet_w32", {"weights": "coco_256x129"}, r"unknown weights 'hrnet_w32\.coco_256x129'; closest"),
])
def test_mismatches_name_both_sides(cache, arch, kwargs, message):
    with pytest.raises(CheckpointError, match=message):
        hrnet.create_model(arch, **kwargs)
    assert not cache.exists()  # nothing was downloaded


def test_a_spec_needs_the_full_name_and_the_same_architecture(publish, tiny_arch):
    entry = publish("hrnet_w32.coco_256x192", _model("pose"))
    assert hrnet.create_model(tiny_spec(), weights=entry.name).weights is entry
    with pytest.raises(CheckpointError, match="bare tag"):
        hrnet.create_model(tiny_spec(), weights="coco_256x192")
    with pytest.raises(CheckpointError, match="the given spec differs"):
        hrnet.create_model(tiny_spec(stem_channels=32), weights=entry.name)


def test_offline_create_model_says_where_the_file_goes(cache, monkeypatch):
    monkeypatch.setenv("HRNET_OFFLINE", "1")
    entry = hrnet.get_weights("hrnet_w32.coco_256x192")
    with pytest.raises(CheckpointError, match="HRNET_OFFLINE") as caught:
        hrnet.create_model("hrnet_w32", weights="coco_256x192")
    assert entry.url in str(caught.value) and str(entry.cache_path) in str(caught.value)


def test_recipes_take_model_weights(publish, tiny_arch):
    from hrnet.engine.config import load_config

    source = _model("pose")
    entry = publish("hrnet_w32.coco_256x192", source)
    config = load_config(ROOT / "recipes/pose/hrnet_w32_coco_256x192.yaml",
                         [f"model.arch={tiny_arch}", f"model.weights={entry.tag}"])
    assert config.model.weights == entry.tag
    model = config.model.create("pose").eval()
    assert model.weights is entry
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))
