"""mmpose top-down heatmap checkpoints (0.x and 1.x) load and give mmpose's heatmaps.

Layouts: mmpose 0.x `mmpose/models/backbones/hrnet.py` (official pose_hrnet names, nearest fusion, only
`fuse_layers.0` in the last module) with `heads/topdown_heatmap_simple_head.py` (`keypoint_head.final_layer`, a
1x1 conv, num_deconv_layers=0); mmpose 1.x `heads/heatmap_heads/heatmap_head.py` (`head.final_layer`) and
`pose_estimators/base.py` (a saved `data_preprocessor.{mean,std}`). Files are mmcv containers
{"meta", "state_dict"}. The expected heatmaps: the final conv applied by hand to the backbone's branch 0.
"""

import pytest
import torch
import torch.nn.functional as F

import hrnet
from hrnet.export import relative_error
from helpers import randomize_batchnorm, tiny_spec


def _pose_backbone(seed):
    torch.manual_seed(seed)
    return randomize_batchnorm(hrnet.create_model(tiny_spec().replace(multi_scale_output=False), task="backbone"),
                               seed).eval()


@pytest.mark.parametrize("version", ["0.x", "1.x"])
def test_mmpose_heatmaps(tmp_path, version):
    backbone = _pose_backbone(0)
    generator = torch.Generator().manual_seed(1)
    weight, bias = torch.randn(17, 8, 1, 1, generator=generator), torch.randn(17, generator=generator)
    head = "keypoint_head" if version == "0.x" else "head"
    state = {**{"backbone." + k: v for k, v in backbone.state_dict().items()},
             f"{head}.final_layer.weight": weight, f"{head}.final_layer.bias": bias}
    if version == "1.x":
        state["data_preprocessor.mean"] = torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1)
        state["data_preprocessor.std"] = torch.tensor([58.395, 57.12, 57.375]).view(-1, 1, 1)
    torch.save({"meta": {"mmpose_version": version}, "state_dict": state}, tmp_path / "hrnet_w32_coco.pth")
    x = torch.randn(2, 3, 64, 48)
    model = hrnet.create_model(tiny_spec(), task="pose", checkpoint=tmp_path / "hrnet_w32_coco.pth").eval()
    with torch.no_grad():
        assert relative_error(model(x), F.conv2d(backbone(x)[0], weight, bias)) < 1e-6
    assert any(f"mmpose {version}" in note for note in model.load_report.notes)
