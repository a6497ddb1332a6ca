"""`hrnet.Predictor`: one call from a picture (or a folder, a video, a webcam) to a typed result.

    pose = hrnet.Predictor("runs/pose/best.pth")             # or weights by name, or weights + recipe
    people = pose("photo.jpg")                                # Poses: keypoints, scores, boxes in its pixels
    people.draw(); people.save("out/photo.png"); people.to_json()
    for result in pose.stream("clip.mp4"): ...                # or a webcam index, lazily, frame by frame
    results = pose(["a.jpg", "b.jpg"], batch_size=8)          # batched, DataLoader workers; folders expand

The model and its task come from `loading.load_model`; the task's inference (`task.inference`)
does the work, with the recipe's settings (shared with `hrnet eval`) replaced by keyword options.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..errors import ConfigError, HRNetError
from . import sources as sources_module
from .loading import load_model, resolve_detector
from .results import Result, ResultStream
from .sources import Source

log = logging.getLogger("hrnet")
RUNTIMES = ("torch", "onnxruntime", "openvino")


class _Pictures(Dataset):
    """Image sources read (EXIF applied) and prepared by the task in DataLoader workers; a bad file
    comes back as its error, so a folder goes on past it."""

    def __init__(self, sources: list[Source], prepare: Any):
        self.sources, self.prepare = sources, prepare

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> tuple:
        try:
            picture, info = sources_module.load(self.sources[index])
            return index, picture, info, self.prepare(picture), None
        except HRNetError as error:
            return index, None, None, None, error


class Predictor:
    """A model ready to predict, for any task; see the module docstring.

    source: a run checkpoint (best.pth), a registered weights name (`hrnet weights list`), a weights
    file of any known layout (with `config=RECIPE`, or `arch=` and `task=`), or an nn.Module (with
    `task=` and optionally `config=`). `config`: a recipe file or dict; `overrides`: `--set`-style
    "key=value" strings. `runtime`: torch, onnxruntime or openvino; `precision`: fp32 (or int8 /
    fp16 where the runtime supports it). `detector` (pose): person boxes from a detection checkpoint
    or weights name, a torchvision detection model, or a function rgb -> (N, 4|5) x1y1x2y2[score].
    Other keyword options replace the task's inference settings by name (e.g. `flip_test=False`,
    `top_k=3`, `scales=[0.75, 1.0]`); an unknown option raises.
    """

    def __init__(self, source: str | os.PathLike | nn.Module, *, task: str | None = None, arch: str | None = None,
                 config: str | os.PathLike | dict | None = None, overrides: list[str] | tuple[str, ...] = (),
                 device: str | torch.device = "auto", runtime: str = "torch", precision: str = "fp32",
                 batch_size: int = 8, workers: int = 0, detector: Any = None, **options: Any):
        if runtime not in RUNTIMES:
            raise ConfigError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
        if batch_size < 1 or workers < 0:
            raise ConfigError(f"batch_size must be >= 1 and workers >= 0, got {batch_size} and {workers}")
        loaded = load_model(source, task=task, arch=arch, config=config, overrides=list(overrides), device=device)
        self.config, self.task, self.device, self.description = loaded.config, loaded.task, loaded.device, loaded.name
        self.model = self._runtime_model(loaded, runtime, precision)
        self.runtime, self.precision = runtime, precision
        self.batch_size, self.workers = batch_size, workers
        how = {"model": self.description, "runtime": runtime if runtime == "torch" else f"{runtime} {precision}",
               "device": str(self.device)}
        extra: dict[str, Any] = {}
        if detector is not None:
            if self.task.name != "pose":
                raise ConfigError(f"detector= gives person boxes to a top-down pose model; this is a {self.task.name} "
                                  "model")
            extra["box_source"], extra["box_description"] = resolve_detector(detector, device=self.device)
        self.inference = self.task.inference(self.model, device=self.device, how=how, **extra, **options)
        self._converted_said = False

    def _runtime_model(self, loaded: Any, runtime: str, precision: str) -> nn.Module:
        if runtime == "torch":
            if precision != "fp32":
                raise ConfigError(f"precision {precision!r} needs runtime onnxruntime or openvino (eager PyTorch "
                                  "runs fp32 here; see hrnet.optimize for fp16/bf16)")
            return loaded.model
        from ..runtime import load_runtime

        return load_runtime(loaded.model, runtime=runtime, precision=precision, cache=loaded.cache,
                            source_hash=loaded.source_hash)

    @property
    def settings(self) -> Any:
        """The task's inference settings in use (a frozen dataclass)."""
        return self.inference.settings

    # ------------------------------------------------------------------ pictures

    def __call__(self, inputs: Any, *, batch_size: int | None = None, **call_options: Any
                 ) -> Result | ResultStream | list[Result | ResultStream]:
        """Predict on one input (returns its result) or a list / folder (a list of results, in input
        order; a video among them gives a ResultStream). Per-call options: pose's `boxes=`."""
        single = not isinstance(inputs, (list, tuple)) and not (
            isinstance(inputs, (str, os.PathLike)) and os.path.isdir(inputs))
        out: list[Any] = []
        for source, result, error in self.iterate(inputs, batch_size=batch_size, **call_options):
            if error is not None:
                raise error
            out.append(result)
        return out[0] if single else out

    def iterate(self, inputs: Any, *, batch_size: int | None = None, **call_options: Any
                ) -> Iterator[tuple[Source, Result | ResultStream | None, HRNetError | None]]:
        """(source, result or stream, error) for every input in order, lazily; a failing file yields
        its error instead of stopping the others (what `hrnet predict` over a folder uses)."""
        sources = sources_module.expand(inputs)
        batch_size = batch_size or self.batch_size
        pending: list[Source] = []
        for source in sources:
            if source.is_video:
                yield from self._pictures(pending, batch_size, call_options)
                pending = []
                try:
                    stream = self.stream(source.path, **call_options)
                except HRNetError as error:  # a video that cannot be opened: the others go on
                    yield source, None, error
                    continue
                yield source, stream, None
            else:
                pending.append(source)
        yield from self._pictures(pending, batch_size, call_options)

    def _pictures(self, sources: list[Source], batch_size: int, call_options: dict
                  ) -> Iterator[tuple[Source, Result | None, HRNetError | None]]:
        if not sources:
            return
        loader = DataLoader(_Pictures(sources, self.inference.prepare), batch_size=batch_size,
                            num_workers=self.workers, collate_fn=list)
        for batch in loader:
            good = [item for item in batch if item[4] is None]
            for index, _, _, _, error in batch:
                if error is not None:
                    yield sources[index], None, error
            if not good:
                continue
            names = [sources[i].name for i, *_ in good]
            results = self.inference.run([g[1] for g in good], [g[3] for g in good], names, **call_options)
            for (index, _, info, _, _), result in zip(good, results):
                self._note_conversion(sources[index], info)
                result.coordinates = info.coordinates if info is not None else "pixels of the given array"
                yield sources[index], result, None

    def _note_conversion(self, source: Source, info: Any) -> None:
        if info is not None and info.converted and not self._converted_said:
            log.warning("%s is a %s image: converted to RGB (said once; other such images are converted too)",
                        source.name, info.mode)
            self._converted_said = True

    # ------------------------------------------------------------------ videos and webcams

    def stream(self, source: str | os.PathLike | int, *, max_frames: int | None = None,
               batch_size: int | None = None, **call_options: Any) -> ResultStream:
        """Results of a video file or a webcam index, lazily, frame by frame (frames decoded in a
        background thread, run in batches of `batch_size`). `.save("out.mp4")` writes the drawn frames
        at the source's frame rate. A webcam that is absent is an error, not a hang."""
        if max_frames is not None and max_frames < 1:
            raise ConfigError(f"max_frames must be >= 1, got {max_frames}")
        capture, fps, count, name = sources_module.open_capture(source)
        frames = sources_module.frames(capture, name, max_frames=max_frames)
        total = min(count, max_frames) if count is not None and max_frames is not None else (count or max_frames)
        return ResultStream(self._frame_results(frames, name, batch_size or self.batch_size, call_options),
                            source=name, fps=fps, frames=total)

    def _frame_results(self, frames: Iterator, name: str, batch_size: int, call_options: dict) -> Iterator[Result]:
        batch: list = []
        index = 0
        for frame in frames:
            batch.append(frame)
            if len(batch) == batch_size:
                yield from self._run_frames(batch, name, index, call_options)
                index += len(batch)
                batch = []
        if batch:
            yield from self._run_frames(batch, name, index, call_options)

    def _run_frames(self, frames: list, name: str, first: int, call_options: dict) -> Iterator[Result]:
        options = dict(call_options)
        if options.get("boxes") is not None:  # the same boxes for every frame of a stream
            options["boxes"] = [options["boxes"]] * len(frames)
        results = self.inference.run(frames, [self.inference.prepare(f) for f in frames],
                                     [f"{name}#{first + i}" for i in range(len(frames))], **options)
        for offset, result in enumerate(results):
            result.source, result.frame = name, first + offset
            result.coordinates = "video frame pixels"
            yield result
