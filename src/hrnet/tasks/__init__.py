"""Task registry: name -> "module:Class" of a class following `hrnet.engine.task.Task`.

Imported lazily so that `import hrnet` stays light and a task's dependencies load only when used.
"""

from __future__ import annotations

import importlib

TASKS: dict[str, str] = {
    "classification": "hrnet.tasks.classification:ClassificationTask",
    "pose": "hrnet.tasks.pose.task:PoseTask",
    "bottom_up_pose": "hrnet.tasks.bottom_up.task:BottomUpPoseTask",
    "segmentation": "hrnet.tasks.segmentation.task:SegmentationTask",
    "detection": "hrnet.tasks.detection.task:DetectionTask",
}


def get_task(name: str) -> type:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    module, _, cls = TASKS[name].partition(":")
    return getattr(importlib.import_module(module), cls)
