"""One-call inference for every task: `hrnet.Predictor` and its typed results.

    import hrnet
    pose = hrnet.Predictor("runs/pose/best.pth")
    people = pose("photo.jpg")                    # hrnet.tasks.pose.Poses
    people.keypoints, people.scores, people.boxes  # numpy, in the photo's pixels (as displayed)
    people.save("out/photo.png")

`write_predictions` is what `hrnet predict` does with a Predictor: pictures and a results file per
task in a folder, going on past bad files.
"""

_LAZY = {"Predictor": "predictor", "Result": "results", "ResultStream": "results", "PredictSummary": "writer",
         "write_predictions": "writer"}  # imported on first use: the command line stays light


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PredictSummary", "Predictor", "Result", "ResultStream", "write_predictions"]
