"""Top-down human pose estimation (HRNetV1), faithful to the official pipeline.

    from hrnet.tasks.pose import COCO_KEYPOINTS, estimate_poses, draw_poses
    found = estimate_poses(model, rgb, boxes_xyxy_score, metadata=COCO_KEYPOINTS, input_size=(192, 256))
    picture = draw_poses(rgb, found["keypoints"], COCO_KEYPOINTS)

`PoseTask` (in `task.py`) plugs all of it into the engine (`hrnet train / eval`) and into
`hrnet.Predictor` / `hrnet predict` (`PoseInference`, `Poses` in `predict.py`).
"""

from .data import PersonRecord, PoseDataset, load_coco_keypoints, load_mpii
from .decode import decode_heatmaps, flip_back, flip_test
from .evaluate import PoseEvaluator, PoseResult, coco_keypoint_ap, evaluate_coco, evaluate_pckh, oks_nms, rescore
from .metadata import COCO_KEYPOINTS, MPII_KEYPOINTS, KeypointMetadata, MetadataError, load_metadata
from .predict import (PoseInference, Poses, as_boxes, detector_boxes, estimate_poses, results_file_boxes,
                      whole_image_boxes)
from .settings import PoseSettings
from .targets import JointsMSELoss, gaussian_heatmaps
from .transforms import Augmentation, box_to_center_scale
from .visualize import draw_heatmaps, draw_poses

__all__ = [
    "Augmentation", "COCO_KEYPOINTS", "JointsMSELoss", "KeypointMetadata", "MPII_KEYPOINTS", "MetadataError",
    "PersonRecord", "PoseDataset", "PoseEvaluator", "PoseInference", "PoseResult", "PoseSettings", "Poses", "as_boxes", "box_to_center_scale", "coco_keypoint_ap",
    "decode_heatmaps", "detector_boxes", "draw_heatmaps", "draw_poses", "estimate_poses", "evaluate_coco",
    "evaluate_pckh", "flip_back", "flip_test", "gaussian_heatmaps", "load_coco_keypoints", "load_metadata",
    "load_mpii", "oks_nms", "rescore", "results_file_boxes", "whole_image_boxes",
]
