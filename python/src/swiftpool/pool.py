"""The pool: C functions mapped over numpy arrays in worker processes, through shared
memory. See the package docstring for an example."""
from __future__ import annotations

import concurrent.futures as cf
import ctypes as C
import threading
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from ._core import lib
from ._signature import Signature, parse
from .errors import TaskError, call_error, task_error

STATUS_DTYPE = np.dtype([("code", "i4"), ("detail", "i4"), ("worker", "i4"), ("reserved", "i4")])
_WAIT_SLICE_NS = 100_000_000  # waits are sliced so that Ctrl-C reaches the caller


class _DlInfo(C.Structure):
    _fields_ = [("dli_fname", C.c_char_p), ("dli_fbase", C.c_void_p), ("dli_sname", C.c_char_p),
                ("dli_saddr", C.c_void_p)]


_libc = C.CDLL(None)
_libc.dladdr.argtypes = [C.c_void_p, C.POINTER(_DlInfo)]


def _in_shared_object(address: int) -> bool:
    """Whether the code at address lies in a loaded shared object (workers find it again)."""
    info = _DlInfo()
    return bool(_libc.dladdr(C.c_void_p(address), C.byref(info))) and bool(info.dli_fname)


def _address_of(function: Any) -> int:
    """The address of a C function given as an int, a ctypes function (from a CDLL or
    a CFUNCTYPE), a numba cfunc (.address) or a cffi function pointer."""
    if isinstance(function, int):
        return function
    if hasattr(function, "address") and isinstance(getattr(function, "address"), int):
        return function.address  # numba cfunc
    if isinstance(function, C._CFuncPtr):
        return C.cast(function, C.c_void_p).value or 0
    if type(function).__module__ == "_cffi_backend":
        import cffi
        return int(cffi.FFI().cast("uintptr_t", function))
    raise TypeError(f"not a C function pointer: {type(function).__name__} (give a ctypes function, a cffi "
                    f"function pointer, a numba cfunc or an address)")


def _ns(seconds: Optional[float]) -> int:
    if seconds is None:
        return 0
    if seconds <= 0:
        raise ValueError("a timeout must be positive")
    return max(1, int(seconds * 1e9))


class Function:
    """A C function registered with a pool: call it with ``pool.map``, ``pool.apply`` or
    ``pool.submit``."""

    def __init__(self, pool: "Pool", fid: int, name: str, signature: Signature):
        self.pool, self.id, self.name, self.signature = pool, fid, name, signature

    def __repr__(self) -> str:
        return f"<swiftpool.Function {self.name} {self.signature.text}>"


class Pool:
    """A pool of worker processes that runs registered C functions, like
    ``multiprocessing.Pool`` but through shared memory: numpy arrays are read and
    written in place, a task that crashes or times out fails alone (an exception with its
    index; the other results are kept), and workers never outlive the interpreter, not
    even when it is killed.

    ``workers``: processes (default: the CPUs this process may use);
    ``task_timeout``: seconds a task may run before its worker is killed;
    ``max_tasks_per_worker``: lifespan; ``crash_retries``: runs of a task whose worker
    died before it fails; ``max_memory_growth``: bytes a worker's memory may grow before
    it is replaced; ``kill_grace``: seconds between SIGTERM and SIGKILL when a task is
    stopped; ``shared_memory``: bytes of shared memory for tasks in flight.
    """

    def __init__(self, workers: Optional[int] = None, *, task_timeout: Optional[float] = None,
                 max_tasks_per_worker: Optional[int] = None, crash_retries: int = 0,
                 max_memory_growth: Optional[int] = None, kill_grace: Optional[float] = None,
                 shared_memory: int = 64 << 20):
        o = _core.Options()
        lib.cpool_options_init(C.byref(o))
        o.workers = workers or 0
        o.task_timeout_ns = _ns(task_timeout)
        o.max_tasks_per_worker = max_tasks_per_worker or 0
        o.crash_retries = crash_retries
        o.max_memory_growth_bytes = max_memory_growth or 0
        o.kill_grace_ns = _ns(kill_grace)
        o.arena_bytes = shared_memory
        handle = C.c_void_p()
        rc = lib.cpool_create(C.byref(o), C.byref(handle))
        if rc:
            raise call_error(rc, "creating the pool")
        self._h = handle
        self._lock = threading.Lock()
        self._closed = False
        self._restart = False  # a function the running workers cannot find was registered
        self._waiter: Optional[_Waiter] = None
        self._functions: dict = {}  # name -> (what was registered, Function)

    # ------------------------------------------------------------------ lifetime

    @property
    def workers(self) -> int:
        """The number of worker processes."""
        return int(lib.cpool_worker_count(self._handle()))

    def worker_stats(self) -> list:
        """Per worker slot: its process id (0 while replaced), tasks done, replacements,
        crashes, timeouts and memory recycles, as dicts."""
        h = self._handle()
        out = []
        for w in range(lib.cpool_worker_count(h)):
            s = _core.WorkerStats()
            lib.cpool_worker_stats(h, w, C.byref(s))
            out.append({k: getattr(s, k) for k in ("pid", "tasks_done", "restarts", "crashes", "timeouts",
                                                     "recycles")})
        return out

    def _handle(self) -> C.c_void_p:
        if self._h is None:
            raise call_error(_core.E_CLOSED, "the pool")
        return self._h

    def close(self) -> None:
        """No new work; what was submitted finishes (``join`` waits for it)."""
        self._closed = True
        if self._h is not None:
            lib.cpool_close(self._h)

    def terminate(self) -> None:
        """Stops now: running tasks are killed, unfinished ones fail with TaskCancelled."""
        self._closed = True
        if self._h is not None:
            lib.cpool_terminate(self._h)

    def join(self, timeout: Optional[float] = None) -> None:
        """After close or terminate: waits for every task and worker to end."""
        if self._h is None:
            return
        if not self._closed:
            raise ValueError("join() before close() or terminate()")
        rc = lib.cpool_join(self._h, _ns(timeout))
        if rc == -_core.ETIMEDOUT:
            raise TimeoutError("the pool's workers did not end in time")
        if self._waiter:
            self._waiter.stop()
        lib.cpool_destroy(self._h)
        self._h = None

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, kind, value, tb) -> None:
        # As multiprocessing.Pool: leaving the block stops the workers. Normal exit lets
        # submitted work finish; an exception terminates.
        if kind is None:
            self.close()
        else:
            self.terminate()
        self.join()

    def __del__(self) -> None:
        h = getattr(self, "_h", None)
        if h is not None:
            if self._waiter:
                self._waiter.stop()
            lib.cpool_destroy(h)
            self._h = None

    # ------------------------------------------------------------------ functions

    def register_symbol(self, symbol: str, signature: str, library: Optional[str] = None,
                        name: Optional[str] = None) -> Function:
        """Registers ``symbol`` of the shared library ``library`` (a path or soname as
        dlopen takes it; None: the program and its loaded libraries) with a C signature,
        e.g. ``pool.register_symbol("erf", "double(double)", "libm.so.6")``. Raises
        LookupError for an unknown library or symbol, ValueError for a bad signature."""
        sig = parse(signature)
        name = name or symbol
        known = self._known(name, ("symbol", symbol, library, signature))
        if known:
            return known
        fid = lib.cpool_register_symbol(self._handle(), name.encode(), library.encode() if library else None,
                                        symbol.encode(), signature.encode(), 0)
        if fid < 0:
            raise call_error(fid, f"registering {symbol!r}")
        return self._remember(name, ("symbol", symbol, library, signature), Function(self, fid, name, sig))

    def _known(self, name: str, what: tuple) -> Optional[Function]:
        """The function already registered under name as the same thing, or None; a
        different one under that name is a ValueError."""
        if name not in self._functions:
            return None
        before, fn = self._functions[name]
        if before != what:
            raise ValueError(f"another function is registered as {name!r}; pass name=...")
        return fn

    def _remember(self, name: str, what: tuple, fn: Function) -> Function:
        self._functions[name] = (what, fn)
        return fn

    def register(self, function: Any, signature: str, name: Optional[str] = None) -> Function:
        """Registers a C function pointer: a ctypes function, a cffi function pointer, a
        numba ``cfunc`` or an address, with its C signature. Code outside any shared
        object (a numba cfunc) is only in workers forked after it existed: the pool forks
        its workers again before its next call."""
        sig = parse(signature)
        address = _address_of(function)
        if not address:
            raise ValueError("a NULL function pointer")
        name = name or getattr(function, "__name__", None) or f"fn_{address:x}"
        known = self._known(name, ("address", address, signature))
        if known:
            return known
        fid = lib.cpool_register(self._handle(), name.encode(), signature.encode(), C.c_void_p(address), 0)
        if fid < 0:
            raise call_error(fid, f"registering {name!r}")
        if not _in_shared_object(address):
            self._restart = True
        return self._remember(name, ("address", address, signature), Function(self, fid, name, sig))

    def _ready(self, fn: Function) -> C.c_void_p:
        """The handle, once the workers can run fn."""
        h = self._handle()
        if fn.pool is not self:
            raise ValueError(f"{fn!r} belongs to another pool")
        if self._closed:
            raise call_error(_core.E_CLOSED, "the pool")
        with self._lock:
            if self._restart:
                lib.cpool_stop_workers(h, 0)
                rc = lib.cpool_start_workers(h)
                if rc:
                    raise call_error(rc, "forking the workers again")
                self._restart = False
        return h

    # ------------------------------------------------------------------ inputs

    @staticmethod
    def _vector(a: Any, dtype: np.dtype, what: str, n: Optional[int] = None) -> np.ndarray:
        """A 1-D array of dtype, as it is (no copy): a clear error otherwise."""
        arr = np.asarray(a)
        if arr.ndim != 1:
            raise ValueError(f"{what} must be 1-D, not {arr.ndim}-D")
        if arr.dtype != dtype:
            raise TypeError(f"{what} has dtype {arr.dtype}; the function takes {dtype} "
                            f"(convert it with .astype(np.{dtype.name}))")
        if len(arr) > 1 and arr.strides[0] < dtype.itemsize:
            raise ValueError(f"{what} is not contiguous (stride {arr.strides[0]}); pass "
                             f"np.ascontiguousarray(...)")
        if n is not None and len(arr) != n:
            raise ValueError(f"{what} has {len(arr)} items, the others {n}")
        return arr

    def _records(self, fn: Function, arrays: Sequence[Any]) -> Tuple[np.ndarray, int, int]:
        """The argument records of a map: (array, stride, count)."""
        sig = fn.signature
        record = sig.record
        if len(arrays) == 1 and len(sig.args) > 1:
            arr = np.asarray(arrays[0])
            fields = arr.dtype.fields
            if fields is None or [(f[0], f[1]) for f in sorted(fields.values(), key=lambda f: f[1])] != \
                    [(record.fields[k][0], record.fields[k][1]) for k in record.names] or arr.ndim != 1:
                raise TypeError(f"{fn.name} takes {len(sig.args)} arguments: pass {len(sig.args)} arrays, or "
                                f"one 1-D structured array laid out as {record} (np.dtype(..., align=True))")
            if len(arr) > 1 and arr.strides[0] < record.itemsize:
                raise ValueError("the structured array is not contiguous")
            return arr, (arr.strides[0] if len(arr) > 1 else record.itemsize), len(arr)
        if len(arrays) != len(sig.args):
            raise TypeError(f"{fn.name} takes {len(sig.args)} argument arrays, got {len(arrays)}")
        if len(arrays) == 1:
            arr = self._vector(arrays[0], sig.args[0], "the input")
            return arr, (arr.strides[0] if len(arr) > 1 else arr.itemsize), len(arr)
        first = self._vector(arrays[0], sig.args[0], "argument 0")
        packed = np.empty(len(first), record)
        for i, (a, t) in enumerate(zip(arrays, sig.args)):
            packed[f"a{i}"] = self._vector(a, t, f"argument {i}", len(first))
        return packed, record.itemsize, len(packed)

    def _output(self, fn: Function, n: int, out: Optional[np.ndarray]) -> Tuple[Optional[np.ndarray], int]:
        res = fn.signature.result
        if res is None:
            if out is not None:
                raise ValueError(f"{fn.name} returns void: no out")
            return None, 0
        if out is None:
            out = np.empty(n, res)
        else:
            out = self._vector(out, res, "out", n)
            if not out.flags.writeable:
                raise ValueError("out is read-only")
        return out, (out.strides[0] if n > 1 else res.itemsize)

    # ------------------------------------------------------------------ calls

    def map(self, fn: Function, *arrays: Any, out: Optional[np.ndarray] = None, chunk_size: Optional[int] = None,
            statuses: bool = False) -> Any:
        """Runs fn on every item and returns the results as a numpy array, in order.
        One array per argument (or one structured array of the argument records), any
        object with the buffer protocol; nothing is copied in Python for one argument.
        ``out``: where the results go (else a new array). A failed task raises its
        TaskError (the first in index order) with ``results`` and ``failures`` attached;
        ``statuses=True`` returns ``(results, statuses)`` instead, a structured array of
        each task's code, detail and worker (code 0: success), and never raises for a
        task."""
        h = self._ready(fn)
        src, in_stride, n = self._records(fn, arrays)
        dst, out_stride = self._output(fn, n, out)
        st = np.zeros(n, STATUS_DTYPE) if statuses else None
        if n == 0:
            return (dst, st) if statuses else dst
        job = C.c_void_p()
        rc = lib.cpool_map_start(h, fn.id, src.ctypes.data, in_stride, None if dst is None else dst.ctypes.data,
                                 out_stride, n, chunk_size or 0, None if st is None else st.ctypes.data,
                                 C.byref(job))
        if rc:
            raise call_error(rc, f"mapping {fn.name}")
        try:
            rc = _wait(job)
            failures = [] if rc == 0 or statuses else _failures(job)
        finally:
            lib.cpool_job_free(job)
        if statuses:
            return dst, st
        if failures:
            first = failures[0]
            first.results, first.failures = dst, failures
            raise first
        return dst

    def _one_task(self, fn: Function, args: Sequence[Any]) -> Tuple[np.ndarray, Optional[np.ndarray], Any, int]:
        """One task's argument record and result buffer, and the pointer and size of
        the latter as the core takes them."""
        sig = fn.signature
        if len(args) != len(sig.args):
            raise TypeError(f"{fn.name} takes {len(sig.args)} arguments, got {len(args)}")
        rec = np.zeros(1, sig.record)
        for i, a in enumerate(args):
            rec[f"a{i}"] = a
        out = np.zeros(1, sig.result) if sig.result is not None else None
        return rec, out, None if out is None else out.ctypes.data, 0 if out is None else out.itemsize

    def apply(self, fn: Function, *args: Any, timeout: Optional[float] = None) -> Any:
        """Runs fn(*args) in a worker and returns its result (a numpy scalar, None for
        void); raises TaskError when the task fails."""
        h = self._ready(fn)
        rec, out, out_ptr, out_bytes = self._one_task(fn, args)
        st = _core.Status()
        rc = lib.cpool_apply(h, fn.id, rec.ctypes.data, rec.itemsize, out_ptr, out_bytes, _ns(timeout), C.byref(st))
        if rc and st.code == 0:
            raise call_error(rc, f"applying {fn.name}")
        if st.code:
            raise task_error(st.code, st.detail, st.worker, 0)
        return None if out is None else out[0]

    def submit(self, fn: Function, *args: Any, timeout: Optional[float] = None) -> cf.Future:
        """Runs fn(*args) in a worker without waiting: a ``concurrent.futures.Future``
        whose result is fn's (or whose exception is the TaskError). ``cancel()`` stops
        it even while it runs (its worker is killed and replaced)."""
        h = self._ready(fn)
        rec, out, out_ptr, out_bytes = self._one_task(fn, args)
        job = C.c_void_p()
        rc = lib.cpool_submit(h, fn.id, rec.ctypes.data, rec.itemsize, out_ptr, out_bytes, _ns(timeout), C.byref(job))
        if rc:
            raise call_error(rc, f"submitting {fn.name}")
        with self._lock:
            if self._waiter is None:
                self._waiter = _Waiter(h)
            waiter = self._waiter
        return waiter.watch(job, out)


def _wait(job: C.c_void_p) -> int:
    """Waits for a job in slices, so that a KeyboardInterrupt reaches the caller; on one
    the job is cancelled (its running tasks' workers killed) before it propagates."""
    try:
        while True:
            rc = lib.cpool_job_wait(job, _WAIT_SLICE_NS)
            if rc != -_core.ETIMEDOUT:
                return rc
    except BaseException:
        lib.cpool_job_cancel(job)
        lib.cpool_job_wait(job, 0)
        raise


def _failures(job: C.c_void_p) -> list:
    n = lib.cpool_job_failures(job, None, None, 0)
    if n <= 0:
        return []
    idx = np.zeros(n, np.uintp)
    st = np.zeros(n, STATUS_DTYPE)
    got = lib.cpool_job_failures(job, idx.ctypes.data, st.ctypes.data, n)
    errors = [task_error(int(s["code"]), int(s["detail"]), int(s["worker"]), int(i))
              for i, s in zip(idx[:got], st[:got])]
    return sorted(errors, key=lambda e: e.index)


class _Future(cf.Future):
    """A future whose cancel() also stops the running task."""

    def __init__(self, job: C.c_void_p):
        super().__init__()
        self._job = job

    def cancel(self) -> bool:
        if not super().cancel():
            return False
        lib.cpool_job_cancel(self._job)
        return True


class _Waiter:
    """One thread per pool that waits for whichever submitted task ends first
    (cpool_job_wait_any, which releases the GIL) and completes its future."""

    def __init__(self, handle: C.c_void_p):
        self._h = handle
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._jobs: list = []  # (job, out, future)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="swiftpool-waiter", daemon=True)
        self._thread.start()

    def watch(self, job: C.c_void_p, out: Optional[np.ndarray]) -> cf.Future:
        future = _Future(job)
        with self._lock:
            self._jobs.append((job, out, future))
            self._changed.notify()
        lib.cpool_interrupt_waits(self._h)
        return future

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._changed.notify()
            jobs = list(self._jobs)
        for job, _, _ in jobs:
            lib.cpool_job_cancel(job)
        lib.cpool_interrupt_waits(self._h)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._jobs and not self._stopping:
                    self._changed.wait()
                if not self._jobs:
                    return
                jobs = list(self._jobs)
            arr = (C.c_void_p * len(jobs))(*[j for j, _, _ in jobs])
            i = lib.cpool_job_wait_any(arr, len(jobs), _WAIT_SLICE_NS)
            if i < 0:
                continue  # interrupted (a new job, or stop) or a slice ended
            job, out, future = jobs[i]
            with self._lock:
                self._jobs.pop(i)
            st = _core.Status()
            lib.cpool_job_status(job, C.byref(st))
            lib.cpool_job_free(job)
            if future.cancelled() or not future.set_running_or_notify_cancel():
                continue
            if st.code:
                future.set_exception(task_error(st.code, st.detail, st.worker, 0))
            else:
                future.set_result(None if out is None else out[0])
