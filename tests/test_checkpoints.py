import os
import subprocess
import sys

import pytest
import torch

import hrnet
from hrnet.checkpoints import CheckpointError, canonical_key, official_key, save_atomic, to_official_state_dict
from hrnet.export import relative_error
from helpers import official


def _official_file(model, path, prefix="", drop_counters=False, wrap=None):
    state = {prefix + k: v for k, v in to_official_state_dict(model).items()
             if not (drop_counters and k.endswith("num_batches_tracked"))}
    torch.save({wrap: state} if wrap else state, path)
    return path


@pytest.mark.parametrize("key, expected", [
    ("conv1.weight", "backbone.conv1.weight"),
    ("model.stage4.2.fuse_layers.0.1.0.weight", "backbone.stage4.2.fuse_layers.0.1.0.weight"),
    ("module.model.last_layer.3.bias", "head.last_layer.3.bias"),
    ("module.classifier.weight", "head.classifier.weight"),
    ("backbone.layer1.0.conv1.weight", "backbone.layer1.0.conv1.weight"),
])
def test_key_remapping(key, expected):
    assert canonical_key(key) == expected
    assert official_key(expected) == expected.split(".", 1)[1]


@pytest.mark.parametrize("layout", [dict(), dict(prefix="module."), dict(prefix="model.", wrap="state_dict"),
                                    dict(drop_counters=True), dict(wrap="model")])
def test_known_layouts_load_to_the_same_function(tiny, tmp_path, layout):
    source = hrnet.create_model(tiny, task="segmentation", num_classes=5).eval()
    path = _official_file(source, tmp_path / "weights.pth", **layout)
    loaded = hrnet.create_model(tiny, task="segmentation", checkpoint=path).eval()
    assert loaded.head.last_layer[3].out_channels == 5  # class count read from the file
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), source(x))
    if layout.get("drop_counters"):
        assert any("num_batches_tracked" in note for note in loaded.load_report.notes)


def test_safetensors_and_library_checkpoints(tiny, tmp_path):
    from safetensors.torch import save_file

    source = hrnet.create_model(tiny, task="pose").eval()
    save_file(source.state_dict(), tmp_path / "w.safetensors")
    save_atomic({"model": source.state_dict(), "epoch": 3}, tmp_path / "run.pth")
    x = torch.randn(1, 3, 64, 48)
    for name in ("w.safetensors", "run.pth"):
        model = hrnet.create_model(tiny, task="pose", checkpoint=tmp_path / name).eval()
        with torch.no_grad():
            assert torch.equal(model(x), source(x))


@pytest.mark.parametrize("task, head", [("pose", None), ("segmentation", None), ("segmentation", "ocr")])
def test_imagenet_checkpoint_loads_into_the_backbone_of_other_tasks(tiny, tmp_path, task, head, caplog):
    classifier = hrnet.create_model(tiny)
    path = _official_file(classifier, tmp_path / "imagenet.pth")
    model = hrnet.create_model(tiny, task=task, head=head, checkpoint=path)
    report = model.load_report
    # Pose keeps one output in its last module: the classifier's other fusion outputs are dropped.
    assert ["fusion tensors" in n for n in report.notes] == ([True, False] if task == "pose" else [False])
    assert "backbone only" in report.notes[-1]
    assert report.reinitialized and all(k.startswith("head.") for k in report.reinitialized)
    assert torch.equal(model.backbone.conv1.weight, classifier.backbone.conv1.weight)
    assert "backbone only" in caplog.text


def test_a_different_class_count_reinitialises_only_the_classifier(tiny, tmp_path):
    source = hrnet.create_model(tiny)
    path = _official_file(source, tmp_path / "imagenet.pth")
    model = hrnet.create_model(tiny, num_classes=10, checkpoint=path)
    assert model.load_report.reinitialized == ["head.classifier.weight", "head.classifier.bias"]
    assert "has 1000 outputs (classes or keypoints), the model's 10" in model.load_report.notes[0]
    assert torch.equal(model.head.final_layer[0].weight, source.head.final_layer[0].weight)


def test_backbone_model_ignores_a_checkpoint_head(tiny, tmp_path):
    path = _official_file(hrnet.create_model(tiny), tmp_path / "imagenet.pth")
    backbone = hrnet.create_model(tiny, task="backbone")
    report = hrnet.load_checkpoint(backbone, path)
    assert report.ignored and "model is a backbone" in report.notes[0]


def _wider(spec, factor):
    stages = [spec.stages[0]] + [
        hrnet.StageSpec(modules=s.modules, block=s.block, blocks=s.blocks, channels=tuple(c * factor for c in s.channels))
        for s in spec.stages[1:]]
    return spec.replace(stages=tuple(stages))


def test_wrong_width_or_variant_names_the_cause(tiny, tmp_path):
    path = _official_file(hrnet.create_model(tiny), tmp_path / "w8.pth")
    with pytest.raises(CheckpointError, match=r"HRNet-W8 and the model an HRNet-W16") as error:
        hrnet.create_model(_wider(tiny, 2), checkpoint=path)
    assert "w8.pth" in str(error.value) and "different shapes" in str(error.value)
    deeper = tiny.replace(stages=(*tiny.stages[:2], hrnet.StageSpec(
        modules=2, block="basic", blocks=(1, 1, 1), channels=(8, 16, 32)), tiny.stages[3]))
    with pytest.raises(CheckpointError, match="1 stage3 modules and the model 2"):
        hrnet.create_model(deeper, checkpoint=path)


def test_pose_checkpoint_into_segmentation_model_is_explained(tmp_path):
    meta, path, _ = official("pose_tiny")
    with pytest.raises(CheckpointError, match="pose model"):
        hrnet.create_model(hrnet.HRNetSpec.from_official(meta["spec"]), task="segmentation",
                           checkpoint=path)


def test_strict_false_loads_what_matches(tiny, tmp_path):
    path = _official_file(hrnet.create_model(_wider(tiny, 2)), tmp_path / "other.pth")
    model = hrnet.create_model(tiny, checkpoint=path, strict=False)
    assert "strict=False" in model.load_report.notes[-1]


def test_truncated_and_foreign_files_give_clear_errors(tiny, tmp_path):
    good = _official_file(hrnet.create_model(tiny), tmp_path / "good.pth")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights")
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "metadata.pth")
    cases = {truncated: "truncated", text: "not a readable PyTorch checkpoint",
             tmp_path / "metadata.pth": "not a state dict", tmp_path / "absent.pth": "does not exist"}
    for path, message in cases.items():
        with pytest.raises((CheckpointError, FileNotFoundError), match=message) as error:
            hrnet.create_model(tiny, checkpoint=path)
        assert str(path) in str(error.value)


def test_save_atomic_never_leaves_a_partial_file(tmp_path):
    """A process killed while saving leaves the previous checkpoint intact and no stray file."""
    target = tmp_path / "last.pth"
    save_atomic({"step": 1}, target)
    script = (
        "import os, torch, hrnet.checkpoints as c\n"
        "real = os.replace\n"
        "def die(*a):\n    os._exit(9)\n"
        "os.replace = die\n"
        f"c.save_atomic({{'step': 2, 'big': torch.zeros(1000000)}}, {str(target)!r})\n"
    )
    assert subprocess.run([sys.executable, "-c", script]).returncode == 9
    assert torch.load(target, weights_only=True) == {"step": 1}
    save_atomic({"step": 3}, target)
    assert torch.load(target, weights_only=True) == {"step": 3}
    leftovers = [p for p in tmp_path.iterdir() if p != target]
    assert all(p.name.startswith(".last.pth.") for p in leftovers)


@pytest.fixture
def local_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/served (no other network is used)."""
    import functools
    import http.server
    import threading

    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_checkpoint_urls_download_once_into_the_cache(tiny, tmp_path, monkeypatch, local_server):
    root, address = local_server
    monkeypatch.setenv("HRNET_CACHE", str(tmp_path / "cache"))
    source = hrnet.create_model(tiny, task="pose").eval()
    _official_file(source, root / "pose.pth")
    model = hrnet.create_model(tiny, task="pose", checkpoint=f"{address}/pose.pth").eval()
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))
    (root / "pose.pth").unlink()  # a second use reads the cached copy
    again = hrnet.create_model(tiny, task="pose", checkpoint=f"{address}/pose.pth")
    assert torch.equal(again.head.final_layer.weight, source.head.final_layer.weight)
    assert len(list((tmp_path / "cache").rglob("pose.pth"))) == 1
    with pytest.raises(CheckpointError, match="could not download .*missing.pth"):
        hrnet.create_model(tiny, checkpoint=f"{address}/missing.pth")
    assert not list((tmp_path / "cache").rglob("missing.pth"))
