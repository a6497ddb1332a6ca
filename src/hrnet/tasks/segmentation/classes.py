"""The segmentation task's class lists: `hrnet.data.classes` (kept at the data layer, below the tasks,
because weights metadata names them too)."""

from ...data.classes import *  # noqa: F401,F403
from ...data.classes import BUILTIN, ClassList, resolve_classes, voc_palette  # noqa: F401 (explicit re-exports)
