"""Semantic segmentation with HRNetV2 and HRNetV2 + OCR (official HRNet-Semantic-Segmentation pipeline).

    from hrnet.tasks.segmentation import CAMVID, InferenceConfig, SegmentationInference
    segmenter = SegmentationInference(model, classes=CAMVID, device=torch.device("cpu"),
                                      settings=InferenceConfig(mode="slide", crop_size=(360, 480)))
    [result] = segmenter.run([rgb], [segmenter.prepare(rgb)], ["photo"])
    result.labels                                 # (H, W) train ids at the image's full resolution

`hrnet.Predictor` wraps this for files, folders and videos.

Training goes through the engine (`hrnet train --config recipes/segmentation/...yaml`, or
`hrnet.engine.fit`), with `SegmentationTask` (task.py) as the plug-in; `hrnet demo` runs it all on
synthetic scenes.
"""

from .classes import ADE20K, CAMVID, CITYSCAPES, ClassList, resolve_classes
from .data import SegmentationDataset, class_weights, find_pairs
from .inference import InferenceConfig, predict_labels, predict_scores
from .losses import SegmentationLoss, cross_entropy, ohem_cross_entropy
from .metrics import ConfusionMeter, confusion_matrix, metrics_from_confusion
from .predict import Segmentation, SegmentationInference
from .transforms import EvalTransform, TrainTransform
from .visualize import colorize, overlay

__all__ = [
    "ADE20K", "CAMVID", "CITYSCAPES", "ClassList", "ConfusionMeter", "EvalTransform", "InferenceConfig",
    "Segmentation", "SegmentationDataset", "SegmentationInference", "SegmentationLoss", "TrainTransform", "class_weights", "colorize",
    "confusion_matrix", "cross_entropy", "find_pairs", "metrics_from_confusion", "ohem_cross_entropy", "overlay",
    "predict_labels", "predict_scores", "resolve_classes",
]
