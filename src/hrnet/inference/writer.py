"""`hrnet predict`: a Predictor's results written into a folder, going on past bad files.

For each input the task's result writes its pictures (`Result.files`: a PNG per image, an MP4 per
video) and contributes records to the task's results file (`RESULTS_FILE`: predictions.json,
keypoints.json or detections.json). Two inputs with the same file stem get numbered names, so no
output overwrites another. A file that cannot be read is reported and skipped; the summary lists
the failures (`strict=True` stops at the first).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..engine.progress import progress
from ..engine.task import Prediction
from .predictor import Predictor
from .results import ResultStream, write_atomic

log = logging.getLogger("hrnet")
LINE_SECONDS = 30.0  # without a terminal, a progress line this often (logs, CI, nohup)


@dataclass
class PredictSummary:
    """What `write_predictions` did: one Prediction (files written, a printable line) per input that
    worked, and (input, message) per input that failed."""

    out_dir: Path
    results_file: Path | None = None
    predictions: list[Prediction] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


def _unique_stem(path_name: str, used: set[str]) -> str:
    stem, number = Path(path_name).stem or "input", 1
    candidate = stem
    while candidate in used:
        number += 1
        candidate = f"{stem}_{number}"
    used.add(candidate)
    return candidate


def write_predictions(predictor: Predictor, inputs: Any, out_dir: str | Path, *, strict: bool = False,
                      max_frames: int | None = None, on_line: Callable[[str], None] | None = None,
                      **call_options: Any) -> PredictSummary:
    """Predict on `inputs` (files, folders, videos) and write every picture and the results file into
    `out_dir`. `on_line` receives one printable line per finished input (and per failure)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = PredictSummary(out_dir=out_dir)
    records: list[dict] = []
    used: set[str] = set()
    results_file = None
    for index, (source, result, error) in enumerate(predictor.iterate(inputs, **call_options)):
        if error is not None:
            if strict:
                raise error
            summary.failures.append((source.name, str(error)))
            line = f"{source.name}: FAILED: {error}"
        else:
            stem = _unique_stem(source.name, used)
            if isinstance(result, ResultStream):
                prediction, new, results_file = _video(predictor, result, source.path, out_dir, stem, max_frames)
            else:
                prediction, new, results_file = _image(result, out_dir, stem, index)
            records += new
            summary.predictions.append(prediction)
            line = f"{prediction.source}: {prediction.outputs['line']}"
        summary.lines.append(line)
        if on_line is not None:
            on_line(line)
    if results_file is not None:
        summary.results_file = out_dir / results_file
        write_atomic(summary.results_file, lambda tmp: Path(tmp).write_text(json.dumps(records)))
    return summary


def _image(result: Any, out_dir: Path, stem: str, index: int) -> tuple[Prediction, list[dict], str]:
    files = result.files(out_dir, stem)
    records = result.records(files=files, index=index)
    outputs = {**files, "line": result.line(files["picture"])}
    return Prediction(source=result.source, outputs=outputs, picture=files["picture"]), records, result.RESULTS_FILE


def _video(predictor: Predictor, stream: ResultStream, path: Path, out_dir: Path, stem: str,
           max_frames: int | None) -> tuple[Prediction, list[dict], str]:
    if max_frames is not None:
        stream = predictor.stream(path, max_frames=max_frames)
    tty = sys.stderr.isatty()
    shown = progress(iter(stream), enabled=tty, total=stream.frames, desc=path.name, unit="frame",
                     every_seconds=0.0 if tty else LINE_SECONDS)
    stream = ResultStream(iter(shown), source=stream.source, fps=stream.fps, frames=stream.frames)
    frames: list[Any] = []

    def collect(result: Any) -> None:
        frames.append(result.frame_record())

    result_type = predictor.inference.result_type
    picture = out_dir / f"{stem}{result_type.VIDEO_SUFFIX}.mp4"
    stream.save(picture, on_result=collect)
    records, outputs = result_type.video_records(frames, source=str(path), picture=str(picture))
    return Prediction(source=str(path), outputs={**outputs, "picture": str(picture)}, picture=str(picture)), \
        records, result_type.RESULTS_FILE


__all__ = ["PredictSummary", "write_predictions"]
