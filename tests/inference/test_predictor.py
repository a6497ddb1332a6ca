"""`hrnet.Predictor` for every task: inputs of every kind, typed results, videos, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import hrnet
from hrnet.data.io import VideoWriter, read_video, write_image
from hrnet.inference.results import ResultStream

def _content(result) -> dict:
    """A result's JSON without what names the input (source, image ids, what coordinates refer to)."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("source", "image_id", "coordinates")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        if isinstance(value, float):  # batches of other sizes run other float32 kernels
            return round(value, 3)
        return value

    return strip(result.to_json())


RESULT_TYPES = {"classification": "Classification", "pose": "Poses", "segmentation": "Segmentation",
                "detection": "Detections"}


def test_every_input_kind_gives_the_same_typed_result(task, predictor_of, picture, tmp_path):
    predictor = predictor_of(task)
    write_image(tmp_path / "photo.png", picture)
    inputs = {"path": tmp_path / "photo.png", "str": str(tmp_path / "photo.png"), "numpy": picture,
              "pil": Image.fromarray(picture), "tensor uint8": torch.from_numpy(picture).permute(2, 0, 1),
              "tensor float": torch.from_numpy(picture).permute(2, 0, 1).float() / 255}
    results = {name: predictor(value) for name, value in inputs.items()}
    for name, result in results.items():
        assert type(result).__name__ == RESULT_TYPES[task], name
        assert result.size == (60, 80) and result.how["task"] == task
        assert result.draw().shape[2] == 3 and json.dumps(result.to_json())
    reference = _content(results["path"])
    for name, result in results.items():
        assert _content(result) == reference, name


def test_a_list_and_a_folder_keep_input_order_in_batches(task, predictor_of, tmp_path):
    rng = np.random.default_rng(1)
    pictures = [rng.integers(0, 255, (40 + 4 * i, 50, 3), dtype=np.uint8) for i in range(5)]
    for i, p in enumerate(pictures):
        write_image(tmp_path / "folder" / f"{i}.png", p)
    predictor = predictor_of(task)
    one_by_one = [_content(predictor(p)) for p in pictures]
    batched = predictor(pictures, batch_size=2)
    assert [_content(r) for r in batched] == one_by_one
    folder = predictor(tmp_path / "folder", batch_size=3)
    assert [r.source for r in folder] == [str(tmp_path / "folder" / f"{i}.png") for i in range(5)]
    assert [r.size for r in folder] == [p.shape[:2] for p in pictures]


def test_grey_rgba_and_16_bit_pictures_are_converted(predictor_of, tmp_path, caplog):
    grey = np.arange(40 * 30, dtype=np.uint16).reshape(40, 30)
    Image.fromarray(grey * 50).save(tmp_path / "deep.png")
    Image.fromarray(np.zeros((40, 30, 4), np.uint8)).save(tmp_path / "alpha.png")
    predictor = predictor_of("classification")
    results = predictor([tmp_path / "deep.png", tmp_path / "alpha.png", grey.astype(np.uint8)])
    assert [r.size for r in results] == [(40, 30)] * 3
    assert "converted to RGB" in caplog.text and caplog.text.count("converted to RGB") == 1


def test_photos_are_predicted_as_displayed_and_say_so(predictor_of, tmp_path):
    """A photo with EXIF orientation 6 is stored 40 x 60 and displayed 60 x 40: results refer to the latter."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "phone.jpg", exif=exif)
    result = predictor_of("pose")(tmp_path / "phone.jpg")
    assert result.size == (60, 40) and "orientation 6 applied" in result.coordinates
    assert result.boxes[0].tolist() == [0, 0, 40, 60]  # the whole displayed picture
    assert result.to_json()["coordinates"] == result.coordinates


def test_videos_stream_lazily_and_save_an_mp4_at_the_source_rate(task, predictor_of, tmp_path):
    video = tmp_path / "clip.mp4"
    rng = np.random.default_rng(2)
    with VideoWriter(video, fps=7) as writer:
        for _ in range(5):
            writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    predictor = predictor_of(task)
    stream = predictor.stream(video, max_frames=4)
    assert isinstance(stream, ResultStream) and stream.fps == pytest.approx(7) and stream.frames == 4
    frames = list(stream)
    assert [r.frame for r in frames] == [0, 1, 2, 3] and all(r.source == str(video) for r in frames)
    records = predictor.stream(video, batch_size=2).save(tmp_path / "out" / "drawn.mp4")
    written, fps, count = read_video(tmp_path / "out" / "drawn.mp4")
    assert len(list(written)) == 5 == len(records) and fps == pytest.approx(7)
    # A video inside a list or a folder comes back as a stream, in its place.
    mixed = predictor([video, rng.integers(0, 255, (30, 30, 3), dtype=np.uint8)])
    assert isinstance(mixed[0], ResultStream) and not isinstance(mixed[1], ResultStream)


def test_options_replace_the_task_settings_and_unknown_ones_raise(predictor_of, picture):
    assert len(predictor_of("classification", top_k=2)(picture).names) == 2
    assert predictor_of("pose", flip_test=False)(picture).how["flip_test"] == "off"
    assert predictor_of("segmentation", scales=[0.5, 1.0]).settings.scales == [0.5, 1.0]
    assert predictor_of("detection", score_threshold=0.9).settings.score_threshold == 0.9
    with pytest.raises(hrnet.ConfigError, match=r"unknown pose option\(s\) flip; known: flip_test"):
        predictor_of("pose", flip=True)
    with pytest.raises(hrnet.ConfigError, match="top_k must be a positive"):
        predictor_of("classification", top_k=0)
    with pytest.raises(hrnet.ConfigError, match="unknown runtime 'tensorrt'"):
        predictor_of("classification", runtime="tensorrt")
    with pytest.raises(hrnet.ConfigError, match="detector= gives person boxes to a top-down pose model"):
        predictor_of("classification", detector=lambda rgb: [])


@pytest.mark.parametrize("bad, message", [
    ({"a": 1}, "cannot predict on a dict"),
    (np.zeros((5, 5, 2)), r"must be \(H, W, 3\)"),
    (torch.zeros(4, 5, 5), r"must be \(3, H, W\)"),
    ([], "nothing to predict on"),
    (3, "a webcam index is a stream"),
])
def test_bad_inputs_name_what_was_wrong(predictor_of, bad, message):
    with pytest.raises(hrnet.DataError, match=message):
        predictor_of("classification")(bad)


def test_bad_files_name_the_file(predictor_of, tmp_path, picture):
    predictor = predictor_of("segmentation")
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    (tmp_path / "notes.txt").write_text("hello")
    for value, message in ((tmp_path / "missing.png", "missing.png does not exist"),
                           (tmp_path / "empty", "holds no images"),
                           (tmp_path / "broken.jpg", r"broken\.jpg cannot be decoded"),
                           (tmp_path / "notes.txt", "neither an image"),):
        with pytest.raises(hrnet.DataError, match=message):
            predictor(value)
    with pytest.raises(hrnet.DataError, match=r"bad\.mp4 cannot be opened"):
        predictor.stream(tmp_path / "bad.mp4")
    with pytest.raises(hrnet.DataError, match="webcam 97 cannot be opened"):
        predictor.stream(97)
    # Iterating goes on past a bad file and gives its error in its place.
    write_image(tmp_path / "good.png", picture)
    outcome = list(predictor.iterate([tmp_path / "broken.jpg", tmp_path / "good.png"]))
    assert outcome[0][2] is not None and outcome[1][1] is not None and outcome[1][2] is None


def test_a_failed_save_leaves_no_partial_file(predictor_of, picture, tmp_path, monkeypatch):
    result = predictor_of("detection")(picture)
    result.save(tmp_path / "ok.png")
    assert (tmp_path / "ok.png").stat().st_size > 0
    import hrnet.inference.results as results_module

    def broken(path, rgb):
        open(path, "wb").write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(results_module, "write_image", broken)
    with pytest.raises(OSError):
        result.save(tmp_path / "full.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.png"]
    with pytest.raises(hrnet.DataError, match="use an image suffix"):
        result.save(tmp_path / "result.txt")


@pytest.mark.parametrize("task", ["classification", "detection"])
def test_a_runtime_is_one_argument_away(task, predictor_of, picture, tmp_path, monkeypatch):
    """The same results through ONNX Runtime (fp32) as through eager PyTorch; the how says which."""
    monkeypatch.setenv("HRNET_CACHE", str(tmp_path / "cache"))
    eager = predictor_of(task)(picture)
    fast = predictor_of(task, runtime="onnxruntime")(picture)
    assert fast.how["runtime"] == "onnxruntime fp32" and eager.how["runtime"] == "torch"
    if task == "classification":
        assert fast.names == eager.names and np.allclose(fast.scores, eager.scores, atol=1e-4)
    else:
        assert np.allclose(fast.boxes, eager.boxes, atol=1e-2) and fast.names == eager.names
