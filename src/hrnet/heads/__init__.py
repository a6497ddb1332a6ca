"""Task heads that take the backbone's list of maps (high to low resolution) and its `channels`."""

from .classification import ClassificationHead
from .pose import PoseHead
from .pyramid import FeaturePyramidHead
from .segmentation import OCRHead, SegmentationHead

__all__ = ["ClassificationHead", "FeaturePyramidHead", "OCRHead", "PoseHead", "SegmentationHead"]
