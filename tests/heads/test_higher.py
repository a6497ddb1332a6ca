"""The HigherHRNet head: published sizes, official shapes and keys, the official yaml reader, ONNX export."""

import pytest
import torch

import hrnet
from hrnet.errors import ConfigError
from hrnet.heads.higher import HigherHRNetHead, options_from_official
from hrnet.tasks.bottom_up import MergedOutputs, model_from_official, settings_from_official
from helpers import tiny_spec


def official_yaml(width=32, input_size=512, fp16=False):
    """The model-relevant part of experiments/coco/higher_hrnet/w{32,48}_{512,640}_adam_lr1e-3.yaml."""
    c = width
    stage = lambda n, m: {"NUM_MODULES": m, "NUM_BRANCHES": n, "BLOCK": "BASIC", "NUM_BLOCKS": [4] * n,  # noqa: E731
                          "NUM_CHANNELS": [c * 2**i for i in range(n)], "FUSE_METHOD": "SUM"}
    cfg = {
        "DATASET": {"INPUT_SIZE": input_size, "MAX_NUM_PEOPLE": 30, "NUM_JOINTS": 17},
        "LOSS": {"NUM_STAGES": 2, "WITH_AE_LOSS": [True, False], "AE_LOSS_TYPE": "exp"},
        "MODEL": {"NAME": "pose_higher_hrnet", "NUM_JOINTS": 17, "TAG_PER_JOINT": True, "EXTRA": {
            "FINAL_CONV_KERNEL": 1, "PRETRAINED_LAYERS": ["*"], "STEM_INPLANES": 64,
            "STAGE2": stage(2, 1), "STAGE3": stage(3, 4), "STAGE4": stage(4, 3),
            "DECONV": {"NUM_DECONVS": 1, "NUM_CHANNELS": [c], "KERNEL_SIZE": [4], "NUM_BASIC_BLOCKS": 4,
                       "CAT_OUTPUT": [True]}}},
        "TEST": {"FLIP_TEST": True, "SCALE_FACTOR": [1], "DETECTION_THRESHOLD": 0.1, "WITH_HEATMAPS": "(True, True)",
                 "WITH_AE": "(True, False)", "PROJECT2IMAGE": True, "NMS_KERNEL": 5, "NMS_PADDING": 2},
    }
    if fp16:
        cfg["FP16"] = {"ENABLED": True, "DYNAMIC_LOSS_SCALE": True}
    return cfg


@pytest.mark.parametrize("arch, k, params", [("hrnet_w32", 17, 28_645_331), ("hrnet_w48", 17, 63_827_139),
                                             ("hrnet_w32", 14, 28_641_962)])
def test_published_parameter_counts(arch, k, params):
    """The README's 28.6M (W32) and 63.8M (W48); 14 keypoints: CrowdPose."""
    with torch.device("meta"):
        model = hrnet.create_model(arch, task="bottom_up_pose", num_classes=k)
    assert sum(p.numel() for p in model.parameters()) == params
    assert len(model.state_dict()) == 1810  # 1509 without num_batches_tracked, as the official model


def test_official_output_shapes_and_key_names():
    with torch.device("meta"):
        model = hrnet.create_model("hrnet_w32", task="bottom_up_pose").eval()
        square = model(torch.zeros(1, 3, 512, 512))
        wide = model(torch.zeros(1, 3, 512, 768))
    assert [tuple(o.shape) for o in square] == [(1, 34, 128, 128), (1, 17, 256, 256)]
    assert [tuple(o.shape) for o in wide] == [(1, 34, 128, 192), (1, 17, 256, 384)]
    shapes = {k: tuple(v.shape) for k, v in hrnet.checkpoints.to_official_state_dict(model).items()}
    assert shapes["final_layers.0.weight"] == (34, 32, 1, 1) and shapes["final_layers.1.bias"] == (17,)
    assert shapes["deconv_layers.0.0.0.weight"] == (66, 32, 4, 4)  # ConvTranspose2d: (in, out, kh, kw)
    assert "deconv_layers.0.4.0.bn2.running_var" in shapes and "deconv_layers.0.5.0.conv1.weight" not in shapes
    assert "stage4.2.fuse_layers.0.3.1.weight" in shapes and "stage4.2.fuse_layers.1.0.0.0.weight" not in shapes


@pytest.mark.parametrize("width, size", [(32, 512), (48, 640)])
def test_official_yaml_reader(width, size):
    cfg = official_yaml(width, size, fp16=size == 640)
    spec = hrnet.HRNetSpec.from_official(cfg["MODEL"]["EXTRA"])
    options = options_from_official(cfg)
    assert options == {"num_classes": 17, "tag_per_joint": True, "with_ae_loss": (True, False), "final_conv_kernel": 1,
                       "deconv_channels": (width,), "deconv_kernels": (4,), "num_basic_blocks": 4,
                       "cat_output": (True,)}
    assert spec.width == width
    with torch.device("meta"):
        model = model_from_official(cfg)
        reference = hrnet.create_model(f"hrnet_w{width}", task="bottom_up_pose")
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters())
    settings = settings_from_official(cfg)
    assert (settings.input_size, settings.scales, settings.flip, settings.adjust, settings.refine) == (
        size, (1.0,), True, True, True)
    assert (settings.detection_threshold, settings.tag_threshold, settings.max_people, settings.nms_kernel) == (
        0.1, 1.0, 30, 5)


def test_yaml_reader_and_head_options_name_what_is_wrong():
    cfg = official_yaml()
    del cfg["MODEL"]["EXTRA"]["DECONV"]
    with pytest.raises(ConfigError, match="DECONV"):
        options_from_official(cfg)
    with pytest.raises(ConfigError, match="one entry per output"):
        HigherHRNetHead(in_channels=[8], num_classes=17, with_ae_loss=(True,))
    with pytest.raises(ConfigError, match="deconv kernels"):
        HigherHRNetHead(in_channels=[8], num_classes=17, deconv_kernels=(5,))


def test_two_deconv_stages_without_concatenation_and_one_shared_tag():
    """The head options the official code supports beyond the COCO models."""
    torch.manual_seed(0)
    head = HigherHRNetHead(in_channels=[8], num_classes=5, tag_per_joint=False, with_ae_loss=(True, True, False),
                           deconv_channels=(8, 4), deconv_kernels=(4, 2), num_basic_blocks=1, cat_output=(True, False),
                           final_conv_kernel=3)
    outputs = head([torch.randn(1, 8, 6, 10)])
    assert [tuple(o.shape) for o in outputs] == [(1, 6, 6, 10), (1, 6, 12, 20), (1, 5, 24, 40)]
    assert head.deconv_layers[0][0][0].in_channels == 8 + 6 and head.deconv_layers[1][0][0].in_channels == 8
    state = head.state_dict()
    assert HigherHRNetHead.options_from_state(state) == {
        "num_classes": 5, "tag_per_joint": False, "with_ae_loss": (True, True, False), "final_conv_kernel": 3,
        "deconv_channels": (8, 4), "deconv_kernels": (4, 2), "num_basic_blocks": 1, "cat_output": (True, False)}
    assert head.class_keys == ("final_layers.", "deconv_layers.0.0.0.")


def test_forward_and_backward_train_and_eval(tiny):
    torch.manual_seed(0)
    model = hrnet.create_model(tiny, task="bottom_up_pose")
    outputs = model(torch.randn(2, 3, 65, 97))  # not a multiple of 32
    assert [tuple(o.shape) for o in outputs] == [(2, 34, 17, 25), (2, 17, 34, 50)]
    sum(o.pow(2).mean() for o in outputs).backward()
    assert model.backbone.conv1.weight.grad.abs().sum() > 0 and model.head.final_layers[1].weight.grad.abs().sum() > 0
    assert isinstance(model.eval()(torch.randn(1, 3, 64, 64)), list)


def test_onnx_export_of_the_merged_outputs(tmp_path):
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = hrnet.create_model(tiny_spec(), task="bottom_up_pose")
    merged = MergedOutputs(model)
    report = hrnet.export_onnx(merged, tmp_path / "higher.onnx", input_size=(64, 96))
    assert all(error < 1e-4 for _, error, _ in report.checks)
    with torch.no_grad():
        out = merged.eval()(torch.randn(1, 3, 64, 96))
    assert out.shape == (1, 17 + 17, 32, 48)
