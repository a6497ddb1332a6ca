"""HigherHRNet checkpoints load and give the publisher's outputs.

Layouts: the official `lib/models/pose_higher_hrnet.py` (HRNet/HigherHRNet-Human-Pose-Estimation; file
`pose_higher_hrnet_w32_512.pth`): a bare state dict with the pose backbone's names and `final_layers.{i}` (conv with
bias), `deconv_layers.{i}.0.{0,1}` (ConvTranspose2d without bias, BN), `deconv_layers.{i}.{1..n}.0.{conv1,bn1,conv2,
bn2}` (each BasicBlock in a one-element Sequential); the FP16 files `pose_higher_hrnet_w32_640.pth` /
`pose_higher_hrnet_w48_640.pth`: the same under `1.` (network_to_half's Sequential) with float16 convs; mmpose 0.x
`AssociativeEmbedding` + `AEHigherResolutionHead` (`higher_hrnet32_coco_512x512-8ae85183_20200713.pth`):
`backbone.*`, `keypoint_head.final_layers.*`, `keypoint_head.deconv_layers.*` in an mmcv {"meta", "state_dict"}
container. The expected outputs: the head computed by hand (F.conv2d, F.conv_transpose2d, eval BatchNorm) on the
branch 0 of a separately built pose backbone.
"""

import pytest
import torch
import torch.nn.functional as F

import hrnet
from hrnet.checkpoints import CheckpointError
from hrnet.export import relative_error
from helpers import bn_eval, random_bn, randomize_batchnorm, tiny_spec

K, WIDTH = 17, 8  # COCO keypoints; the tiny spec's branch-0 width


def _backbone(seed=0):
    torch.manual_seed(seed)
    spec = tiny_spec().replace(multi_scale_output=False)
    return randomize_batchnorm(hrnet.create_model(spec, task="backbone"), seed).eval()


def official_head(k=K, *, kernel=1, blocks=2, deconv=WIDTH, seed=1):
    """Head tensors in the official key layout: final_layers.0 -> 2K (heatmaps + tags), deconv of
    WIDTH + 2K inputs (features concatenated with the predictions), `blocks` basic blocks, final_layers.1 -> K."""
    g = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.randn(*shape, generator=g) * 0.1  # noqa: E731
    state = {"final_layers.0.weight": rand(2 * k, WIDTH, kernel, kernel), "final_layers.0.bias": rand(2 * k),
             "final_layers.1.weight": rand(k, deconv, kernel, kernel), "final_layers.1.bias": rand(k),
             "deconv_layers.0.0.0.weight": rand(WIDTH + 2 * k, deconv, 4, 4),
             **random_bn("deconv_layers.0.0.1.", deconv, g)}
    for b in range(1, blocks + 1):
        for conv in ("conv1", "conv2"):
            state[f"deconv_layers.0.{b}.0.{conv}.weight"] = rand(deconv, deconv, 3, 3)
        state.update(random_bn(f"deconv_layers.0.{b}.0.bn1.", deconv, g))
        state.update(random_bn(f"deconv_layers.0.{b}.0.bn2.", deconv, g))
    return state


def expected_outputs(features, head, *, blocks=2, kernel=1):
    """The official forward of PoseHigherResolutionNet's head, written with torch.nn.functional."""
    pad = 1 if kernel == 3 else 0
    y0 = F.conv2d(features, head["final_layers.0.weight"], head["final_layers.0.bias"], padding=pad)
    x = torch.cat([features, y0], dim=1)
    x = F.conv_transpose2d(x, head["deconv_layers.0.0.0.weight"], stride=2, padding=1)
    x = F.relu(bn_eval(x, head, "deconv_layers.0.0.1."))
    for b in range(1, blocks + 1):
        p = f"deconv_layers.0.{b}.0."
        out = F.relu(bn_eval(F.conv2d(x, head[p + "conv1.weight"], padding=1), head, p + "bn1."))
        out = bn_eval(F.conv2d(out, head[p + "conv2.weight"], padding=1), head, p + "bn2.")
        x = F.relu(out + x)
    y1 = F.conv2d(x, head["final_layers.1.weight"], head["final_layers.1.bias"], padding=pad)
    return [y0, y1]


def _save(tmp_path, layout, backbone_state, head):
    if layout == "official":
        state, obj = {**backbone_state, **head}, None
    elif layout == "official-fp16":
        state = {"1." + k: (v.half() if v.is_floating_point() and v.dim() == 4 else v)
                 for k, v in {**backbone_state, **head}.items()}
        obj = None
    else:  # mmpose 0.x
        state = {**{"backbone." + k: v for k, v in backbone_state.items()},
                 **{"keypoint_head." + k: v for k, v in head.items()}}
        obj = {"meta": {"mmpose_version": "0.29.0"}, "state_dict": state}
    path = tmp_path / f"higher_{layout}.pth"
    torch.save(obj if obj is not None else state, path)
    return path, state


@pytest.mark.parametrize("layout, note", [("official", "official HigherHRNet checkpoint"),
                                          ("official-fp16", "FP16"), ("mmpose-0.x", "mmpose 0.x AssociativeEmbedding")])
def test_checkpoints_give_the_publishers_outputs(tmp_path, layout, note):
    backbone = _backbone()
    head = official_head()
    path, _ = _save(tmp_path, layout, backbone.state_dict(), head)
    model = hrnet.create_model(tiny_spec(), task="bottom_up_pose", checkpoint=path).eval()
    x = torch.randn(2, 3, 64, 96)
    if layout == "official-fp16":  # what the file holds: float16 convs, float32 BatchNorm
        backbone.load_state_dict({k: v.half().float() if v.dim() == 4 else v for k, v in backbone.state_dict().items()})
        head = {k: v.half().float() if v.dim() == 4 else v for k, v in head.items()}
    with torch.no_grad():
        outputs = model(x)
        expected = expected_outputs(backbone(x)[0], head)
    assert isinstance(outputs, list) and [o.shape for o in outputs] == [(2, 34, 16, 24), (2, 17, 32, 48)]
    for ours, theirs in zip(outputs, expected):
        assert relative_error(ours, theirs) < 1e-5
    assert any(note in line for line in model.load_report.notes)
    assert model.load_report.loaded == len(model.state_dict())


def test_head_options_come_from_the_checkpoint(tmp_path):
    """A CrowdPose-sized head (14 keypoints), 3x3 final convs and one basic block: all read from the file."""
    backbone = _backbone()
    head = official_head(14, kernel=3, blocks=1, deconv=12)
    path, _ = _save(tmp_path, "official", backbone.state_dict(), head)
    model = hrnet.create_model(tiny_spec(), task="bottom_up_pose", checkpoint=path).eval()
    assert model.head.num_classes == 14 and model.head.with_ae_loss == (True, False)
    x = torch.randn(1, 3, 32, 64)
    with torch.no_grad():
        for ours, theirs in zip(model(x), expected_outputs(backbone(x)[0], head, blocks=1, kernel=3)):
            assert relative_error(ours, theirs) < 1e-5


def test_bottom_up_and_top_down_checkpoints_are_told_apart(tmp_path):
    path, _ = _save(tmp_path, "official", _backbone().state_dict(), official_head())
    with pytest.raises(CheckpointError, match=r"HigherHRNet \(bottom-up pose\) model and the model a top-down pose "
                                              r"model: build the model with task='bottom_up_pose'"):
        hrnet.create_model(tiny_spec(), task="pose", checkpoint=path)
    top_down = tmp_path / "pose_hrnet.pth"
    torch.save({k.split(".", 1)[1]: v for k, v in hrnet.create_model(tiny_spec(), task="pose").state_dict().items()},
               top_down)
    with pytest.raises(CheckpointError, match=r"top-down pose model and the model a HigherHRNet \(bottom-up pose\) "
                                              r"model: build the model with task='pose'"):
        hrnet.create_model(tiny_spec(), task="bottom_up_pose", checkpoint=top_down)
    with pytest.raises(CheckpointError, match="HigherHRNet .* a segmentation model"):
        hrnet.create_model(tiny_spec(), task="segmentation", checkpoint=path)


def test_an_imagenet_checkpoint_initialises_the_backbone_only(tmp_path):
    """The official training start: ImageNet weights for the backbone, the head initialised fresh."""
    classifier = hrnet.create_model(tiny_spec(), task="classification", num_classes=5)
    torch.save({k.split(".", 1)[1]: v for k, v in classifier.state_dict().items()}, tmp_path / "imagenet.pth")
    model = hrnet.create_model(tiny_spec(), task="bottom_up_pose", checkpoint=tmp_path / "imagenet.pth")
    assert torch.equal(model.backbone.conv1.weight, classifier.backbone.conv1.weight)
    assert any("loaded the backbone only" in n for n in model.load_report.notes)
    assert model.head.final_layers[0].weight.std() < 0.01  # the official N(0, 0.001) head init


def test_another_keypoint_count_reinitialises_only_the_layers_that_depend_on_it(tmp_path):
    """COCO (17) weights starting a CrowdPose (14) model, as the official crowd_pose *_coco.yaml: the final
    convs and the deconv that reads the predictions are re-initialised, the rest loads."""
    path, _ = _save(tmp_path, "official", _backbone().state_dict(), official_head())
    model = hrnet.create_model(tiny_spec(), task="bottom_up_pose", num_classes=14, checkpoint=path)
    assert [tuple(o.shape[1:2]) for o in model.eval()(torch.randn(1, 3, 32, 32))] == [(28,), (14,)]
    assert sorted(model.load_report.reinitialized) == sorted(
        f"head.{k}" for k in ("final_layers.0.weight", "final_layers.0.bias", "final_layers.1.weight",
                              "final_layers.1.bias", "deconv_layers.0.0.0.weight"))
    block = official_head()["deconv_layers.0.1.0.conv1.weight"]
    assert torch.equal(model.head.deconv_layers[0][1][0].conv1.weight, block)
