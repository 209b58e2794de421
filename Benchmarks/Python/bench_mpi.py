"""mpi4py.futures' rows of the benchmark, beside SwiftPoolMPI's: run by scripts/bench as
`mpirun -np 3 python -m mpi4py.futures bench_mpi.py` (rank 0 drives, 2 ranks are the
workers of the MPIPoolExecutor). tiny: x*x over 1M ints with the best chunksize
(multiprocessing's rule, about four chunks per worker); cpu: 96 tasks of 5 ms busy work.
`--crash`: a map whose task 500 kills its worker with SIGSEGV (scripts/bench reports
what happens to the job)."""
import argparse
import os
import signal
import time

from mpi4py.futures import MPIPoolExecutor


def square(x):
    return x * x


def spin(us):
    end = time.perf_counter() + us / 1e6
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def crash_task(x):
    if x == 500:
        os.kill(os.getpid(), signal.SIGSEGV)
    return x * x


def report(name, values, unit):
    print(f"{name}\t{unit}\t" + ",".join(f"{v:.6g}" for v in values), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--crash", action="store_true")
    a = p.parse_args()
    with MPIPoolExecutor() as ex:
        workers = ex.num_workers
        if a.crash:
            start = time.perf_counter()
            results = list(ex.map(crash_task, range(1000)))
            print(f"results: {len(results)} in {time.perf_counter() - start:.2f} s", flush=True)
            return
        n = 1_000_000
        chunk = max(1, -(-n // (4 * workers)))
        list(ex.map(square, range(n), chunksize=chunk))  # untimed, as SwiftPool's
        tiny = []
        for _ in range(a.runs):
            start = time.perf_counter()
            ys = list(ex.map(square, range(n), chunksize=chunk))
            tiny.append(n / (time.perf_counter() - start))
            assert ys[-1] == (n - 1) * (n - 1)
        report("tiny_mpi_mpi4py", tiny, "tasks/s")
        tasks = 48 if a.quick else 96
        cpu = []
        for _ in range(a.runs):
            start = time.perf_counter()
            ys = list(ex.map(spin, [5000] * tasks, chunksize=1))
            cpu.append(tasks / (time.perf_counter() - start))
            assert len(ys) == tasks
        report("cpu_mpi_mpi4py", cpu, "tasks/s")


if __name__ == "__main__":
    main()
