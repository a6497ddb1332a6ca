"""Class (or keypoint) names of a registry entry, from well-kept sources rather than copies.

ImageNet-1k and COCO come from torchvision's public weights metadata; segmentation lists from
`hrnet.data.classes.BUILTIN`; keypoints from `hrnet.data.keypoints` (both imported
only here, when names are asked for).
"""

from __future__ import annotations

from ..errors import CheckpointError
from .entry import Weights
from .registry import get_weights

COCO_BACKGROUND = "__background__"


def imagenet_names() -> list[str]:
    """The 1000 ImageNet-1k class names in the standard (WordNet id) order."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def coco_detection_names() -> list[str]:
    """Names indexed by a detector's label: 0 the background, 1..80 COCO's 80 object classes in
    category-id order (torchvision's 91-entry list without its 'N/A' gaps), as the models here
    number them."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    categories = FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]
    return [COCO_BACKGROUND] + [name for name in categories if name not in ("N/A", COCO_BACKGROUND)]


def class_names(weights: "str | Weights") -> list[str]:
    """The names of the entry's outputs, one per class channel (len == `num_classes`): ImageNet
    classes, segmentation classes, detector labels (index 0 the background) or keypoints."""
    entry = get_weights(weights)
    if entry.keypoints is not None:
        from ..data.keypoints import BUILTIN_METADATA

        return list(BUILTIN_METADATA[entry.keypoints].keypoints)
    if entry.classes == "imagenet-1k":
        return imagenet_names()
    if entry.classes == "coco":
        return coco_detection_names()
    if entry.classes is not None:
        from ..data.classes import BUILTIN

        return list(BUILTIN[entry.classes].names)
    raise CheckpointError(f"{entry.name} has {entry.num_classes} outputs without a built-in name list "
                          f"({entry.notes or 'see its page: ' + entry.page}); name them yourself")
