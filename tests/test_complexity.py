"""The published parameter and multiply-add counts come out (official convention: conv+linear MACs / 2^30)."""

import pytest

import torch

import hrnet
from hrnet.complexity import describe

PUBLISHED = [  # (arch, task, input, params in M, GMACs / 2^30): the HRNet papers and repositories
    ("hrnet_w18", "classification", (224, 224), 21.3, 3.99),
    ("hrnet_w32", "classification", (224, 224), 41.2, 8.31),
    ("hrnet_w48", "classification", (224, 224), 77.5, 16.1),
    ("hrnet_w18_small_v1", "classification", (224, 224), 13.2, 1.49),
    ("hrnet_w18_small_v2", "classification", (224, 224), 15.6, 2.42),
    ("hrnet_w64", "classification", (224, 224), 128.1, 26.9),
    ("hrnet_w32", "pose", (256, 192), 28.5, 7.1),
    ("hrnet_w48", "pose", (256, 192), 63.6, 14.6),
]


@pytest.mark.parametrize("arch, task, size, params, gmacs", PUBLISHED)
def test_published_numbers(arch, task, size, params, gmacs):
    result = describe(arch, task=task, input_size=size)
    assert round(result.params / 1e6, 1) == params
    digits = len(str(gmacs).split(".")[1])  # compare at the precision the table publishes
    assert round(result.macs / 2**30, digits) == gmacs


def test_segmentation_w48_has_65_9m_parameters():
    assert round(describe("hrnet_w48", task="segmentation").params / 1e6, 1) == 65.9


def test_macs_scale_with_the_input_area():
    small = describe("hrnet_w18_small_v1", input_size=(224, 224)).macs
    large = describe("hrnet_w18_small_v1", input_size=(448, 448)).macs
    assert 3.5 < large / small < 4.0  # the classifier's linear layer does not grow


@pytest.mark.parametrize("name", sorted(hrnet.VARIANTS))
def test_the_list_table_holds_every_variants_parameter_count(name):
    """`hrnet list` prints spec.LIST_PARAMETERS (it imports no torch): each number is the model's."""
    from hrnet.spec import LIST_PARAMETERS

    task, params = LIST_PARAMETERS[name]
    with torch.device("meta"):
        model = hrnet.create_model(name, task=task)
    assert sum(p.numel() for p in model.parameters()) == params
