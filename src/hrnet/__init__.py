"""hrnet: High-Resolution Networks for classification, pose, segmentation and detection.

    import hrnet
    model = hrnet.create_model("hrnet_w32", task="pose", num_classes=17)
    heatmaps = model.eval()(images)            # (N, 17, H/4, W/4)
"""

from .backbone import HRNetBackbone, HighResolutionModule
from .checkpoints import CheckpointError, LoadReport, load_checkpoint, read_state_dict, save_atomic
from .models import HRNet, create_model, list_models
from .spec import VARIANTS, HRNetSpec, StageSpec, get_spec

__version__ = "0.1.0"


def export_onnx(*args, **kwargs):
    """See `hrnet.export.export_onnx` (imported lazily: onnx is an optional dependency)."""
    from .export import export_onnx as _export

    return _export(*args, **kwargs)


__all__ = [
    "CheckpointError",
    "HRNet",
    "HRNetBackbone",
    "HRNetSpec",
    "HighResolutionModule",
    "LoadReport",
    "StageSpec",
    "VARIANTS",
    "create_model",
    "export_onnx",
    "get_spec",
    "list_models",
    "load_checkpoint",
    "read_state_dict",
    "save_atomic",
]
