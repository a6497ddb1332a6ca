"""Lite-HRNet checkpoints of the official repository, mmpose 0.x and mmpose 1.x load and compute the official
function.

Layouts: HRNet/Lite-HRNet @7b9049d `models/backbones/litehrnet.py` (identical module tree in mmpose 0.x and 1.x
`mmpose/models/backbones/litehrnet.py`: `stem`, `transition0..2`, `stage0..2` with `layers` and `fuse_layers`,
`head_layer.projects`; mmcv ConvModules `conv`/`bn`; transitions and fuse layers are plain nn.Sequential), inside
mmpose 0.x `detectors/top_down.py` with `heads/topdown_heatmap_simple_head.py` (`keypoint_head.final_layer`, a bare
1x1 conv, num_deconv_layers=0) or mmpose 1.x `heads/heatmap_heads/heatmap_head.py` (`head.final_layer`) and
`pose_estimators/base.py` (a saved `data_preprocessor`). Files are mmcv containers {"meta", "state_dict"}.

The fixtures are generated here from that module tree (`official_shapes`); the expected heatmaps come from
`reference`, a functional forward pass over the official keys written from the formulas of the code: it runs the
official fusion loop literally, in-place `+=` included. The official code needs input sides that are multiples of
32 (it upsamples by `scale_factor=2**k`); at other sizes the reference upsamples to the exact size of the target
branch, the generalisation this library implements (the same function on multiples of 32).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import hrnet
from hrnet.checkpoints import CheckpointError

# The official configs (configs/top_down/**): num_modules, widths, module_type.
CONFIGS = {
    "lite_hrnet_18": ((2, 4, 2), (40, 80, 160, 320), "LITE"),
    "lite_hrnet_30": ((3, 8, 3), (40, 80, 160, 320), "LITE"),
    "naive_lite_hrnet_18": ((2, 4, 2), (30, 60, 120, 240), "NAIVE"),
    "wider_naive_lite_hrnet_18": ((2, 4, 2), (40, 80, 160, 320), "NAIVE"),
}
# Tensor counts of the official state dicts (backbone + the 1x1 head, BatchNorm counters included).
OFFICIAL_TENSORS = {"lite_hrnet_18": 1418, "lite_hrnet_30": 2360, "naive_lite_hrnet_18": 1610,
                    "wider_naive_lite_hrnet_18": 1610}


# ----------------------------------------------------------------------------- the official key layout


def official_shapes(arch: str, joints: int = 17) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of an official Lite-HRNet pose model in registration order (mmpose 0.x names)."""
    modules, widths, kind = CONFIGS[arch]
    keys: list[tuple[str, tuple[int, ...]]] = []

    def bn(p, c):
        keys.extend([(f"{p}.weight", (c,)), (f"{p}.bias", (c,)), (f"{p}.running_mean", (c,)),
                     (f"{p}.running_var", (c,)), (f"{p}.num_batches_tracked", ())])

    def conv_module(p, c_in, c_out, k, groups=1, norm=True):  # mmcv ConvModule, bias only without norm
        keys.append((f"{p}.conv.weight", (c_out, c_in // groups, k, k)))
        bn(f"{p}.bn", c_out) if norm else keys.append((f"{p}.conv.bias", (c_out,)))

    def separable(p, c_in, c_out):  # Sequential(dw 3x3, BN, pw 1x1, BN[, ReLU])
        keys.append((f"{p}.0.weight", (c_in, 1, 3, 3)))
        bn(f"{p}.1", c_in)
        keys.append((f"{p}.2.weight", (c_out, c_in, 1, 1)))
        bn(f"{p}.3", c_out)

    b = "backbone."
    for name, c_in, c_out, k, groups in (("conv1", 3, 32, 3, 1), ("branch1.0", 16, 16, 3, 16),
                                         ("branch1.1", 16, 16, 1, 1), ("expand_conv", 16, 32, 1, 1),
                                         ("depthwise_conv", 32, 32, 3, 32), ("linear_conv", 32, 16, 1, 1)):
        conv_module(f"{b}stem.{name}", c_in, c_out, k, groups)
    pre = [32]
    for s, count in enumerate(modules):
        cur = widths[: s + 2]
        for i, c in enumerate(cur):
            if i >= len(pre):
                separable(f"{b}transition{s}.{i}.0", pre[-1], c)
            elif c != pre[i]:
                separable(f"{b}transition{s}.{i}", pre[i], c)
        for m in range(count):
            p = f"{b}stage{s}.{m}"
            if kind == "NAIVE":
                for i, c in enumerate(cur):
                    for k in range(2):
                        for u, (kernel, groups) in enumerate([(1, 1), (3, c // 2), (1, 1)]):
                            conv_module(f"{p}.layers.{i}.{k}.branch2.{u}", c // 2, c // 2, kernel, groups)
            else:
                halves = [c // 2 for c in cur]
                total = sum(halves)
                for k in range(2):
                    q = f"{p}.layers.{k}"
                    conv_module(f"{q}.cross_resolution_weighting.conv1", total, int(total / 8), 1)
                    conv_module(f"{q}.cross_resolution_weighting.conv2", int(total / 8), total, 1)
                    for i, h in enumerate(halves):
                        conv_module(f"{q}.depthwise_convs.{i}", h, h, 3, h)
                    for i, h in enumerate(halves):
                        conv_module(f"{q}.spatial_weighting.{i}.conv1", h, h // 4, 1, norm=False)
                        conv_module(f"{q}.spatial_weighting.{i}.conv2", h // 4, h, 1, norm=False)
            for i, c_i in enumerate(cur):
                for j, c_j in enumerate(cur):
                    if j > i:
                        keys.append((f"{p}.fuse_layers.{i}.{j}.0.weight", (c_i, c_j, 1, 1)))
                        bn(f"{p}.fuse_layers.{i}.{j}.1", c_i)
                    for k in range(i - j):
                        separable(f"{p}.fuse_layers.{i}.{j}.{k}", c_j, c_i if k == i - j - 1 else c_j)
        pre = list(cur)
    lowest_first = pre[::-1]
    for i, c in enumerate(lowest_first):
        conv_module(f"{b}head_layer.projects.{i}.depthwise_conv", c, c, 3, c)
        conv_module(f"{b}head_layer.projects.{i}.pointwise_conv", c, lowest_first[min(i + 1, 3)], 1)
    return keys + [("keypoint_head.final_layer.weight", (joints, pre[0], 1, 1)),
                   ("keypoint_head.final_layer.bias", (joints,))]


def official_state(arch: str, seed: int = 0, joints: int = 17) -> dict[str, torch.Tensor]:
    """Random weights (convs ~ 1/sqrt(fan in)) and BatchNorm statistics away from 0/1, in the official layout."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_shapes(arch, joints):
        if key.endswith("num_batches_tracked"):
            value = torch.tensor(7)
        elif key.endswith("running_var"):
            value = torch.rand(shape, generator=generator) + 0.5
        elif key.endswith(("running_mean", ".bias")):
            value = torch.randn(shape, generator=generator) * 0.1
        elif len(shape) == 1:  # BatchNorm weight
            value = torch.rand(shape, generator=generator) + 0.5
        else:
            value = torch.randn(shape, generator=generator) / (shape[1] * shape[2] * shape[3]) ** 0.5
        state[key] = value
    return state


# ----------------------------------------------------------------------------- the reference forward pass


def _bn(x, P, p):
    return F.batch_norm(x, P[f"{p}.running_mean"], P[f"{p}.running_var"], P[f"{p}.weight"], P[f"{p}.bias"],
                        False, 0.0, 1e-5)


def _conv(x, weight, bias=None, stride=1):
    return F.conv2d(x, weight, bias, stride, weight.shape[-1] // 2, 1, x.shape[1] // weight.shape[1])


def _conv_module(x, P, p, stride=1, act=None):
    if f"{p}.bn.weight" in P:
        x = _bn(_conv(x, P[f"{p}.conv.weight"], None, stride), P, f"{p}.bn")
    else:
        x = _conv(x, P[f"{p}.conv.weight"], P[f"{p}.conv.bias"], stride)
    if act == "relu":
        return F.relu(x)
    return torch.sigmoid(x) if act == "sigmoid" else x


def _separable(x, P, p, stride, relu):
    x = _bn(_conv(x, P[f"{p}.0.weight"], stride=stride), P, f"{p}.1")
    x = _bn(_conv(x, P[f"{p}.2.weight"]), P, f"{p}.3")
    return F.relu(x) if relu else x


def _shuffle(x):
    n, c, h, w = x.shape
    return x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


def _ccw(xs, P, p):
    x1 = [x.chunk(2, 1)[0] for x in xs]
    x2 = [x.chunk(2, 1)[1] for x in xs]
    size = x2[-1].shape[-2:]
    z = torch.cat([F.adaptive_avg_pool2d(x, size) for x in x2[:-1]] + [x2[-1]], 1)
    z = _conv_module(_conv_module(z, P, f"{p}.cross_resolution_weighting.conv1", act="relu"), P,
                     f"{p}.cross_resolution_weighting.conv2", act="sigmoid")
    weights = torch.split(z, [x.shape[1] for x in x2], 1)
    x2 = [x * F.interpolate(w, size=x.shape[-2:], mode="nearest") for x, w in zip(x2, weights)]
    out = []
    for i, (a, x) in enumerate(zip(x1, x2)):
        x = _conv_module(x, P, f"{p}.depthwise_convs.{i}")
        gate = _conv_module(F.adaptive_avg_pool2d(x, 1), P, f"{p}.spatial_weighting.{i}.conv1", act="relu")
        x = x * _conv_module(gate, P, f"{p}.spatial_weighting.{i}.conv2", act="sigmoid")
        out.append(_shuffle(torch.cat([a, x], 1)))
    return out


def _shuffle_unit(x, P, p):
    a, b = x.chunk(2, 1)
    b = _conv_module(b, P, f"{p}.branch2.0", act="relu")
    b = _conv_module(_conv_module(b, P, f"{p}.branch2.1"), P, f"{p}.branch2.2", act="relu")
    return _shuffle(torch.cat([a, b], 1))


def _module(xs, P, p, naive, exact, quirks):
    n = len(xs)
    if naive:
        xs = [_shuffle_unit(_shuffle_unit(x, P, f"{p}.layers.{i}.0"), P, f"{p}.layers.{i}.1") for i, x in enumerate(xs)]
    else:
        xs = _ccw(_ccw(xs, P, f"{p}.layers.0"), P, f"{p}.layers.1")

    def fuse(i, j, x):
        if j > i:
            x = _bn(_conv(x, P[f"{p}.fuse_layers.{i}.{j}.0.weight"]), P, f"{p}.fuse_layers.{i}.{j}.1")
            if exact:
                return F.interpolate(x, size=xs[i].shape[-2:], mode="nearest")
            return F.interpolate(x, scale_factor=2 ** (j - i), mode="nearest")
        for k in range(i - j):
            x = _separable(x, P, f"{p}.fuse_layers.{i}.{j}.{k}", 2, relu=k < i - j - 1)
        return x

    if not quirks:  # the standard HRNet sum, for contrast
        return [F.relu(sum(x if i == j else fuse(i, j, x) for j, x in enumerate(xs))) for i in range(n)]
    out, fused = list(xs), []
    for i in range(n):  # the official loop: `y` aliases out[0] in row 0, and `+=` is in place
        y = out[0] if i == 0 else fuse(i, 0, out[0])
        for j in range(n):
            y += out[j] if i == j else fuse(i, j, out[j])
        fused.append(F.relu(y))
    return fused


def reference(P, x, arch, *, exact=False, quirks=True):
    """Heatmaps of the official Lite-HRNet pose model with weights P (official mmpose 0.x keys)."""
    modules, _, kind = CONFIGS[arch]
    y = _conv_module(x, P, "backbone.stem.conv1", 2, "relu")
    a, b = y.chunk(2, 1)
    a = _conv_module(_conv_module(a, P, "backbone.stem.branch1.0", 2), P, "backbone.stem.branch1.1", act="relu")
    b = _conv_module(b, P, "backbone.stem.expand_conv", act="relu")
    b = _conv_module(_conv_module(b, P, "backbone.stem.depthwise_conv", 2), P, "backbone.stem.linear_conv", act="relu")
    ys = [_shuffle(torch.cat([a, b], 1))]
    for s, count in enumerate(modules):
        xs = []
        for i in range(s + 2):
            p = f"backbone.transition{s}.{i}"
            if i >= len(ys):
                xs.append(_separable(ys[-1], P, f"{p}.0", 2, True))
            else:
                xs.append(_separable(ys[i], P, p, 1, True) if f"{p}.0.weight" in P else ys[i])
        for m in range(count):
            xs = _module(xs, P, f"backbone.stage{s}.{m}", kind == "NAIVE", exact, quirks)
        ys = xs
    last = None
    for i, t in enumerate(ys[::-1]):  # the IterativeHead, lowest resolution first
        if last is not None:
            t = t + F.interpolate(last, size=t.shape[-2:], mode="bilinear", align_corners=True)
        p = f"backbone.head_layer.projects.{i}"
        last = _conv_module(_conv_module(t, P, f"{p}.depthwise_conv"), P, f"{p}.pointwise_conv", act="relu")
    return F.conv2d(last, P["keypoint_head.final_layer.weight"], P["keypoint_head.final_layer.bias"])


# ----------------------------------------------------------------------------- the tests


def _save(state, path, layout):
    if layout == "mmpose-1.x":
        state = {("head." + k[len("keypoint_head."):] if k.startswith("keypoint_head.") else k): v
                 for k, v in state.items()}
        state["data_preprocessor.mean"] = torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1)
        state["data_preprocessor.std"] = torch.tensor([58.395, 57.12, 57.375]).view(-1, 1, 1)
    torch.save({"meta": {"mmpose_version": layout}, "state_dict": state}, path)
    return path


@pytest.mark.parametrize("layout", ["official / mmpose-0.x", "mmpose-1.x"])
@pytest.mark.parametrize("size", [(64, 64), (96, 64)])
def test_lite_hrnet_18_checkpoints_give_the_official_heatmaps(tmp_path, layout, size):
    state = official_state("lite_hrnet_18")
    model = hrnet.create_model("lite_hrnet_18", task="pose", num_classes=17,
                               checkpoint=_save(state, tmp_path / "litehrnet_18_coco_256x192.pth", layout)).eval()
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model(x), reference(state, x, "lite_hrnet_18")
        standard_sum = reference(state, x, "lite_hrnet_18", quirks=False)
    assert ours.shape == (2, 17, size[0] // 4, size[1] // 4)
    assert torch.equal(ours, theirs)
    # The official fusion quirks change the function completely: the test would see them missing.
    assert (standard_sum - theirs).abs().max() > 0.1 * theirs.abs().max()
    assert model.load_report.loaded == OFFICIAL_TENSORS["lite_hrnet_18"]
    expected = "mmpose 1.x" if layout == "mmpose-1.x" else "official repository / mmpose 0.x"
    assert any(expected in note for note in model.load_report.notes)


@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_every_variant_loads_and_computes_the_official_function(tmp_path, arch):
    """At a multiple of 32 (the official Upsample) and at 80x56, where the official code cannot run and the
    reference upsamples to the exact branch size. The head's joint count (16, MPII) and width come from the file."""
    state = official_state(arch, seed=2, joints=16)
    model = hrnet.create_model(arch, task="pose", checkpoint=_save(state, tmp_path / "w.pth", "official")).eval()
    assert model.head.final_layer.out_channels == 16 and model.head.final_layer.in_channels == CONFIGS[arch][1][0]
    generator = torch.Generator().manual_seed(3)
    for size, exact in (((64, 96), False), ((80, 56), True)):
        x = torch.randn(1, 3, *size, generator=generator)
        with torch.no_grad():
            assert torch.equal(model(x), reference(state, x, arch, exact=exact)), size


@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_full_models_have_the_official_tensors_in_the_official_order(arch):
    from hrnet.layouts import recognise

    shapes = official_shapes(arch)
    state = {k: torch.empty(s, device="meta") for k, s in shapes}
    layout = recognise(list(state))
    assert layout.name == "lite-hrnet"
    converted = layout.convert(state)
    with torch.device("meta"):
        model = hrnet.create_model(arch, task="pose")
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in converted.items()]
    assert len(shapes) == OFFICIAL_TENSORS[arch]


def test_a_bare_official_backbone_loads_into_the_backbone(tmp_path):
    state = official_state("naive_lite_hrnet_18", seed=4)
    bare = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    torch.save(bare, tmp_path / "backbone.pth")
    backbone = hrnet.create_model("naive_lite_hrnet_18", task="backbone", checkpoint=tmp_path / "backbone.pth")
    assert any("bare Lite-HRNet backbone" in note for note in backbone.load_report.notes)
    pose = hrnet.create_model("naive_lite_hrnet_18", task="pose", checkpoint=tmp_path / "backbone.pth")
    assert any("backbone only" in note for note in pose.load_report.notes)  # the head starts fresh


def test_library_files_round_trip_without_the_lite_hrnet_layout(tmp_path):
    state = official_state("lite_hrnet_18", seed=5)
    source = hrnet.create_model("lite_hrnet_18", task="pose", checkpoint=_save(state, tmp_path / "o.pth", "official"))
    torch.save(source.state_dict(), tmp_path / "ours.pth")
    again = hrnet.create_model("lite_hrnet_18", task="pose", checkpoint=tmp_path / "ours.pth").eval()
    assert not any("Lite-HRNet" in note for note in again.load_report.notes)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(again(x), source.eval()(x))


@pytest.mark.parametrize("arch, file_arch, message", [
    ("hrnet_w18_small_v1", "lite_hrnet_18", "the checkpoint is a Lite-HRNet and the model an HRNet"),
    ("lite_hrnet_18", "naive_lite_hrnet_18", "'shuffle' blocks and the model 'ccw'"),
    ("naive_lite_hrnet_18", "wider_naive_lite_hrnet_18", "width 40 and the model of width 30"),
    ("lite_hrnet_30", "lite_hrnet_18", "2 stage2 modules and the model 3"),
])
def test_a_checkpoint_of_another_variant_says_which_it_is(tmp_path, arch, file_arch, message):
    path = _save(official_state(file_arch), tmp_path / "w.pth", "official")
    with pytest.raises(CheckpointError, match=message):
        hrnet.create_model(arch, task="pose", checkpoint=path)


def test_an_hrnet_checkpoint_in_a_lite_hrnet_says_so(tmp_path):
    torch.save(hrnet.create_model("hrnet_w18_small_v1", task="pose").state_dict(), tmp_path / "hrnet.pth")
    with pytest.raises(CheckpointError, match="the checkpoint is an HRNet and the model a Lite-HRNet"):
        hrnet.create_model("lite_hrnet_18", task="pose", checkpoint=tmp_path / "hrnet.pth")
