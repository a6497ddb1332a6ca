"""Data reading shared by the tasks; task-specific datasets live in `hrnet.tasks.<task>`."""
