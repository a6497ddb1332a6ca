import dataclasses

import pytest

import hrnet
from hrnet.spec import VARIANTS, HRNetSpec, StageSpec

from helpers import official


def test_registry_has_the_published_variants():
    assert hrnet.list_models() == sorted([
        "hrnet_w18_small_v1", "hrnet_w18_small_v2", "hrnet_w18", "hrnet_w30", "hrnet_w32",
        "hrnet_w40", "hrnet_w44", "hrnet_w48", "hrnet_w64",
        "lite_hrnet_18", "lite_hrnet_30", "naive_lite_hrnet_18", "wider_naive_lite_hrnet_18"])


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_each_stage_adds_a_branch_at_twice_the_width(name):
    spec = VARIANTS[name]
    last = spec.stages[-1].channels
    assert [c // last[0] for c in last] == [1, 2, 4, 8]
    assert spec.strides == (4, 8, 16, 32)
    # Lite-HRNet's iterative neck projects each branch to the width of the one above it.
    assert spec.channels == (last if spec.neck is None else (last[0], *last[:-1]))


def test_small_v1_uses_widths_16_to_128():
    assert VARIANTS["hrnet_w18_small_v1"].stages[-1].channels == (16, 32, 64, 128)


def test_spec_is_frozen_and_replace_leaves_the_original():
    spec = VARIANTS["hrnet_w32"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.fuse_mode = "bilinear"
    changed = spec.replace(multi_scale_output=False)
    assert spec.multi_scale_output and not changed.multi_scale_output
    assert changed.channels == (32,) and changed.strides == (4,)


@pytest.mark.parametrize("kwargs, message", [
    (dict(modules=1, block="dense", blocks=(1,), channels=(8,)), "block"),
    (dict(modules=0, block="basic", blocks=(1,), channels=(8,)), "modules"),
    (dict(modules=1, block="basic", blocks=(1, 1), channels=(8,)), "one entry per branch"),
    (dict(modules=1, block="basic", blocks=(1,), channels=(-8,)), "positive"),
])
def test_stage_spec_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StageSpec(**kwargs)


def test_spec_rejects_wrong_branch_count_and_fuse_mode(tiny):
    stages = list(tiny.stages)
    stages[2] = stages[1]
    with pytest.raises(ValueError, match="stage 3 must have 3 branches"):
        HRNetSpec(stages=tuple(stages))
    with pytest.raises(ValueError, match="fuse_mode"):
        tiny.replace(fuse_mode="bicubic")


@pytest.mark.parametrize("name", ["cls_tiny", "pose_tiny", "seg_tiny"])
def test_from_official_reads_the_extra_block(name):
    meta, _, _ = official(name)
    spec = HRNetSpec.from_official(meta["spec"]["EXTRA"])
    assert spec.stages[3].channels == (8, 16, 32, 64)
    assert spec.stages[2].modules == 2 and spec.stages[2].blocks == (1, 2, 1)
    # The pose repo has no STAGE1: it hard-codes four bottlenecks of width 64.
    expected_stage1 = (4, 64) if name == "pose_tiny" else (1, 8)
    assert (spec.stages[0].blocks[0], spec.stages[0].channels[0]) == expected_stage1
    assert HRNetSpec.from_official(meta["spec"]) == spec  # the dict holding EXTRA works too


def test_from_official_names_a_missing_field():
    with pytest.raises(ValueError, match="STAGE2 lacks the field 'NUM_BLOCKS'"):
        HRNetSpec.from_official({"STAGE2": {"NUM_MODULES": 1, "BLOCK": "BASIC", "NUM_CHANNELS": [8, 16]}})
