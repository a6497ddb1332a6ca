"""Bottom-up multi-person pose with HigherHRNet (Cheng et al., CVPR 2020), faithful to the official
HRNet/HigherHRNet-Human-Pose-Estimation pipeline.

    import hrnet
    from hrnet.tasks.bottom_up import BottomUpSettings, draw_people, predict_people
    model = hrnet.create_model("hrnet_w32", task="bottom_up_pose", checkpoint="pose_higher_hrnet_w32_512.pth")
    keypoints, scores = predict_people(model, rgb, BottomUpSettings(input_size=512))  # (P, 17, 3), (P,)
    picture = draw_people(rgb, keypoints)

`BottomUpPoseTask` (in `task.py`) plugs it into the engine (`hrnet train / eval`, `hrnet.Predictor`);
`official.py` builds a model and its test settings from an official experiment yaml. The grouping
needs scipy (`pip install "hrnet[bottomup]"`).
"""

from .data import BottomUpDataset, ImageDataset, ImageRecord, ignore_mask, load_coco_images
from .evaluate import BottomUpEvaluator
from .grouping import group_people, match_by_tag
from .inference import BottomUpSettings, MergedOutputs, draw_people, find_people, predict_people, stage_outputs
from .official import model_from_official, settings_from_official
from .targets import LossFactors, ae_loss, bottom_up_loss, heatmap_loss, heatmap_targets, tag_joints
from .transforms import Augmentation, multi_scale_size, resize_align

__all__ = [
    "Augmentation", "BottomUpDataset", "BottomUpEvaluator", "BottomUpSettings", "ImageDataset", "ImageRecord",
    "LossFactors", "MergedOutputs", "ae_loss", "bottom_up_loss", "draw_people", "find_people", "group_people",
    "heatmap_loss", "heatmap_targets", "ignore_mask", "load_coco_images", "match_by_tag", "model_from_official",
    "multi_scale_size", "predict_people", "resize_align", "settings_from_official", "stage_outputs", "tag_joints",
]
