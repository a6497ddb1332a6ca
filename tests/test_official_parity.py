"""The official checkpoints load and compute the official function (fixtures made with the official code)."""

import pytest
import torch

import hrnet
from hrnet.checkpoints import official_key
from hrnet.export import relative_error
from helpers import manifest, official

FIXTURES = {
    "cls_tiny": dict(task="classification"),
    "pose_tiny": dict(task="pose"),
    "seg_tiny": dict(task="segmentation"),
    "seg_ocr_tiny": dict(task="segmentation", head="ocr"),
}


def build_official(name: str, **kwargs):
    meta, checkpoint, io = official(name)
    config = meta["spec"]
    model = hrnet.create_model(
        hrnet.HRNetSpec.from_official(config["EXTRA"]),
        num_classes=config.get("NUM_CLASSES", config.get("NUM_JOINTS")),
        align_corners=config.get("ALIGN_CORNERS"),
        checkpoint=checkpoint,
        **FIXTURES[name],
        **kwargs,
    )
    return model.eval(), meta, io


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_official_checkpoint_reproduces_official_outputs(name):
    model, meta, io = build_official(name)
    assert sum(p.numel() for p in model.parameters()) == meta["params"]
    with torch.no_grad():
        main = model(io["input"])
        every = model.forward_all(io["input"])  # OCR: (aux, main), as the official model returns
    assert main.shape == tuple(meta["output_shapes"][-1])
    assert relative_error(main, io["outputs"][-1]) < 1e-5
    assert len(every) == len(io["outputs"])
    for ours, theirs in zip(every, io["outputs"]):
        assert relative_error(ours, theirs) < 1e-5


def test_ocr_returns_aux_and_main_in_training_mode():
    model, _, io = build_official("seg_ocr_tiny")
    model.train()
    aux, main = model(io["input"])
    assert aux.shape == main.shape == io["outputs"][1].shape


def test_segmentation_head_sizes_come_from_the_checkpoint():
    """OCR widths (32/16 in the fixture, 512/256 by default) and the class count are read from the file."""
    meta, checkpoint, io = official("seg_ocr_tiny")
    model = hrnet.create_model(hrnet.HRNetSpec.from_official(meta["spec"]), task="segmentation", head="ocr",
                               checkpoint=checkpoint).eval()
    assert model.head.cls_head.out_channels == 19
    with torch.no_grad():
        assert relative_error(model(io["input"]), io["outputs"][-1]) < 1e-5


@pytest.mark.parametrize("name", ["cls_w18_small_v1", "cls_w18_small_v2", "cls_w18", "cls_w32", "cls_w64",
                                  "pose_w32_256x192", "pose_w48_384x288", "pose_mpii_w32", "seg_w48_cityscapes",
                                  "seg_w48_pascal_ctx59", "seg_ocr_w48_cityscapes"])
def test_full_size_models_have_the_official_keys_shapes_and_parameter_count(name):
    entry = manifest()[name]
    config = entry["spec"]
    task = {"cls": "classification", "pose": "pose", "seg": "segmentation"}[entry["family"]]
    with torch.device("meta"):
        model = hrnet.create_model(
            hrnet.HRNetSpec.from_official(config["EXTRA"]), task=task,
            num_classes=config.get("NUM_CLASSES", config.get("NUM_JOINTS")),
            head="ocr" if "OCR" in config else None)
    ours = [[official_key(k), list(v.shape)] for k, v in model.state_dict().items()]
    theirs = [[k.removeprefix("model."), shape] for k, shape in entry["state_dict"]]
    assert ours == theirs
    assert sum(p.numel() for p in model.parameters()) == entry["params"]


@pytest.mark.parametrize("arch, timm_name", [("hrnet_w18_small_v1", "hrnet_w18_small"),
                                             ("hrnet_w18_small_v2", "hrnet_w18_small_v2")])
def test_timm_checkpoints_load_and_match_timm(arch, timm_name, tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    reference = timm.create_model(timm_name, pretrained=False).eval()
    # Move BatchNorm statistics away from 0/1 so that eval-mode BatchNorm matters.
    for module in reference.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    torch.save(reference.state_dict(), tmp_path / "timm.pth")
    model = hrnet.create_model(arch, checkpoint=tmp_path / "timm.pth").eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        assert relative_error(model(x), reference(x)) < 1e-5
