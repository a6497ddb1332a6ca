"""The pose tasks' keypoint metadata: `hrnet.data.keypoints` (kept at the data layer, below the tasks,
because weights metadata names them too)."""

from ...data.keypoints import *  # noqa: F401,F403
from ...data.keypoints import (BUILTIN_METADATA, COCO_KEYPOINTS, MPII_KEYPOINTS, KeypointMetadata,  # noqa: F401
                               MetadataError, load_metadata)
