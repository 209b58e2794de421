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


def spin(us):
    end = time.perf_counter() + us / 1e6
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def slow_init():
    time.sleep(0.2)


def cpu(label, map_fn, runs, quick):
    for name, count, us in (("cpu_5ms", 64, 5000), ("cpu_50us", 4000 if quick else 20000, 50)):
        map_fn([us] * 8)
        eff = []
        for _ in range(max(1, runs // 2)):
            t0 = time.perf_counter()
            map_fn([us] * count)
            wall = time.perf_counter() - t0
            eff.append(count * us / 1e6 / (wall * WORKERS))
        report(f"{name}_{label}", eff, "efficiency")


def keepalive_and_startup(runs):
    small = list(range(1000))
    t0 = time.perf_counter()
    for _ in range(10):
        with mp.Pool(WORKERS, initializer=slow_init) as pool:
            pool.map(square, small)
    report("keepalive_off_multiprocessing", [(time.perf_counter() - t0) * 1000], "ms")
    t0 = time.perf_counter()
    with mp.Pool(WORKERS, initializer=slow_init) as pool:
        for _ in range(10):
            pool.map(square, small)
    report("keepalive_on_multiprocessing", [(time.perf_counter() - t0) * 1000], "ms")
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        pool = mp.Pool(WORKERS)
        pool.apply(square, (1,))
        pool.close()
        pool.join()
        ms.append((time.perf_counter() - t0) * 1000)
    report("startup_multiprocessing", ms, "ms")
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        with cf.ProcessPoolExecutor(WORKERS) as ex:
            ex.submit(square, 1).result()
        ms.append((time.perf_counter() - t0) * 1000)
    report("startup_ProcessPoolExecutor", ms, "ms")


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
        cpu("multiprocessing", lambda xs: pool.map(spin, xs, chunksize=1), a.runs, a.quick)

    with cf.ProcessPoolExecutor(WORKERS) as ex:
        tiny("ProcessPoolExecutor", lambda xs: list(ex.map(square, xs, chunksize=best_chunk(len(xs)))), n, a.runs)
        latency("ProcessPoolExecutor", lambda i: ex.submit(identity, i).result(), lat_calls, 0, a.runs)
        latency("ProcessPoolExecutor", lambda i: ex.submit(identity, i).result(), idle_calls, 0.001, idle_runs)
        cpu("ProcessPoolExecutor", lambda xs: list(ex.map(spin, xs, chunksize=1)), a.runs, a.quick)

    keepalive_and_startup(a.runs)

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
