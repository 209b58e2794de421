"""The C API of libcpoolcore, through ctypes: its structs, its functions, and where the
library is. Everything else in the package builds on this module only."""
from __future__ import annotations

import ctypes as C
import ctypes.util
import glob
import os
import subprocess
from pathlib import Path

from ._structs import Options, Status, WorkerStats  # noqa: F401 (the C structs)

# Error codes (include/cpool.h).
E_CLOSED = -10001
E_UNKNOWN_FUNCTION = -10002
E_SIGNATURE = -10003
E_TOO_LARGE = -10004
E_EXISTS = -10005
E_SYMBOL = -10006
E_CRASHED = -10007
E_TASK_TIMEOUT = -10008
E_CANCELLED = -10009
E_TASK_FAILED = -10010
E_FUNCTION_ERROR = -10011
E_WORKER_INIT = -10012
E_NOT_IN_WORKER = -10013
E_SIZE = -10014
E_FULL = -10015
DETAIL_UNKNOWN = -1
EINTR = 4
ETIMEDOUT = 110


def _candidates():
    """Where libcpoolcore may be: $SWIFTPOOL_LIBRARY, inside this package (a pip install
    builds it there), pkg-config's libdir, then the loader's search path."""
    env = os.environ.get("SWIFTPOOL_LIBRARY")
    if env:
        yield env
    here = Path(__file__).resolve().parent
    for pattern in ("lib*/libcpoolcore.so*", "libcpoolcore.so*"):
        yield from sorted(glob.glob(str(here / pattern)))
    try:
        libdir = subprocess.run(["pkg-config", "--variable=libdir", "cpoolcore"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        if libdir:
            yield from sorted(glob.glob(os.path.join(libdir, "libcpoolcore.so*")))
    except (OSError, subprocess.SubprocessError):
        pass
    found = ctypes.util.find_library("cpoolcore")
    if found:
        yield found


def _load() -> C.CDLL:
    tried = []
    for path in _candidates():
        try:
            lib = C.CDLL(path)  # CDLL releases the GIL around every call
        except OSError as e:
            tried.append(f"{path}: {e}")
            continue
        return _declare(lib)
    raise ImportError("libcpoolcore not found (set SWIFTPOOL_LIBRARY, or install the package with pip "
                      "from the repository's python/ folder); tried: " + "; ".join(tried or ["nothing"]))


def _declare(lib: C.CDLL) -> C.CDLL:
    vp, sz, u32, u64, i32 = C.c_void_p, C.c_size_t, C.c_uint32, C.c_uint64, C.c_int32
    sig = {
        "cpool_strerror": ([C.c_int], C.c_char_p),
        "cpool_options_init": ([C.POINTER(Options)], C.c_int),
        "cpool_create": ([C.POINTER(Options), C.POINTER(vp)], C.c_int),
        "cpool_close": ([vp], C.c_int),
        "cpool_terminate": ([vp], C.c_int),
        "cpool_join": ([vp, u64], C.c_int),
        "cpool_destroy": ([vp], None),
        "cpool_stop_workers": ([vp, u64], C.c_int),
        "cpool_start_workers": ([vp], C.c_int),
        "cpool_register": ([vp, C.c_char_p, C.c_char_p, vp, u32], i32),
        "cpool_register_symbol": ([vp, C.c_char_p, C.c_char_p, C.c_char_p, C.c_char_p, u32], i32),
        "cpool_function_sizes": ([vp, i32, C.POINTER(sz), C.POINTER(sz)], C.c_int),
        "cpool_alloc": ([vp, sz], vp),
        "cpool_free": ([vp, vp], None),
        "cpool_apply": ([vp, i32, vp, sz, vp, sz, u64, C.POINTER(Status)], C.c_int),
        "cpool_submit": ([vp, i32, vp, sz, vp, sz, u64, C.POINTER(vp)], C.c_int),
        "cpool_map": ([vp, i32, vp, sz, vp, sz, sz, sz, vp], C.c_int),
        "cpool_map_start": ([vp, i32, vp, sz, vp, sz, sz, sz, vp, C.POINTER(vp)], C.c_int),
        "cpool_job_wait": ([vp, u64], C.c_int),
        "cpool_job_wait_any": ([C.POINTER(vp), sz, u64], C.c_int),
        "cpool_interrupt_waits": ([vp], C.c_int),
        "cpool_job_cancel": ([vp], C.c_int),
        "cpool_job_status": ([vp, C.POINTER(Status)], C.c_int),
        "cpool_job_output": ([vp, sz, C.POINTER(vp), C.POINTER(sz)], C.c_int),
        "cpool_job_free": ([vp], None),
        "cpool_job_failures": ([vp, vp, vp, sz], C.c_int64),
        "cpool_worker_count": ([vp], C.c_int),
        "cpool_worker_stats": ([vp, u32, C.POINTER(WorkerStats)], C.c_int),
        "cpool_cpu_count": ([], C.c_int),
    }
    for name, (args, res) in sig.items():
        f = getattr(lib, name)
        f.argtypes = args
        f.restype = res
    opts = Options()
    lib.cpool_options_init(C.byref(opts))
    if opts.struct_bytes < C.sizeof(Options):
        raise ImportError(f"libcpoolcore is older than this package (its options have {opts.struct_bytes} "
                          f"bytes, the package's {C.sizeof(Options)})")
    return lib


lib = _load()


def strerror(code: int) -> str:
    return lib.cpool_strerror(code).decode()
