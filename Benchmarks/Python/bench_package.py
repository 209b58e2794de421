"""The Python package's rows: a libm function over numpy arrays through swiftpool, and
the same work on multiprocessing.Pool and ProcessPoolExecutor, in one run on the same
arrays. Lines tagged `swiftpool:` go to SwiftPool's figures, the others to the Python
pools' (scripts/bench splits them). Every run's results are checked.

erf: math.erf / libm's erf over 2,000,000 float64 from numpy.
atan2: math.atan2 / libm's atan2 over 1,000,000 pairs from two numpy arrays.
The Python pools get the arrays as lists of Python floats (`.tolist()`, inside the
timing: what a user does; mapping over the numpy array itself pickles a numpy scalar
per item and runs ~10x slower).
"""
import argparse
import concurrent.futures as cf
import math
import multiprocessing as mp
import sys
import time

import numpy as np

import swiftpool

WORKERS = 2


def report(tag, name, values, unit):
    print(f"{tag}{name}\t{unit}\t" + ",".join(f"{v:.6g}" for v in values), flush=True)


def chunk(n):
    return max(1, n // (WORKERS * 4))  # multiprocessing's own default


def measure(run, check, n, runs):
    check(run())  # warm-up, checked
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = run()
        rates.append(n / (time.perf_counter() - t0))
        check(out)
    return rates


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    runs = max(3, a.runs if not a.quick else 3)
    print("[Python package] erf over numpy, atan2 over pairs...", file=sys.stderr)
    x = np.linspace(-3, 3, 2_000_000)
    u, v = np.linspace(-1, 1, 1_000_000), np.linspace(2, -2, 1_000_000)
    want_erf = np.array([math.erf(t) for t in x])
    want_atan2 = np.array([math.atan2(p, q) for p, q in zip(u.tolist(), v.tolist())])

    def exact(want):
        def check(out):
            assert np.array_equal(np.asarray(out, dtype=np.float64), want)
        return check

    with swiftpool.Pool(WORKERS) as pool:
        erf = pool.register_symbol("erf", "double(double)", "libm.so.6")
        atan2 = pool.register_symbol("atan2", "double(double,double)", "libm.so.6")
        report("swiftpool:", "erf_swiftpool_py", measure(lambda: pool.map(erf, x), exact(want_erf), len(x), runs),
               "tasks/s")
        report("swiftpool:", "atan2_swiftpool_py",
               measure(lambda: pool.map(atan2, u, v), exact(want_atan2), len(u), runs), "tasks/s")

    with mp.Pool(WORKERS) as pool:
        report("", "erf_multiprocessing",
               measure(lambda: pool.map(math.erf, x.tolist(), chunksize=chunk(len(x))), exact(want_erf), len(x), runs),
               "tasks/s")
        report("", "atan2_multiprocessing",
               measure(lambda: pool.starmap(math.atan2, zip(u.tolist(), v.tolist()), chunksize=chunk(len(u))),
                       exact(want_atan2),
                       len(u), runs), "tasks/s")
    with cf.ProcessPoolExecutor(WORKERS) as ex:
        report("", "erf_ProcessPoolExecutor",
               measure(lambda: list(ex.map(math.erf, x.tolist(), chunksize=chunk(len(x)))), exact(want_erf), len(x),
                       runs),
               "tasks/s")
        report("", "atan2_ProcessPoolExecutor",
               measure(lambda: list(ex.map(math.atan2, u.tolist(), v.tolist(), chunksize=chunk(len(u)))),
                       exact(want_atan2), len(u),
                       runs), "tasks/s")


if __name__ == "__main__":
    mp.set_start_method("fork")
    main()
