"""Data reading shared by the tasks; task-specific datasets live in `hrnet.tasks.<task>`."""

# The ImageNet statistics every HRNet publisher normalises RGB in [0, 1] with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
