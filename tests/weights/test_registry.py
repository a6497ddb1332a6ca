"""The registry's data: every entry validates, names are unique, what an entry names exists (layout,
arch, task, head, recipe, class list), and the look-ups and their errors."""

from __future__ import annotations

from collections import Counter
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

import hrnet
from hrnet.errors import CheckpointError, ConfigError
from hrnet.layouts import by_name, registered
from hrnet.weights import CLASS_LISTS, Weights, class_names
from hrnet.weights.registry import ZOO_FILES, _read_zoo

ROOT = Path(__file__).resolve().parents[2]
ALL = hrnet.list_weights()
IDS = [w.name for w in ALL]


def test_every_data_file_validates_and_names_are_unique():
    per_file = {stem: _read_zoo(stem) for stem in ZOO_FILES}
    assert all(all(w.source == stem for w in entries) for stem, entries in per_file.items())
    names = [n for entries in per_file.values() for w in entries for n in (w.name, *w.aliases)]
    assert [n for n, count in Counter(names).items() if count > 1] == []
    assert len(ALL) == sum(map(len, per_file.values())) > 200
    assert {w.source for w in ALL} == {"timm", "mmpose", "mmseg", "mmdet", "official"}


@pytest.mark.parametrize("entry", ALL, ids=IDS)
def test_entry_names_what_exists(entry: Weights):
    layouts = {layout.name for layout in registered()}
    if entry.pending is None:
        assert entry.available and entry.layout in layouts and entry.arch in hrnet.VARIANTS
        if entry.metric is not None:
            assert entry.metric.dataset
    else:  # listed, not loadable: it names what it waits for, and something is indeed missing
        assert not entry.available, f"{entry.name}: everything it needs is registered now; drop `pending`"
    if entry.hash_prefix:
        assert entry.hash_prefix in entry.file_name and entry.hash_prefix in entry.url
    if entry.direct:
        assert entry.url.rsplit("/", 1)[-1] == entry.file_name, "a direct URL ends in its file name"
    else:
        assert entry.url in entry.manual and entry.cache_path.name == entry.file_name
    if entry.recipe is not None:
        recipe = yaml.safe_load((ROOT / entry.recipe).read_text())
        assert recipe["task"] == entry.task and recipe["model"]["arch"] == entry.arch


@pytest.mark.parametrize("entry", [w for w in ALL if w.available], ids=[w.name for w in ALL if w.available])
def test_names_match_the_output_count(entry: Weights):
    if entry.classes is None and entry.keypoints is None:
        pytest.skip(f"{entry.name} has no built-in name list ({entry.num_classes} outputs)")
    names = class_names(entry)
    assert len(names) == entry.num_classes and all(isinstance(n, str) and n for n in names)


def test_class_names_come_from_the_well_kept_sources():
    assert class_names("hrnet_w18.ms_in1k")[:2] == ["tench", "goldfish"]
    coco = class_names("hrnet_w32.coco_mask_rcnn_1x")
    assert coco[:3] == ["__background__", "person", "bicycle"] and coco[-1] == "toothbrush" and "N/A" not in coco
    assert class_names("hrnet_w48.cityscapes_ocr_official")[0] == "road"
    assert class_names("hrnet_w32.mpii_256x256")[:2] == ["right_ankle", "right_knee"]
    assert class_names("hrnet_w32.coco_256x192")[0] == "nose"
    from hrnet.tasks.segmentation.classes import BUILTIN

    assert set(CLASS_LISTS) - {"imagenet-1k", "coco"} <= set(BUILTIN)
    with pytest.raises(CheckpointError, match="19 outputs without a built-in name list"):
        class_names("hrnet_w32.coco_aic_256x192_combine")


def test_pose_decoding_follows_the_publishers_configs():
    for w in hrnet.list_weights(task="pose"):
        if w.decoding == "quarter":
            assert w.dark_kernel is None and w.flip_shift
            continue
        assert w.decoding in ("dark", "udp") and f"_{w.decoding}" in w.tag and w.flip_shift == (w.decoding == "dark")
        # mmpose 0.x modulate_kernel: 17 at 384x288, else 11; mmpose 1.x keeps 11 everywhere.
        expected = 17 if w.input_size == (384, 288) and not w.tag.endswith("_mmpose1") else 11
        assert w.dark_kernel == expected, w.name
    udp = hrnet.get_weights("hrnet_w32.coco_256x192_udp")
    assert (udp.decoding, udp.dark_kernel, udp.input_size, udp.flip_shift) == ("udp", 11, (256, 192), False)


def test_segmentation_fusion_follows_the_publishers():
    for w in hrnet.list_weights(task="segmentation"):
        assert w.fuse_mode == "bilinear"
        if w.source == "mmseg":
            assert not w.align_corners and not w.conv_bias
        elif w.head == "ocr":
            assert w.align_corners  # HRNet-OCR's default ALIGN_CORNERS True
    assert not hrnet.get_weights("hrnet_w48.cityscapes_fcn_official").align_corners  # seg_hrnet_w48 yaml: False
    assert all(w.fuse_mode == "nearest" and not w.align_corners for w in hrnet.list_weights(task="pose"))


def test_list_filters_and_get_by_alias():
    pose = hrnet.list_weights(task="pose", arch="hrnet_w48", source="mmpose")
    assert pose and all((w.task, w.arch, w.source) == ("pose", "hrnet_w48", "mmpose") for w in pose)
    assert hrnet.list_weights(source=["timm", "mmdet"]) == [w for w in ALL if w.source in ("timm", "mmdet")]
    assert all(w.available for w in hrnet.list_weights(available=True))
    assert hrnet.get_weights("hrnet_w18_small.ms_in1k") is hrnet.get_weights("hrnet_w18_small_v1.ms_in1k")
    assert hrnet.get_weights("hrnet_w48_ssld.paddle_in1k").name == "hrnet_w48.paddle_in1k"


def test_unknown_names_list_the_closest():
    with pytest.raises(CheckpointError, match=r"unknown weights 'hrnet_w32\.coco_256x129'; closest: "
                                              r"hrnet_w32\.coco_256x192"):
        hrnet.get_weights("hrnet_w32.coco_256x129")
    with pytest.raises(CheckpointError, match=r"closest: .*hrnet_w32\.coco_256x192_udp"):
        hrnet.get_weights("hrnet_w30.coco_256x192_udp")  # the tag exists under other archs


def _valid(**changes):
    base = hrnet.get_weights("hrnet_w32.coco_256x192")
    return {f.name: getattr(base, f.name) for f in fields(Weights)} | changes


@pytest.mark.parametrize("changes, message", [
    ({"licence": "GPL"}, "field 'licence'"),
    ({"hash_prefix": "deadbeef"}, "does not contain it"),
    ({"sha256": "abc"}, "64 hex digits"),
    ({"direct": False, "manual": None}, "needs 'manual'"),
    ({"layout": "caffe"}, "layout 'caffe' is not registered"),
    ({"name": "hrnet_w99.coco_256x192"}, "architecture 'hrnet_w99' is not registered"),
    ({"decoding": None}, "needs 'decoding'"),
    ({"decoding": "dark"}, "dark_kernel"),
    ({"classes": "coco"}, "a pose entry names 'keypoints'"),
    ({"keypoints": "halpe"}, "field 'keypoints'"),
    ({"align_corners": True}, "only applies to bilinear"),
    ({"input_size": (256,)}, "input_size"),
    ({"page": "github:open-mmlab/mmpose"}, "https://"),
    ({"name": "HRNet-W32"}, "ARCH.TAG"),
    ({"metrics": ({"name": "AP", "value": 74.6, "unit": "fraction", "dataset": "COCO val2017"},)}, "outside 0..1"),
])
def test_bad_entries_name_the_field(changes, message):
    with pytest.raises(ConfigError, match=message):
        Weights(**_valid(**changes))


def test_layout_implications_are_checked():
    fcn = hrnet.get_weights("hrnet_w48.cityscapes_fcn_512x1024_40k")
    assert by_name(fcn.layout).implies["align_corners"] is False
    with pytest.raises(ConfigError, match="implies align_corners=False"):
        fcn.replace(align_corners=True)
    with pytest.raises(ConfigError, match="implies conv_bias=False"):
        fcn.replace(conv_bias=True)


def test_pending_entries_are_listed_not_loaded(cache):
    pending = [w for w in ALL if w.pending]
    assert pending and all(not w.available for w in pending)
    with pytest.raises(CheckpointError, match="need .*associative-embedding head"):
        hrnet.create_model(pending[0].arch, weights=pending[0].name)
    with pytest.raises(ConfigError, match="mark the entry 'pending'"):
        pending[0].replace(pending=None)
