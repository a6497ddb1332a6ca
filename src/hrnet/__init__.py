"""hrnet: High-Resolution Networks for classification, pose, segmentation and detection.

    import hrnet
    model = hrnet.create_model("hrnet_w32", task="pose", num_classes=17)
    heatmaps = model.eval()(images)            # (N, 17, H/4, W/4)
    people = hrnet.Predictor("runs/pose/best.pth")("photo.jpg")   # keypoints in the photo's pixels

The inference API (`Predictor`, `write_predictions`) is imported on first use, so `import hrnet`
stays light.
"""

from .errors import CheckpointError, ConfigError, DataError, DependencyError, HRNetError, RuntimeFailure
from .spec import VARIANTS, HRNetSpec, StageSpec, get_spec

__version__ = "0.1.0"

# Everything that needs torch is imported on first use: `import hrnet` (and the command line's
# `hrnet list`, `hrnet --help`) stays fast. name -> the module that defines it.
_LAZY = {
    "HRNetBackbone": "hrnet.backbone", "HighResolutionModule": "hrnet.backbone",
    "LoadReport": "hrnet.checkpoints", "load_checkpoint": "hrnet.checkpoints", "read_state_dict": "hrnet.checkpoints",
    "save_atomic": "hrnet.checkpoints",
    "HRNet": "hrnet.models", "create_model": "hrnet.models", "list_models": "hrnet.models",
    "Weights": "hrnet.weights", "get_weights": "hrnet.weights", "list_weights": "hrnet.weights",
    "export_onnx": "hrnet.export",
    "Predictor": "hrnet.inference.predictor", "write_predictions": "hrnet.inference.writer",
    "optimize": "hrnet.runtime.fastpath", "load_runtime": "hrnet.runtime.load",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in ("weights", "tasks", "engine", "inference", "runtime", "layouts", "heads", "data"):
        import importlib

        return importlib.import_module(f"hrnet.{name}")
    raise AttributeError(f"module 'hrnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DependencyError",
    "HRNetError",
    "Predictor",
    "RuntimeFailure",
    "HRNet",
    "HRNetBackbone",
    "HRNetSpec",
    "HighResolutionModule",
    "LoadReport",
    "StageSpec",
    "VARIANTS",
    "Weights",
    "create_model",
    "export_onnx",
    "get_spec",
    "get_weights",
    "list_models",
    "list_weights",
    "load_checkpoint",
    "load_runtime",
    "optimize",
    "read_state_dict",
    "save_atomic",
    "write_predictions",
]
