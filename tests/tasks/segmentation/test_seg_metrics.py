import math

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hrnet.tasks.segmentation.metrics import ConfusionMeter, confusion_matrix, metrics_from_confusion


def test_confusion_matrix_counts_like_a_python_loop():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 4, (3, 7, 9))
    target = rng.integers(0, 5, (3, 7, 9))
    target[target == 4] = 255
    expected = np.zeros((4, 4), np.int64)
    for g, p in zip(target.ravel(), pred.ravel()):
        if g != 255:
            expected[g, p] += 1
    got = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target), num_classes=4, ignore_index=255)
    assert got.tolist() == expected.tolist()


def test_official_miou_counts_an_absent_class_as_zero_and_present_miou_excludes_it():
    # rows: ground truth; class 2 appears in neither ground truth nor prediction.
    confusion = torch.tensor([[3, 1, 0], [0, 2, 0], [0, 0, 0]])
    metrics = metrics_from_confusion(confusion, ["a", "b", "c"])
    iou_a, iou_b = 3 / 4, 2 / 3
    assert metrics["mIoU"] == pytest.approx(100 * (iou_a + iou_b + 0) / 3)
    assert metrics["mIoU_present"] == pytest.approx(100 * (iou_a + iou_b) / 2)
    assert metrics["pixel_acc"] == pytest.approx(100 * 5 / 6)
    assert metrics["mean_acc"] == pytest.approx(100 * (3 / 4 + 1 + 0) / 3)
    assert metrics["IoU/a"] == pytest.approx(75.0) and math.isnan(metrics["IoU/c"])


def test_meter_accumulates_over_batches():
    meter = ConfusionMeter(num_classes=2, ignore_index=255)
    meter.update(torch.tensor([[0, 1]]), torch.tensor([[0, 1]]))
    meter.update(torch.tensor([[1, 1]]), torch.tensor([[0, 255]]))
    assert meter.confusion.tolist() == [[1, 1], [0, 1]]
    meter.synchronize()  # no process group: unchanged
    assert meter.compute()["pixel_acc"] == pytest.approx(100 * 2 / 3)


def _worker(rank: int, world: int, init_file: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    meter = ConfusionMeter(num_classes=3, ignore_index=255)
    pred = torch.tensor([rank, rank, 2])
    meter.update(pred, torch.tensor([0, 1, 2]))
    meter.synchronize()
    results[rank] = meter.confusion.tolist()
    dist.destroy_process_group()


def test_meter_sums_across_processes(tmp_path):
    results = mp.Manager().dict()
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), results), nprocs=2, join=True)
    expected = [[1, 1, 0], [1, 1, 0], [0, 0, 2]]
    assert results[0] == expected and results[1] == expected
