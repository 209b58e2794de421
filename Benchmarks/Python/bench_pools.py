"""The same workloads as Benchmarks/C/bench_core.c on the Python pools a user would
otherwise pick, printed in the same format ("name<TAB>unit<TAB>run,run,...") so that
Benchmarks/report.py can take every median the same way and set them side by side.
Where a pool's chunk size matters (cpu and the schedule workloads: pareto, one-slow,
skew), each pool runs with its default, with chunks of 1 and with multiprocessing's
automatic size, and its best one is reported with a "#setting" line naming it.

Workloads (see docs/benchmarks.md): tiny (map x*x over 1,000,000 ints, each pool's best
chunking), latency (sequential apply round trips on a warm pool), idle-latency (the
same with 1 ms of caller idleness between calls). 2 workers.
"""
import argparse
import dataclasses
import os
import signal
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
    print(f"{name}\t{unit}\t" + ",".join(f"{v:.6g}" for v in values), flush=True)


def setting(name, text):
    print(f"#setting\t{name}\t{text}", flush=True)


def pct(samples, q):
    s = sorted(samples)
    return s[int(q * (len(s) - 1) + 0.5)]


def best_chunk(n):
    # multiprocessing's own default: about four chunks per worker.
    return max(1, n // (WORKERS * 4))


def tiny(label, map_fn, n, runs):
    xs = list(range(n))
    want = [x * x for x in xs]
    assert map_fn(xs) == want  # warm-up
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = map_fn(xs)
        rates.append(n / (time.perf_counter() - t0))
        assert out == want  # every run's every result, outside the timing
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
    n = 1  # at least one: a run preempted past its end still ran (results are checked > 0)
    while time.perf_counter() < end:
        n += 1
    return n


def slow_init():
    time.sleep(0.2)


# The chunk sizes a user of each pool could pick: the pool's default (None), chunks
# of 1, and multiprocessing's automatic size (about four chunks a worker).
CHUNKINGS = (("default", lambda n: None), ("chunks of 1", lambda n: 1), ("automatic", best_chunk))


def best_of_chunkings(name, label, map_fn, count, measure, runs, higher):
    """Runs measure(map_fn with each chunking) and reports the best chunking's runs."""
    best = None
    for text, size in CHUNKINGS:
        values = [measure(lambda xs: map_fn(xs, size(count))) for _ in range(runs)]
        med = statistics.median(values)
        if best is None or (med > best[0] if higher else med < best[0]):
            best = (med, values, text)
    report(f"{name}_{label}", best[1], "efficiency" if higher else "×ideal")
    setting(f"{name}_{label}", f"best of default / chunks of 1 / automatic: {best[2]}")


def cpu(label, map_fn, runs, quick):
    """map_fn(xs, chunksize) -> results."""
    for name, count, us in (("cpu_5ms", 64, 5000), ("cpu_50us", 4000 if quick else 20000, 50)):
        map_fn([us] * 8, None)

        def efficiency(run):
            t0 = time.perf_counter()
            out = run([us] * count)
            wall = time.perf_counter() - t0
            assert len(out) == count and all(v > 0 for v in out)
            return count * us / 1e6 / (wall * WORKERS)
        best_of_chunkings(name, label, map_fn, count, efficiency, runs, True)


def keepalive_and_startup(runs):
    small = list(range(1000))
    want = [x * x for x in small]
    off, on = [], []
    for _ in range(3):  # each run takes seconds: three runs, as SwiftPool's
        t0 = time.perf_counter()
        for _ in range(10):
            with mp.Pool(WORKERS, initializer=slow_init) as pool:
                assert pool.map(square, small) == want
        off.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        with mp.Pool(WORKERS, initializer=slow_init) as pool:
            for _ in range(10):
                assert pool.map(square, small) == want
        on.append((time.perf_counter() - t0) * 1000)
    report("keepalive_off_multiprocessing", off, "ms")
    report("keepalive_on_multiprocessing", on, "ms")
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        pool = mp.Pool(WORKERS)
        assert pool.apply(square, (3,)) == 9
        pool.close()
        pool.join()
        ms.append((time.perf_counter() - t0) * 1000)
    report("startup_multiprocessing", ms, "ms")
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        with cf.ProcessPoolExecutor(WORKERS) as ex:
            assert ex.submit(square, 3).result() == 9
        ms.append((time.perf_counter() - t0) * 1000)
    report("startup_ProcessPoolExecutor", ms, "ms")


def start_methods(n, runs):
    """multiprocessing's spawn context: start-up, tiny; ThreadPool on tasks that sleep 1 ms."""
    spawn = mp.get_context("spawn")
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        pool = spawn.Pool(WORKERS)
        assert pool.apply(square, (3,)) == 9
        pool.close()
        pool.join()
        ms.append((time.perf_counter() - t0) * 1000)
    report("startup_spawn_multiprocessing", ms, "ms")
    with spawn.Pool(WORKERS) as pool:
        tiny("spawn_multiprocessing", lambda xs: pool.map(square, xs, chunksize=best_chunk(len(xs))), n, runs)
    from multiprocessing.pool import ThreadPool
    threads, tasks = 16, 800
    with ThreadPool(threads) as pool:
        rates = []
        for _ in range(runs):
            t0 = time.perf_counter()
            assert pool.map(sleep_1ms, range(tasks), chunksize=1) == list(range(tasks))
            rates.append(tasks / (time.perf_counter() - t0))
        report("sleep_ThreadPool", rates, "tasks/s")


def sleep_1ms(x):
    time.sleep(0.001)
    return x


def scale(a):
    return a * 2


def payload(label, map_fn, runs):
    import numpy as np
    arrays = [np.arange(131072, dtype=np.float64) + i for i in range(64)]
    map_fn(arrays[:4])
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = map_fn(arrays)
        rates.append(2 * 64 / (time.perf_counter() - t0))
        assert all(np.array_equal(o, a * 2) for o, a in zip(out, arrays))
    report(f"payload_{label}", rates, "MiB/s")


def upper(s):
    return s.upper()


@dataclasses.dataclass
class Point:
    x: float
    y: float
    name: str


def move(p):
    return Point(p.x * 2, p.y + 1, p.name.upper())


def doubles(n):
    return [0.5 * i for i in range(n)]


def flip_first(b):
    out = bytearray(b)
    out[0] ^= 1
    return bytes(out)


def values(label, map_fn, runs):
    """The value workloads: strings, dataclasses, lists of floats out, byte buffers."""
    words = [f"word-{i}-é" for i in range(200_000)]
    points = [Point(i * 0.5, i * 0.25, f"p{i}") for i in range(200_000)]
    for name, xs, fn, check, unit, per in (
        ("strings", words, upper, lambda out: out[-1] == words[-1].upper(), "tasks/s", len(words)),
        ("structs", points, move, lambda out: out[-1] == move(points[-1]), "tasks/s", len(points)),
        ("arrays_out", [1000] * 2000, doubles, lambda out: len(out[-1]) == 1000 and out[-1][999] == 499.5,
         "tasks/s", 2000),
    ):
        map_fn(fn, xs[:1000], None)
        rates = []
        for _ in range(runs):
            t0 = time.perf_counter()
            out = map_fn(fn, xs, best_chunk(len(xs)))
            rates.append(per / (time.perf_counter() - t0))
            assert len(out) == len(xs) and check(out)
        report(f"{name}_{label}", rates, unit)
    buffers = [bytes([i]) * (1 << 20) for i in range(64)]
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = map_fn(flip_first, buffers, 1)
        rates.append(2 * 64 * (1 << 20) / (time.perf_counter() - t0) / 1e9)
        assert all(o[0] == b[0] ^ 1 and len(o) == len(b) for o, b in zip(out, buffers))
    report(f"bytes_{label}", rates, "GB/s")


_shared = None


def _attach(name, count):
    global _shared
    from multiprocessing import shared_memory
    import numpy as np
    shm = shared_memory.SharedMemory(name=name)
    _shared = (shm, np.ndarray((count,), dtype=np.float64, buffer=shm.buf))


def sum_slice(args):
    start, stop = args
    return float(_shared[1][start:stop].sum())


def shared(runs, quick):
    from multiprocessing import shared_memory
    import numpy as np
    count = (1 << 24) if quick else (1 << 27)
    shm = shared_memory.SharedMemory(create=True, size=count * 8)
    try:
        arr = np.ndarray((count,), dtype=np.float64, buffer=shm.buf)
        arr[:] = 1.0
        per = count // 16
        slices = [(s * per, (s + 1) * per) for s in range(16)]
        with mp.Pool(WORKERS, initializer=_attach, initargs=(shm.name, count)) as pool:
            pool.map(sum_slice, slices)  # warm: every slice faulted in, as SwiftPool's are
            ms = []
            for _ in range(runs):
                t0 = time.perf_counter()
                total = sum(pool.map(sum_slice, slices, chunksize=1))
                ms.append((time.perf_counter() - t0) * 1000)
                assert total == per * 16
        report(("shared_128MiB" if quick else "shared") + "_multiprocessing", ms, "ms")
    finally:
        del arr
        shm.close()
        shm.unlink()


def lcg(seed):
    return (seed * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)


def schedule_durations(kind):
    """Task durations (us) of each schedule workload: the same generator and seed as
    Benchmarks/C and Benchmarks/Swift."""
    seed, out = 42, []
    if kind == "pareto":  # 5,000 tasks, Pareto alpha 1.5 from 20 us, capped at 20 ms
        for _ in range(5000):
            seed = lcg(seed)
            u = ((seed >> 11) + 0.5) / 9007199254740992.0
            out.append(min(int(20.0 * u ** (-1.0 / 1.5)), 20000))
    elif kind == "one_slow":  # 1,000 tasks: the first 300 ms, the others 200 us
        out = [300000] + [200] * 999
    else:  # skew: 2,000 tasks, 2% of 10 ms, the others 10 us
        for _ in range(2000):
            seed = lcg(seed)
            out.append(10000 if (seed >> 33) % 50 == 0 else 10)
    return out


def schedules(label, map_fn, runs):
    """Makespan against the ideal (the larger of the work shared evenly and the longest
    task) for each schedule workload; map_fn(xs, chunksize) -> results."""
    for kind in ("pareto", "one_slow", "skew"):
        d = schedule_durations(kind)
        ideal = max(sum(d) / WORKERS, max(d)) / 1e6

        def ratio(run):
            t0 = time.perf_counter()
            out = run(d)
            r = (time.perf_counter() - t0) / ideal
            assert len(out) == len(d) and all(v > 0 for v in out)
            return r
        best_of_chunkings(kind, label, map_fn, len(d), ratio, runs, False)


def crash_task(x):
    if x == 500:
        os.kill(os.getpid(), signal.SIGSEGV)
    return x * x


def behaviour(workload, pool, text):
    print(f"#behaviour\t{workload}\t{pool}\t{text}", flush=True)


def crash_rows():
    t0 = time.perf_counter()
    with mp.Pool(WORKERS) as pool:
        r = pool.map_async(crash_task, range(1000), chunksize=1)
        try:
            r.get(timeout=10)
            behaviour("crash", "multiprocessing", "returned normally (unexpected)")
        except mp.TimeoutError:
            behaviour("crash", "multiprocessing",
                      "the map never returns (gave up after 10 s); no result of the 1,000 comes back")
        pool.terminate()
    with cf.ProcessPoolExecutor(WORKERS) as ex:
        t0 = time.perf_counter()
        try:
            list(ex.map(crash_task, range(1000)))
        except Exception as e:
            ms = (time.perf_counter() - t0) * 1000
            try:
                ex.submit(crash_task, 1).result()
                nxt = "works"
            except Exception:
                nxt = "fails (the executor is broken)"
            behaviour("crash", "ProcessPoolExecutor",
                      f"raises {type(e).__name__} after {ms:.0f} ms; the other results are lost; next call {nxt}")


def orphan_child():
    with mp.Pool(WORKERS) as pool:
        pool.map(square, range(10))
        print(" ".join(str(p.pid) for p in pool._pool), flush=True)
        time.sleep(600)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def orphan_row(label, argv):
    import subprocess
    before = set(os.listdir("/dev/shm"))
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    pids = [int(x) for x in child.stdout.readline().split()]
    child.kill()
    child.wait()
    time.sleep(1.0)
    left = [p for p in pids if alive(p)]
    leaked = set(os.listdir("/dev/shm")) - before
    for p in left:
        os.kill(p, signal.SIGKILL)
    behaviour("orphans", label, f"{len(left)} of {len(pids)} workers alive 1 s after SIGKILL of the parent; "
              f"{len(leaked)} objects left in /dev/shm")


def trio_latency(calls, runs):
    try:
        import trio
        import trio_parallel
    except ImportError:
        print("trio_parallel not installed: skipped", file=sys.stderr)
        return

    async def run():
        for i in range(50):
            await trio_parallel.run_sync(identity, i)
        p50, p99 = [], []
        for _ in range(runs):
            lat = []
            for i in range(calls):
                t0 = time.perf_counter()
                r = await trio_parallel.run_sync(identity, i)
                lat.append((time.perf_counter() - t0) * 1e6)
                assert r == i
            p50.append(pct(lat, 0.5))
            p99.append(pct(lat, 0.99))
        report("latency_p50_trio_parallel", p50, "us")
        report("latency_p99_trio_parallel", p99, "us")

    trio.run(run)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--orphan-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--swiftpool-orphan-child", help="bench_core path, for the orphans row")
    a = ap.parse_args()
    a.runs = max(3, a.runs)  # a median needs at least three
    if a.orphan_child:
        orphan_child()
        return
    print("[Python pools] tiny, latency, idle-latency, cpu, payload, values, pareto, one-slow, skew, shared, keepalive, startup, "
          "crash, orphans...", file=sys.stderr)
    n = 1_000_000
    lat_calls = 2000 if a.quick else 10000
    idle_calls, idle_runs = (300, 1) if a.quick else (2000, 3)

    with mp.Pool(WORKERS) as pool:
        tiny("multiprocessing", lambda xs: pool.map(square, xs, chunksize=best_chunk(len(xs))), n, a.runs)
        try:
            from tqdm import tqdm
        except ImportError:
            print("tqdm not installed: no progress row for multiprocessing", file=sys.stderr)
        else:
            # observed the usual way: tqdm over imap (drawn to /dev/null)
            with open(os.devnull, "w") as devnull:
                tiny("progress_multiprocessing",
                     lambda xs: list(tqdm(pool.imap(square, xs, chunksize=best_chunk(len(xs))), total=len(xs),
                                          file=devnull)), n, a.runs)
        latency("multiprocessing", lambda i: pool.apply(identity, (i,)), lat_calls, 0, a.runs)
        latency("multiprocessing", lambda i: pool.apply(identity, (i,)), idle_calls, 0.001, idle_runs)
        cpu("multiprocessing", lambda xs, c: pool.map(spin, xs, chunksize=c), a.runs, a.quick)
        payload("multiprocessing", lambda xs: pool.map(scale, xs, chunksize=1), a.runs)
        values("multiprocessing", lambda fn, xs, c: pool.map(fn, xs, chunksize=c), a.runs)
        schedules("multiprocessing", lambda xs, c: pool.map(spin, xs, chunksize=c), a.runs)

    with cf.ProcessPoolExecutor(WORKERS) as ex:
        tiny("ProcessPoolExecutor", lambda xs: list(ex.map(square, xs, chunksize=best_chunk(len(xs)))), n, a.runs)
        latency("ProcessPoolExecutor", lambda i: ex.submit(identity, i).result(), lat_calls, 0, a.runs)
        latency("ProcessPoolExecutor", lambda i: ex.submit(identity, i).result(), idle_calls, 0.001, idle_runs)
        cpu("ProcessPoolExecutor", lambda xs, c: list(ex.map(spin, xs, chunksize=c or 1)), a.runs, a.quick)
        payload("ProcessPoolExecutor", lambda xs: list(ex.map(scale, xs, chunksize=1)), a.runs)
        values("ProcessPoolExecutor", lambda fn, xs, c: list(ex.map(fn, xs, chunksize=c or 1)), a.runs)
        schedules("ProcessPoolExecutor", lambda xs, c: list(ex.map(spin, xs, chunksize=c or 1)), a.runs)

    keepalive_and_startup(a.runs)
    start_methods(n, a.runs)
    shared(a.runs, a.quick)
    trio_latency(lat_calls, a.runs)
    crash_rows()
    orphan_row("multiprocessing", [sys.executable, os.path.abspath(__file__), "--orphan-child"])
    if a.swiftpool_orphan_child:
        orphan_row("SwiftPool (C API)", [a.swiftpool_orphan_child, "--orphan-child"])

    try:
        from mpire import WorkerPool
    except ImportError:
        print("mpire not installed: skipped", file=sys.stderr)
    else:
        with WorkerPool(n_jobs=WORKERS, keep_alive=True) as pool:
            tiny("mpire", lambda xs: pool.map(square, xs, chunk_size=best_chunk(len(xs))), n, a.runs)
            latency("mpire", lambda i: pool.apply(identity, (i,)), lat_calls, 0, a.runs)
            # observed: its progress bar (tqdm, drawn to /dev/null) ...
            with open(os.devnull, "w") as devnull:
                tiny("progress_mpire", lambda xs: pool.map(square, xs, chunk_size=best_chunk(len(xs)),
                                                           progress_bar=True,
                                                           progress_bar_options={"file": devnull}), n, a.runs)
        # ... and its insights
        with WorkerPool(n_jobs=WORKERS, keep_alive=True, enable_insights=True) as pool:
            tiny("insights_mpire", lambda xs: pool.map(square, xs, chunk_size=best_chunk(len(xs))), n, a.runs)

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
