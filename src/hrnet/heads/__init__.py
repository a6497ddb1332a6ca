"""Task heads that take the backbone's list of maps (high to low resolution) and its `channels`.

Every head declares what loading a checkpoint needs to know about it, so that `models.py` and
`checkpoints.py` never special-case a head by its class:

- `class_keys`: prefixes (relative to the head) of the class layer(s), re-initialised when a
  checkpoint has another class count;
- `options_from_state(state)`: the constructor options a checkpoint fixes (class count, kernel,
  widths, conv biases), read from its head-relative keys;
- `init_weights()`: the head's own initialisation, after the generic one of `blocks.init_weights`.
"""

from .classification import ClassificationHead
from .higher import HigherHRNetHead
from .pose import PoseHead
from .pyramid import FeaturePyramidHead
from .segmentation import OCRHead, SegmentationHead

__all__ = ["ClassificationHead", "FeaturePyramidHead", "HigherHRNetHead", "OCRHead", "PoseHead", "SegmentationHead"]
