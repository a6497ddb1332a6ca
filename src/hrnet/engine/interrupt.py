"""Ctrl-C during training: finish the optimizer step in progress, save `last.pth`, stop.

While `catch_sigint()` is active (the whole of `fit`), the first SIGINT only sets a flag: the
training loop sees it after the current step (all processes agree, through the step's reduced
statistics), writes `last.pth` at that step (resumable exactly, mid-epoch) and raises
`TrainingInterrupted`. Outside the training steps (preparing the data, evaluating) the first SIGINT
interrupts at once; nothing trained is lost, because the engine saves `last.pth` before each
evaluation. A second SIGINT always interrupts at once. DataLoader workers ignore SIGINT (a
terminal sends it to the whole process group), so they never die under the step in progress.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Iterator

from ..errors import EXIT_INTERRUPTED


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C / SIGINT. `str()` is one line saying what was saved and how to
    resume; `checkpoint` is the `last.pth` to resume from (None when nothing was saved)."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str, checkpoint: Path | None = None):
        super().__init__(message)
        self.checkpoint = checkpoint


class _Sigint:
    """The handler's state: `requested` after the first SIGINT; `deferred` while a step runs."""

    def __init__(self) -> None:
        self.requested = False
        self.deferred = False

    def __call__(self, signum: int, frame: object) -> None:
        if self.requested or not self.deferred:
            self.requested = True
            raise KeyboardInterrupt
        self.requested = True


_STATE = _Sigint()


def requested() -> bool:
    """Whether a SIGINT arrived (and was deferred) since `catch_sigint` started."""
    return _STATE.requested


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Inside this block the first SIGINT only sets `requested()` (the training steps)."""
    previous, _STATE.deferred = _STATE.deferred, True
    try:
        yield
    finally:
        _STATE.deferred = previous


@contextlib.contextmanager
def catch_sigint() -> Iterator[None]:
    """Install the handler (main thread only; elsewhere, e.g. in a notebook's worker thread,
    Python's default KeyboardInterrupt stays) and restore the previous one on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    _STATE.requested, _STATE.deferred = False, False
    signal.signal(signal.SIGINT, _STATE)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _STATE.requested, _STATE.deferred = False, False


def ignore_sigint_in_worker(worker_id: int) -> None:
    """DataLoader `worker_init_fn`: the main process alone decides what a Ctrl-C does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
