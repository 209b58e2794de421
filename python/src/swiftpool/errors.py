"""The exceptions of swiftpool: what the C core knows of a failure, as Python errors."""
from __future__ import annotations

import signal as _signal
from typing import Optional

from . import _core


class PoolError(Exception):
    """Any error of the pool."""


class PoolClosedError(PoolError):
    """The pool is closed, terminated or gone."""


class WorkerInitError(PoolError):
    """The workers keep failing to start: the pool cannot run anything."""


class TaskError(PoolError):
    """One task failed. ``index`` is its index in the call (0 for apply/submit),
    ``code`` the core's status code, ``detail`` its detail, ``worker`` the worker slot
    that ran it (-1 for none). A map raises the first failure in index order, with
    ``results`` (every task's result; failed ones undefined) and ``failures`` (every
    failure) attached."""

    def __init__(self, message: str, index: int, code: int, detail: int, worker: int):
        super().__init__(message)
        self.index, self.code, self.detail, self.worker = index, code, detail, worker
        self.results = None
        self.failures: list = []


class TaskCrashed(TaskError):
    """The worker died while running the task: ``signal`` (e.g. SIGSEGV) or
    ``exit_status``; both None when the host program collected the exit first."""

    @property
    def signal(self) -> Optional[int]:
        return self.detail if 0 <= self.detail < 1000 else None

    @property
    def exit_status(self) -> Optional[int]:
        return self.detail - 1000 if self.detail >= 1000 else None


class TaskTimeout(TaskError):
    """The task ran past its timeout; its worker was killed and replaced."""


class TaskCancelled(TaskError):
    """The task was cancelled (a future's cancel, terminate) before it ended."""


def task_error(code: int, detail: int, worker: int, index: int) -> TaskError:
    """The exception for one failed task."""
    at = f"task {index}"
    if code == _core.E_CRASHED:
        if detail == _core.DETAIL_UNKNOWN:
            what = "the worker crashed"
        elif detail >= 1000:
            what = f"the worker exited with status {detail - 1000}"
        else:
            try:
                name = _signal.Signals(detail).name
            except ValueError:
                name = f"signal {detail}"
            what = f"the worker crashed with {name}"
        return TaskCrashed(f"{at}: {what}", index, code, detail, worker)
    if code == _core.E_TASK_TIMEOUT:
        return TaskTimeout(f"{at}: timed out; its worker was killed", index, code, detail, worker)
    if code == _core.E_CANCELLED:
        return TaskCancelled(f"{at}: cancelled", index, code, detail, worker)
    return TaskError(f"{at}: {_core.strerror(code)}", index, code, detail, worker)


def call_error(code: int, what: str) -> Exception:
    """The exception for a call that failed as a whole (nothing ran)."""
    text = f"{what}: {_core.strerror(code)}"
    if code == _core.E_CLOSED:
        return PoolClosedError(text)
    if code == _core.E_WORKER_INIT:
        return WorkerInitError(text)
    if code in (_core.E_SIGNATURE, _core.E_SIZE, _core.E_EXISTS, _core.E_UNKNOWN_FUNCTION):
        return ValueError(text)
    if code == _core.E_SYMBOL:
        return LookupError(text)
    if code == _core.E_TOO_LARGE:
        return MemoryError(text)
    return PoolError(text)
