"""timm's own HRNet models (timm/models/hrnet.py) written as the Hugging Face hub files are (a
state dict in safetensors) load through the registry and give timm's logits: the publisher computes
the expected output. `paddle_in1k` models have no conv bias in the head (timm `head_conv_bias=False`)."""

import pytest
import torch

import hrnet
from hrnet.export import relative_error
from helpers import randomize_batchnorm

timm = pytest.importorskip("timm")


@pytest.mark.parametrize("timm_name, name", [("hrnet_w18_small", "hrnet_w18_small_v1.ms_in1k"),
                                             ("hrnet_w18_ssld", "hrnet_w18.paddle_in1k")])
def test_timm_files_load_with_timm_outputs(timm_name, name, server, cache, repoint):
    from safetensors.torch import save_file

    root, base, _ = server
    torch.manual_seed(0)
    reference = randomize_batchnorm(timm.create_model(timm_name, pretrained=False)).eval()
    path = root / "model.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    entry = hrnet.get_weights(name)
    assert entry.aliases == () or f"{timm_name}.{entry.tag}" in entry.aliases
    served = repoint(entry, path, base, use_sha256=True)
    model = hrnet.create_model(entry.arch, weights=served).eval()
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert relative_error(model(x), reference(x)) < 1e-5
    biases = [n for n in model.load_report.notes if "conv bias" in n]
    assert bool(biases) == (not entry.conv_bias)
