"""Class lists: names, colours, the ignore index, and how raw mask values become train ids.

A mask file stores raw values (Cityscapes label ids, ADE20K 0 = "other", CamVid indices); the
model is trained on ids 0..K-1 with one ignore value. `ClassList.encode` does that mapping with a
256-entry lookup table, so it is one vectorised gather per mask.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from .io import DataError

Color = tuple[int, int, int]


def voc_palette(count: int) -> list[Color]:
    """The PASCAL VOC colour map: the bits of the class index spread over the high bits of R, G, B."""
    colors = []
    for index in range(count):
        rgb = [0, 0, 0]
        value, shift = index, 7
        while value:
            for channel in range(3):
                rgb[channel] |= ((value >> channel) & 1) << shift
            value >>= 3
            shift -= 1
        colors.append((rgb[0], rgb[1], rgb[2]))
    return colors


@dataclass(frozen=True)
class ClassList:
    """K class names and colours; `ignore_index` marks pixels without a label.

    `label_map` maps raw mask values to train ids (values not in it become ignore); when None, raw
    values are train ids already. `reduce_zero_label` (ADE20K) maps 0 to ignore and v to v-1.
    """

    names: tuple[str, ...]
    colors: tuple[Color, ...] = ()
    ignore_index: int = 255
    label_map: Mapping[int, int] | None = field(default=None, compare=False)
    reduce_zero_label: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        colors = tuple(tuple(int(v) for v in c) for c in self.colors) or tuple(voc_palette(len(self.names)))
        object.__setattr__(self, "colors", colors)
        if not self.names:
            raise ValueError("a class list needs at least one class name")
        if len(colors) != len(self.names) or any(len(c) != 3 for c in colors):
            raise ValueError(f"class list has {len(self.names)} names but {len(colors)} colours; "
                             "give one RGB per class")
        if not len(self.names) <= self.ignore_index <= 255:
            raise ValueError(f"ignore_index {self.ignore_index} must lie in {len(self.names)}..255 (after the class "
                             "ids, within a uint8 mask); 255 is the usual choice")

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def lookup_table(self) -> np.ndarray:
        """(256,) int64: raw mask value -> train id or ignore_index."""
        if self.label_map is not None:
            table = np.full(256, self.ignore_index, dtype=np.int64)
            for raw, train_id in self.label_map.items():
                if 0 <= raw < 256:
                    table[raw] = train_id
            return table
        table = np.arange(256, dtype=np.int64)
        if self.reduce_zero_label:
            table = table - 1
            table[0] = self.ignore_index
            table[255] = self.ignore_index
        return table

    def encode(self, mask: np.ndarray) -> np.ndarray:
        """Raw uint8 mask (H, W) -> train ids int64 (H, W)."""
        if mask.dtype != np.uint8:
            if mask.size and (mask.min() < 0 or mask.max() > 255):
                raise DataError(f"mask values {mask.min()}..{mask.max()} do not fit a uint8 label image")
            mask = mask.astype(np.uint8)
        return self.lookup_table()[mask]

    def invalid_values(self, train_ids: np.ndarray) -> list[int]:
        """Train ids in an encoded mask that are neither a class nor ignore (sorted)."""
        values = np.unique(train_ids)
        bad = values[((values < 0) | (values >= self.num_classes)) & (values != self.ignore_index)]
        return [int(v) for v in bad]

    def palette(self) -> np.ndarray:
        """(256, 3) uint8: colour of each train id; ignore and unused ids are black."""
        table = np.zeros((256, 3), dtype=np.uint8)
        table[: self.num_classes] = np.asarray(self.colors, dtype=np.uint8)
        return table

    def to_dict(self) -> dict:
        return {"names": list(self.names), "colors": [list(c) for c in self.colors], "ignore_index": self.ignore_index}

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, ignore_index: int = 255) -> "ClassList":
        """Read a class list.

        `.json`/`.yaml`/`.yml`: {"names": [...], "colors": [[r, g, b], ...], "ignore_index": 255}
        (colours optional). Any other suffix: one class per line, `name` or `name r g b`, in id order
        (the labelme `class_names.txt` format); empty lines and `#` comments are skipped.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(f"class list {path} does not exist; give a text file with one class name per line")
        if path.suffix.lower() in (".json", ".yaml", ".yml"):
            return cls._from_mapping(path, ignore_index)
        names, colors = [], []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) >= 4 and all(p.isdigit() for p in parts[-3:]):
                names.append(" ".join(parts[:-3]))
                colors.append(tuple(int(p) for p in parts[-3:]))
            else:
                names.append(line)
        if colors and len(colors) != len(names):
            raise DataError(f"class list {path}: give a colour (name r g b) on every line or on none")
        return cls(names=tuple(names), colors=tuple(colors), ignore_index=ignore_index)

    @classmethod
    def _from_mapping(cls, path: Path, ignore_index: int) -> "ClassList":
        import yaml

        data = json.loads(path.read_text()) if path.suffix.lower() == ".json" else yaml.safe_load(path.read_text())
        if not isinstance(data, dict) or "names" not in data:
            raise DataError(f"class list {path} must be a mapping with a 'names' list (and optional 'colors', "
                            "'ignore_index')")
        unknown = set(data) - {"names", "colors", "ignore_index"}
        if unknown:
            raise DataError(f"class list {path}: unknown keys {sorted(unknown)}; expected names, colors, ignore_index")
        try:
            return cls(names=tuple(data["names"]), colors=tuple(tuple(c) for c in data.get("colors") or ()),
                       ignore_index=int(data.get("ignore_index", ignore_index)))
        except ValueError as error:
            raise DataError(f"class list {path}: {error}") from None


# Cityscapes: label ids of gtFine_labelIds.png -> the 19 evaluated train ids (cityscapesScripts' labels.py).
CITYSCAPES_LABEL_TO_TRAIN = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
                             25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}

CITYSCAPES = ClassList(
    names=("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
           "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"),
    colors=((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
            (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
            (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32)),
    ignore_index=255,
    label_map=CITYSCAPES_LABEL_TO_TRAIN,
)

# CamVid as prepared by SegNet: 11 classes, value 11 ("Unlabelled") is ignored.
CAMVID = ClassList(
    names=("sky", "building", "pole", "road", "pavement", "tree", "sign symbol", "fence", "car", "pedestrian",
           "bicyclist"),
    colors=((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
            (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)),
    ignore_index=11,
)

# ADE20K SceneParsing (ADEChallengeData2016): 150 classes stored as 1..150, 0 = "other" (ignored).
ADE20K_NAMES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet", "sidewalk",
    "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water", "painting", "sofa",
    "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe",
    "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter",
    "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case",
    "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase", "blind", "coffee table",
    "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm", "kitchen island", "computer",
    "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower",
    "chandelier", "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track", "apparel",
    "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van", "ship",
    "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel", "basket",
    "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name",
    "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood",
    "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor",
    "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)
# Colours for 1..150 from the VOC bit pattern (index 0 of that palette is black, kept for ignore).
ADE20K = ClassList(names=ADE20K_NAMES, colors=tuple(voc_palette(151)[1:]), ignore_index=255, reduce_zero_label=True)

# The datasets of the published checkpoints (`hrnet.weights`): names, colours and mask encodings as in
# mmsegmentation's dataset classes (mmseg/datasets/{voc,pascal_context,loveda,potsdam,isprs,isaid,lip,
# coco_stuff}.py), whose trained models use exactly these class orders.
VOC_NAMES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
             "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
PASCAL_VOC = ClassList(names=VOC_NAMES, colors=tuple(voc_palette(21)), ignore_index=255)

# PASCAL-Context: 60 classes with background (raw masks 0..59); the 59-class variant drops the background
# (0 -> ignore, v -> v-1), as mmsegmentation's PascalContextDataset59.
PASCAL_CONTEXT_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "table",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor", "bag", "bed", "bench",
    "book", "building", "cabinet", "ceiling", "cloth", "computer", "cup", "door", "fence", "floor", "flower", "food",
    "grass", "ground", "keyboard", "light", "mountain", "mouse", "curtain", "platform", "sign", "plate", "road",
    "rock", "shelves", "sidewalk", "sky", "snow", "bedclothes", "track", "tree", "truck", "wall", "water", "window",
    "wood",
)
PASCAL_CONTEXT_COLORS = (
    (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3), (120, 120, 80), (140, 140, 140),
    (204, 5, 255), (230, 230, 230), (4, 250, 7), (224, 5, 255), (235, 255, 7), (150, 5, 61), (120, 120, 70),
    (8, 255, 51), (255, 6, 82), (143, 255, 140), (204, 255, 4), (255, 51, 7), (204, 70, 3), (0, 102, 200),
    (61, 230, 250), (255, 6, 51), (11, 102, 255), (255, 7, 71), (255, 9, 224), (9, 7, 230), (220, 220, 220),
    (255, 9, 92), (112, 9, 255), (8, 255, 214), (7, 255, 224), (255, 184, 6), (10, 255, 71), (255, 41, 10),
    (7, 255, 255), (224, 255, 8), (102, 8, 255), (255, 61, 6), (255, 194, 7), (255, 122, 8), (0, 255, 20),
    (255, 8, 41), (255, 5, 153), (6, 51, 255), (235, 12, 255), (160, 150, 20), (0, 163, 255), (140, 140, 140),
    (250, 10, 15), (20, 255, 0), (31, 255, 0), (255, 31, 0), (255, 224, 0), (153, 255, 0), (0, 0, 255),
    (255, 71, 0), (0, 235, 255), (0, 173, 255), (31, 0, 255),
)
PASCAL_CONTEXT = ClassList(names=PASCAL_CONTEXT_NAMES, colors=PASCAL_CONTEXT_COLORS, ignore_index=255)
PASCAL_CONTEXT_59 = ClassList(names=PASCAL_CONTEXT_NAMES[1:], colors=PASCAL_CONTEXT_COLORS[1:], ignore_index=255,
                              reduce_zero_label=True)

# Remote sensing: raw 0 is "no data" (ignored), classes are stored from 1 (reduce_zero_label).
LOVEDA = ClassList(names=("background", "building", "road", "water", "barren", "forest", "agricultural"),
                   colors=((255, 255, 255), (255, 0, 0), (255, 255, 0), (0, 0, 255), (159, 129, 183), (0, 255, 0),
                           (255, 195, 128)), ignore_index=255, reduce_zero_label=True)
ISPRS_NAMES = ("impervious_surface", "building", "low_vegetation", "tree", "car", "clutter")
ISPRS_COLORS = ((255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0), (255, 0, 0))
POTSDAM = ClassList(names=ISPRS_NAMES, colors=ISPRS_COLORS, ignore_index=255, reduce_zero_label=True)
VAIHINGEN = ClassList(names=ISPRS_NAMES, colors=ISPRS_COLORS, ignore_index=255, reduce_zero_label=True)
ISAID = ClassList(
    names=("background", "ship", "store_tank", "baseball_diamond", "tennis_court", "basketball_court",
           "Ground_Track_Field", "Bridge", "Large_Vehicle", "Small_Vehicle", "Helicopter", "Swimming_pool",
           "Roundabout", "Soccer_ball_field", "plane", "Harbor"),
    colors=((0, 0, 0), (0, 0, 63), (0, 63, 63), (0, 63, 0), (0, 63, 127), (0, 63, 191), (0, 63, 255), (0, 127, 63),
            (0, 127, 127), (0, 0, 127), (0, 0, 191), (0, 0, 255), (0, 191, 127), (0, 127, 191), (0, 127, 255),
            (0, 100, 155)),
    ignore_index=255,
)

# LIP (Look Into Person) human parsing: 20 classes, 0 = background.
LIP = ClassList(
    names=("Background", "Hat", "Hair", "Glove", "Sunglasses", "UpperClothes", "Dress", "Coat", "Socks", "Pants",
           "Jumpsuits", "Scarf", "Skirt", "Face", "Left-arm", "Right-arm", "Left-leg", "Right-leg", "Left-shoe",
           "Right-shoe"),
    colors=((0, 0, 0), (128, 0, 0), (255, 0, 0), (0, 85, 0), (170, 0, 51), (255, 85, 0), (0, 0, 85), (0, 119, 221),
            (85, 85, 0), (0, 85, 85), (85, 51, 0), (52, 86, 128), (0, 128, 0), (0, 0, 255), (51, 170, 221),
            (0, 255, 255), (85, 255, 170), (170, 255, 85), (255, 255, 0), (255, 170, 0)),
    ignore_index=255,
)

# COCO-Stuff 164k: 171 train ids 0..170 (80 things, then 91 stuff classes), 255 ignored.
COCO_STUFF_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant",
    "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
    "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet",
    "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush", "banner",
    "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard", "carpet",
    "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard", "curtain", "desk-stuff",
    "dirt", "door-stuff", "fence", "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood", "flower",
    "fog", "food-other", "fruit", "furniture-other", "grass", "gravel", "ground-other", "hill", "house", "leaves",
    "light", "mat", "metal", "mirror-stuff", "moss", "mountain", "mud", "napkin", "net", "paper", "pavement",
    "pillow", "plant-other", "plastic", "platform", "playingfield", "railing", "railroad", "river", "road", "rock",
    "roof", "rug", "salad", "sand", "sea", "shelf", "sky-other", "skyscraper", "snow", "solid-other", "stairs",
    "stone", "straw", "structural-other", "table", "tent", "textile-other", "towel", "tree", "vegetable",
    "wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood", "water-other",
    "waterdrops", "window-blind", "window-other", "wood",
)
COCO_STUFF_COLORS = (
    (0, 192, 64), (0, 192, 64), (0, 64, 96), (128, 192, 192), (0, 64, 64), (0, 192, 224), (0, 192, 192),
    (128, 192, 64), (0, 192, 96), (128, 192, 64), (128, 32, 192), (0, 0, 224), (0, 0, 64), (0, 160, 192),
    (128, 0, 96), (128, 0, 192), (0, 32, 192), (128, 128, 224), (0, 0, 192), (128, 160, 192), (128, 128, 0),
    (128, 0, 32), (128, 32, 0), (128, 0, 128), (64, 128, 32), (0, 160, 0), (0, 0, 0), (192, 128, 160), (0, 32, 0),
    (0, 128, 128), (64, 128, 160), (128, 160, 0), (0, 128, 0), (192, 128, 32), (128, 96, 128), (0, 0, 128),
    (64, 0, 32), (0, 224, 128), (128, 0, 0), (192, 0, 160), (0, 96, 128), (128, 128, 128), (64, 0, 160),
    (128, 224, 128), (128, 128, 64), (192, 0, 32), (128, 96, 0), (128, 0, 192), (0, 128, 32), (64, 224, 0),
    (0, 0, 64), (128, 128, 160), (64, 96, 0), (0, 128, 192), (0, 128, 160), (192, 224, 0), (0, 128, 64),
    (128, 128, 32), (192, 32, 128), (0, 64, 192), (0, 0, 32), (64, 160, 128), (128, 64, 64), (128, 0, 160),
    (64, 32, 128), (128, 192, 192), (0, 0, 160), (192, 160, 128), (128, 192, 0), (128, 0, 96), (192, 32, 0),
    (128, 64, 128), (64, 128, 96), (64, 160, 0), (0, 64, 0), (192, 128, 224), (64, 32, 0), (0, 192, 128),
    (64, 128, 224), (192, 160, 0), (0, 192, 0), (192, 128, 96), (192, 96, 128), (0, 64, 128), (64, 0, 96),
    (64, 224, 128), (128, 64, 0), (192, 0, 224), (64, 96, 128), (128, 192, 128), (64, 0, 224), (192, 224, 128),
    (128, 192, 64), (192, 0, 96), (192, 96, 0), (128, 64, 192), (0, 128, 96), (0, 224, 0), (64, 64, 64),
    (128, 128, 224), (0, 96, 0), (64, 192, 192), (0, 128, 224), (128, 224, 0), (64, 192, 64), (128, 128, 96),
    (128, 32, 128), (64, 0, 192), (0, 64, 96), (0, 160, 128), (192, 0, 64), (128, 64, 224), (0, 32, 128),
    (192, 128, 192), (0, 64, 224), (128, 160, 128), (192, 128, 0), (128, 64, 32), (128, 32, 64), (192, 0, 128),
    (64, 192, 32), (0, 160, 64), (64, 0, 0), (192, 192, 160), (0, 32, 64), (64, 128, 128), (64, 192, 160),
    (128, 160, 64), (64, 128, 0), (192, 192, 32), (128, 96, 192), (64, 0, 128), (64, 64, 32), (0, 224, 192),
    (192, 0, 0), (192, 64, 160), (0, 96, 192), (192, 128, 128), (64, 64, 160), (128, 224, 192), (192, 128, 64),
    (192, 64, 32), (128, 96, 64), (192, 0, 192), (0, 192, 32), (64, 224, 64), (64, 0, 64), (128, 192, 160),
    (64, 96, 64), (64, 128, 192), (0, 192, 160), (192, 224, 64), (64, 128, 64), (128, 192, 32), (192, 32, 192),
    (64, 64, 192), (0, 64, 32), (64, 160, 192), (192, 64, 64), (128, 64, 160), (64, 32, 192), (192, 192, 192),
    (0, 64, 160), (192, 160, 192), (192, 192, 0), (128, 64, 96), (192, 32, 64), (192, 64, 128), (64, 192, 96),
    (64, 160, 64), (64, 64, 0),
)
COCO_STUFF = ClassList(names=COCO_STUFF_NAMES, colors=COCO_STUFF_COLORS, ignore_index=255)

BUILTIN = {"cityscapes": CITYSCAPES, "camvid": CAMVID, "ade20k": ADE20K, "pascal_voc": PASCAL_VOC,
           "pascal_context": PASCAL_CONTEXT, "pascal_context_59": PASCAL_CONTEXT_59, "loveda": LOVEDA,
           "potsdam": POTSDAM, "vaihingen": VAIHINGEN, "isaid": ISAID, "lip": LIP, "coco_stuff": COCO_STUFF}


def resolve_classes(spec: str | os.PathLike | None, *, default: str | None = None,
                    ignore_index: int = 255) -> ClassList:
    """A built-in list by name (a key of BUILTIN: "cityscapes", "camvid", "ade20k", ...) or a class-list file path."""
    spec = spec or default
    if spec is None:
        raise DataError("no class list given: set data.classes to a file (one class name per line) or a built-in "
                        f"name ({', '.join(BUILTIN)})")
    if str(spec).lower() in BUILTIN:
        return BUILTIN[str(spec).lower()]
    return ClassList.from_file(spec, ignore_index=ignore_index)

