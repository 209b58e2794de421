"""swiftpool — a process pool for Linux that maps C functions over numpy arrays.

Tasks and results cross shared memory, not pipes: a map of a C function over millions
of doubles runs at tens of millions of items per second. A task that crashes or times
out fails alone, as an exception that names it; the other results are kept and the pool
goes on. Workers never outlive the interpreter, not even when it is killed.

>>> import numpy as np, swiftpool
>>> with swiftpool.Pool(2) as pool:
...     erf = pool.register_symbol("erf", "double(double)", "libm.so.6")
...     y = pool.map(erf, np.linspace(-2, 2, 1_000_000))
"""
from .errors import (PoolClosedError, PoolError, TaskCancelled, TaskCrashed, TaskError,
                     TaskTimeout, WorkerInitError)
from .pool import STATUS_DTYPE, Function, Pool

__all__ = ["Pool", "Function", "STATUS_DTYPE", "PoolError", "PoolClosedError", "WorkerInitError", "TaskError",
           "TaskCrashed", "TaskTimeout", "TaskCancelled"]
__version__ = "0.2.0"
