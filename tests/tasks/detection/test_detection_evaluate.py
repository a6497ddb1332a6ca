from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from hrnet.tasks.detection.data import CocoDetection, collate
from hrnet.tasks.detection.evaluate import METRIC_NAMES, CocoEvaluator, coco_metrics, load_coco, to_coco_results


def _gt_as_results(gt, *, shift: float = 0.0, masks: bool = False) -> list[dict]:
    results = []
    for ann in gt.dataset["annotations"]:
        if ann.get("iscrowd", 0):
            continue
        x, y, w, h = ann["bbox"]
        result = {"image_id": ann["image_id"], "category_id": ann["category_id"], "bbox": [x + shift * w, y, w, h],
                  "score": 1.0}
        if masks:
            result["segmentation"] = gt.annToRLE(ann)
        results.append(result)
    return results


@pytest.mark.parametrize("fixture", ["voc_json", "coco_kpt_json"])
def test_ground_truth_as_prediction_scores_one(fixture, request):
    gt = load_coco(request.getfixturevalue(fixture))
    boxes = coco_metrics(gt, _gt_as_results(gt))
    assert list(boxes) == list(METRIC_NAMES)
    assert boxes["AP"] == pytest.approx(1.0) and boxes["AP50"] == pytest.approx(1.0)
    assert boxes["AR100"] == pytest.approx(1.0)
    masks = coco_metrics(gt, _gt_as_results(gt, masks=True), iou_type="segm")
    assert masks["AP"] == pytest.approx(1.0)


def test_worse_detections_score_lower(voc_json, coco_kpt_json):
    gt = load_coco(voc_json)
    # Shifted by 30% of their width: IoU 0.54, a hit at the IoU threshold 0.5 only (of ten).
    shifted = coco_metrics(gt, _gt_as_results(gt, shift=0.3))
    assert shifted["AP50"] > 0.9 and shifted["AP75"] == 0.0
    assert shifted["AP"] == pytest.approx(shifted["AP50"] / 10, abs=0.01)
    people = load_coco(coco_kpt_json)  # one class, 14 persons: half of them found
    half = coco_metrics(people, _gt_as_results(people)[::2])
    assert half["AR100"] == pytest.approx(0.5) and half["AP"] < 0.6
    assert coco_metrics(gt, []) == {name: 0.0 for name in METRIC_NAMES}


def test_results_are_coco_format_and_masks_are_rle():
    output = {"boxes": torch.tensor([[10.0, 20.0, 30.0, 60.0]]), "labels": torch.tensor([2]),
              "scores": torch.tensor([0.75]), "masks": torch.zeros(1, 1, 80, 50)}
    output["masks"][0, 0, 20:60, 10:30] = 0.9
    (result,) = to_coco_results(output, 7, category_ids=[5, 9])
    assert result["image_id"] == 7 and result["category_id"] == 9 and result["score"] == 0.75
    assert result["bbox"] == [10.0, 20.0, 20.0, 40.0]
    from pycocotools import mask as mask_utils
    assert mask_utils.area(result["segmentation"]) == 20 * 40 and json.dumps(result)


def _key(image: torch.Tensor) -> float:
    return round(float(image.double().sum()), 2)


class _Oracle(nn.Module):
    """Returns each image's ground truth (looked up by the image's pixel sum) as detections."""

    def __init__(self, dataset: CocoDetection):
        super().__init__()
        self.truth = {_key(image): target for image, target in (dataset[i] for i in range(len(dataset)))}

    def forward(self, images):
        targets = [self.truth[_key(image)] for image in images]
        return [{"boxes": t["boxes"], "labels": t["labels"], "scores": torch.ones(len(t["labels"]))} for t in targets]


def test_evaluator_over_batches_scores_one_for_the_ground_truth(voc_json):
    dataset = CocoDetection(annotations=voc_json, skip_empty=False)
    evaluator = CocoEvaluator(annotations=voc_json, category_ids=[c["id"] for c in dataset.categories])
    model = _Oracle(dataset)
    evaluator.update(model, collate([dataset[0], dataset[1]]))
    evaluator.update(model, collate([dataset[2]]))
    evaluator.synchronize()  # no process group: nothing to gather
    metrics = evaluator.compute()
    assert metrics["AP"] == pytest.approx(1.0) and evaluator.main_metric == "AP" and evaluator.higher_is_better
    # Only the images seen are evaluated: one image alone is also perfect.
    single = CocoEvaluator(annotations=voc_json, category_ids=[c["id"] for c in dataset.categories])
    single.update(model, collate([dataset[1]]))
    assert single.compute()["AP"] == pytest.approx(1.0)


def _rank_main(rank: int, port: int, path: str, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        dataset = CocoDetection(annotations=path, skip_empty=False)
        evaluator = CocoEvaluator(annotations=path, category_ids=[c["id"] for c in dataset.categories])
        # Each rank sees its own shard: rank 0 images 0 and 2, rank 1 image 1.
        evaluator.update(_Oracle(dataset), collate([dataset[i] for i in range(rank, 3, 2)]))
        evaluator.synchronize()
        queue.put((rank, evaluator.compute()["AP"], len(evaluator.image_ids)))
    finally:
        dist.destroy_process_group()


def test_results_are_gathered_across_ranks(voc_json):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    context = mp.get_context("spawn")
    queue = context.Queue()
    mp.start_processes(_rank_main, args=(port, str(voc_json), queue), nprocs=2, start_method="spawn")
    answers = sorted(queue.get(timeout=60) for _ in range(2))
    assert [a[2] for a in answers] == [3, 3]  # every rank evaluates all three images
    assert all(a[1] == pytest.approx(1.0) for a in answers)
