"""Pretrained weights by name, from every public HRNet source: verified, cached and offline-safe.

    import hrnet
    hrnet.list_weights(task="pose", arch="hrnet_w32")           # [Weights(...), ...]
    model = hrnet.create_model("hrnet_w32", weights="coco_256x192_udp")
    model.weights.decoding, model.weights.input_size             # "udp", (256, 192)
    hrnet.weights.class_names(model.weights)                     # the 17 COCO keypoints

The entries are data: `zoo/<source>.yaml`, one file per publisher (timm, mmpose, mmseg, mmdet, official),
loaded into frozen `Weights` and validated (fields, registered arch / task / head / layout, what a
layout implies). Files go through `hrnet.hub`: a cache ($HRNET_CACHE/weights/<name>/<file>),
atomic writes, the published sha256 or file-name hash prefix, retries, and HRNET_OFFLINE=1. Files on
shared drives (`direct=False`) are downloaded by hand (`Weights.manual`) and put into the cache with
`hrnet weights place NAME FILE`.

Names are `ARCH.TAG`. ARCH is the `spec.VARIANTS` name (timm's `hrnet_w18_small` is
`hrnet_w18_small_v1`; mmseg/mmdet "hr18s" / HRNetV2p-W18-Small is `hrnet_w18_small_v2`). TAG:
- timm: timm's own tag (`ms_in1k`, `ms_aug_in1k`, `gluon_in1k`, `paddle_in1k`); timm's model name
  where it differs is an alias (`hrnet_w18_small.ms_in1k`, `hrnet_w18_ssld.paddle_in1k`).
- other ImageNet weights: `in1k_official`, `cutmix_300ep_in1k_official`, `ssld_in1k_official`
  (HRNet-Image-Classification), `pose_in1k` (the pose repositories' backbone, as mmpose serves it),
  `mmcv_in1k` (the mmcv model zoo's `open-mmlab://msra/hrnetv2_*`).
- top-down pose: `<dataset>_<H>x<W>[_dark|_udp|_fp16|_<augmentation>]`; mmpose's 1.x retrained files end
  in `_mmpose1`; COCO+AI Challenger `coco_aic_256x192_{merge,combine}[_<date>]`.
- bottom-up pose: `coco_bottom_up_<size>[_udp]` (HigherHRNet), `coco_ae_<size>[_udp]` (plain HRNet with
  associative embedding).
- segmentation: mmseg `<dataset>_<fcn|ocr>_<H>x<W>_<iterations>k` (`_mmseg0`: a file 1.x replaced);
  official `<dataset>[_trainval]_<fcn|ocr>[_ohem]_official[_torch11|_torch04]` (the suffix names the
  branch: none = HRNet-OCR's GitHub release, `_torch11` = pytorch-v1.1, `_torch04` = master).
- detection: `coco_<faster_rcnn|mask_rcnn>_<1x|2x>[_syncbn][_ms][_resizecrop]`.
- `_official` always marks a file of the MSRA HRNet repositories (or Lite-HRNet's / HigherHRNet's).

Left out, because no model of this library computes them (the research notes list them all):
mmdetection's and HRNet-Object-Detection's Cascade R-CNN, Cascade Mask R-CNN, HTC and FCOS (other
heads than the torchvision Faster / Mask R-CNN of `hrnet.detectors`); HRNet-Object-Detection's four
W48 Faster / Mask R-CNN files on the legacy open-mmlab S3 bucket (mmdetection v1.x layout: neck
`reduction_conv.conv` with a top-level `bbox_head`, which no registered layout maps); mmpose's UDP
"regress" models (a combined-target head with offset maps, not plain heatmaps); and the pose
repositories' ImageNet backbones as their shared-drive copies (the same files, with the same hash,
are direct downloads as `hrnet_w32.pose_in1k` / `hrnet_w48.pose_in1k`). Entries that wait for a head
this library does not have yet carry `pending` and are listed, not loaded.
"""

from .entry import CLASS_LISTS, DECODINGS, KEYPOINT_SETS, SOURCES, Metric, Weights
from .names import class_names
from .registry import get_weights, list_weights
from .tables import readme_table

__all__ = ["CLASS_LISTS", "DECODINGS", "KEYPOINT_SETS", "SOURCES", "Metric", "Weights", "class_names", "get_weights",
           "list_weights", "readme_table"]
