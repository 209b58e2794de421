"""The same workloads as Benchmarks/C/bench_core.c on the Python pools a user would
otherwise pick, printed in the same format ("name<TAB>median<TAB>min<TAB>max<TAB>unit")
so that Benchmarks/report.py can set them side by side.

Workloads (WORKLOADS.md): tiny (map x*x over 1,000,000 ints, each pool's best
chunking), latency (sequential apply round trips on a warm pool), idle-latency (the
same with 1 ms of caller idleness between calls). 2 workers.
"""
import argparse
import concurrent.futures as cf
import multiprocessing as mp
import statistics
import sys
import time

WORKERS = 2


def square(x):
    return x * x


def identity(x):
    return x


def report(name, values, unit):
    values = sorted(values)
    print(f"{name}\t{statistics.median(values):.6g}\t{values[0]:.6g}\t{values[-1]:.6g}\t{unit}", flush=True)


def pct(samples, q):
    s = sorted(samples)
    return s[int(q * (len(s) - 1) + 0.5)]


def best_chunk(n):
    # multiprocessing's own default: about four chunks per worker.
    return max(1, n // (WORKERS * 4))


def tiny(label, map_fn, n, runs):
    xs = list(range(n))
    out = map_fn(xs)  # warm-up
    assert out[-1] == (n - 1) * (n - 1)
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = map_fn(xs)
        rates.append(n / (time.perf_counter() - t0))
    report(f"tiny_{label}", rates, "tasks/s")


def latency(label, call, calls, idle_s, runs):
    for i in range(200):
        call(i)
    p50, p99 = [], []
    for _ in range(runs):
        lat = []
        for i in range(calls):
            if idle_s:
                time.sleep(idle_s)
            t0 = time.perf_counter()
            r = call(i)
            lat.append((time.perf_counter() - t0) * 1e6)
            assert r == i
        p50.append(pct(lat, 0.5))
        p99.append(pct(lat, 0.99))
    name = "idle_latency" if idle_s else "latency"
    report(f"{name}_p50_{label}", p50, "us")
    report(f"{name}_p99_{label}", p99, "us")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    n = 1_000_000
    lat_calls = 2000 if a.quick else 10000
    idle_calls, idle_runs = (300, 1) if a.quick else (2000, 3)

    with mp.Pool(WORKERS) as pool:
        tiny("multiprocessing", lambda xs: pool.map(square, xs, chunksize=best_chunk(len(xs))), n, a.runs)
        latency("multiprocessing", lambda i: pool.apply(identity, (i,)), lat_calls, 0, a.runs)
        latency("multiprocessing", lambda i: pool.apply(identity, (i,)), idle_calls, 0.001, idle_runs)

    with cf.ProcessPoolExecutor(WORKERS) as ex:
        tiny("ProcessPoolExecutor", lambda xs: list(ex.map(square, xs, chunksize=best_chunk(len(xs)))), n, a.runs)
        latency("ProcessPoolExecutor", lambda i: ex.submit(identity, i).result(), lat_calls, 0, a.runs)
        latency("ProcessPoolExecutor", lambda i: ex.submit(identity, i).result(), idle_calls, 0.001, idle_runs)

    try:
        from mpire import WorkerPool
    except ImportError:
        print("mpire not installed: skipped", file=sys.stderr)
    else:
        with WorkerPool(n_jobs=WORKERS, keep_alive=True) as pool:
            tiny("mpire", lambda xs: pool.map(square, xs, chunk_size=best_chunk(len(xs))), n, a.runs)
            latency("mpire", lambda i: pool.apply(identity, (i,)), lat_calls // 10, 0, a.runs)

    try:
        from loky import get_reusable_executor
    except ImportError:
        print("loky not installed: skipped", file=sys.stderr)
    else:
        ex = get_reusable_executor(max_workers=WORKERS)
        tiny("loky", lambda xs: list(ex.map(square, xs, chunksize=best_chunk(len(xs)))), n, a.runs)
        latency("loky", lambda i: ex.submit(identity, i).result(), lat_calls, 0, a.runs)
        ex.shutdown()


if __name__ == "__main__":
    mp.set_start_method("fork")
    main()
