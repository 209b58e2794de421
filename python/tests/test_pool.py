"""swiftpool's Python API: every call, every failure, bad input, and no worker left."""
import concurrent.futures as cf
import ctypes
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import swiftpool
from swiftpool import PoolClosedError, TaskCancelled, TaskCrashed, TaskError, TaskTimeout


@pytest.fixture
def pool():
    with swiftpool.Pool(2) as p:
        yield p


def test_map_a_libm_function_over_a_numpy_array_exactly(pool):
    erf = pool.register_symbol("erf", "double(double)", "libm.so.6")
    x = np.linspace(-3, 3, 2_000_000)
    y = pool.map(erf, x)
    assert y.dtype == np.float64 and y.shape == x.shape
    sample = np.arange(0, len(x), 997)
    assert all(y[i] == math.erf(x[i]) for i in sample)


def test_map_several_arrays_a_structured_array_and_out(pool, testlib):
    mix = pool.register_symbol("mix", "double(int32_t,double,int8_t)", testlib)
    a = np.arange(1000, dtype=np.int32)
    b = np.linspace(0, 1, 1000)
    c = (np.arange(1000) % 7).astype(np.int8)
    want = a * b + c
    assert np.array_equal(pool.map(mix, a, b, c), want)
    records = np.zeros(1000, mix.signature.record)
    records["a0"], records["a1"], records["a2"] = a, b, c
    out = np.empty(1000)
    assert pool.map(mix, records, out=out) is out
    assert np.array_equal(out, want)


def test_a_strided_view_is_read_in_place(pool):
    sqrt = pool.register_symbol("sqrt", "double(double)", "libm.so.6")
    x = np.arange(20.0) ** 2
    assert np.array_equal(pool.map(sqrt, x[::2]), np.arange(0, 20, 2.0))
    assert pool.map(sqrt, np.array([], dtype=np.float64)).shape == (0,)


def test_anything_with_the_buffer_protocol(pool):
    import array
    sqrt = pool.register_symbol("sqrt", "double(double)", "libm.so.6")
    assert list(pool.map(sqrt, array.array("d", [4.0, 9.0, 16.0]))) == [2.0, 3.0, 4.0]
    assert list(pool.map(sqrt, memoryview(np.array([25.0, 36.0])))) == [5.0, 6.0]


def test_apply_and_submit(pool, testlib):
    square = pool.register_symbol("square", "int64_t(int64_t)", testlib)
    assert pool.apply(square, 12) == 144
    futures = [pool.submit(square, i) for i in range(100)]
    assert [f.result(timeout=30) for f in futures] == [i * i for i in range(100)]
    done = list(cf.as_completed([pool.submit(square, 3), pool.submit(square, 4)], timeout=30))
    assert sorted(f.result() for f in done) == [9, 16]


def test_a_crash_fails_only_its_task(pool, testlib):
    crash = pool.register_symbol("crash_at", "int64_t(int64_t)", testlib)
    x = np.arange(1000, dtype=np.int64)
    with pytest.raises(TaskCrashed) as info:
        pool.map(crash, x)
    e = info.value  # the first failure in index order
    assert e.index == 500 and e.signal == signal.SIGSEGV and e.exit_status is None
    assert [f.index for f in e.failures] == [500, 600]
    assert e.failures[1].exit_status == 3 and e.failures[1].signal is None
    ok = (np.arange(1000) != 500) & (np.arange(1000) != 600)
    assert np.array_equal(e.results[ok], (x * x)[ok])

    results, statuses = pool.map(crash, x, statuses=True)
    assert list(np.nonzero(statuses["code"])[0]) == [500, 600]
    assert np.array_equal(results[ok], (x * x)[ok])
    with pytest.raises(TaskCrashed) as info:
        pool.apply(crash, 600)
    assert info.value.exit_status == 3 and info.value.index == 0
    assert pool.apply(crash, 7) == 49  # the pool goes on
    assert sum(w["crashes"] for w in pool.worker_stats()) >= 3


def test_a_task_past_its_timeout_is_killed(testlib):
    with swiftpool.Pool(2, task_timeout=0.3) as pool:
        nap = pool.register_symbol("sleep_ms", "double(double)", testlib)
        with pytest.raises(TaskTimeout) as info:
            pool.map(nap, np.array([1.0, 5000.0, 1.0]))
        assert info.value.index == 1 and info.value.results[2] == 1.0
        with pytest.raises(TaskTimeout):
            pool.apply(nap, 5000.0, timeout=0.1)
        assert pool.apply(nap, 1.0) == 1.0


def test_cancelling_a_future_stops_its_running_task(pool, testlib):
    nap = pool.register_symbol("sleep_ms", "double(double)", testlib)
    pid_of = pool.register_symbol("worker_pid", "int64_t(int64_t)", testlib)
    f = pool.submit(nap, 30_000.0)
    time.sleep(0.2)
    t0 = time.monotonic()
    assert f.cancel()
    with pytest.raises(cf.CancelledError):
        f.result(timeout=10)
    assert pool.apply(nap, 1.0) == 1.0 and time.monotonic() - t0 < 10
    assert pool.apply(pid_of, 0) > 0


def test_terminate_cancels_what_is_queued(testlib):
    pool = swiftpool.Pool(1)
    nap = pool.register_symbol("sleep_ms", "double(double)", testlib)
    futures = [pool.submit(nap, 2000.0) for _ in range(3)]
    time.sleep(0.1)
    pool.terminate()
    for f in futures:
        with pytest.raises(TaskCancelled):
            f.result(timeout=10)
    pool.join()
    with pytest.raises(PoolClosedError):
        pool.apply(nap, 1.0)


def test_bad_input_raises_before_anything_runs(pool, testlib):
    erf = pool.register_symbol("erf", "double(double)", "libm.so.6")
    with pytest.raises(TypeError, match="float32"):
        pool.map(erf, np.zeros(10, np.float32))
    with pytest.raises(ValueError, match="contiguous"):
        pool.map(erf, np.zeros(10)[::-1])
    with pytest.raises(ValueError, match="1-D"):
        pool.map(erf, np.zeros((2, 5)))
    with pytest.raises(TypeError, match="takes 1 argument"):
        pool.map(erf, np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="items"):
        pool.map(pool.register_symbol("atan2", "double(double,double)", "libm.so.6"), np.zeros(3), np.zeros(4))
    with pytest.raises(TypeError):
        pool.apply(erf)
    with pytest.raises(LookupError):
        pool.register_symbol("no_such_symbol", "double(double)", "libm.so.6")
    with pytest.raises(LookupError):
        pool.register_symbol("erf", "double(double)", "libnope.so.9", name="erf_elsewhere")
    with pytest.raises(ValueError, match="unknown type"):
        pool.register_symbol("erf", "quux(double)", "libm.so.6")
    with pytest.raises(ValueError, match="bytes form"):
        pool.register_symbol("erf", "void(const void*,size_t,void*,size_t)", "libm.so.6")
    with pytest.raises(ValueError, match="another function"):
        pool.register_symbol("cos", "double(double)", "libm.so.6", name="erf")
    assert pool.register_symbol("erf", "double(double)", "libm.so.6") is erf  # the same again
    with pytest.raises(TypeError, match="not a C function pointer"):
        pool.register(lambda x: x, "double(double)")
    with pytest.raises(ValueError, match="read-only"):
        out = np.zeros(3)
        out.flags.writeable = False
        pool.map(erf, np.zeros(3), out=out)
    other = swiftpool.Pool(1)
    with pytest.raises(ValueError, match="another pool"):
        other.map(erf, np.zeros(3))
    other.close()
    other.join()
    with pytest.raises(PoolClosedError):
        other.map(erf, np.zeros(3))
    assert np.array_equal(pool.map(erf, np.zeros(3)), np.zeros(3))  # nothing broken


def test_functions_from_ctypes_and_cffi_pointers(pool, testlib):
    libm = ctypes.CDLL("libm.so.6")
    cos = pool.register(libm.cos, "double(double)")
    assert np.allclose(pool.map(cos, np.array([0.0, math.pi])), [1.0, -1.0])
    square = pool.register(ctypes.CDLL(testlib).square, "int64_t(int64_t)", name="sq")
    assert pool.apply(square, 9) == 81
    cffi = pytest.importorskip("cffi")
    ffi = cffi.FFI()
    ffi.cdef("double erf(double);")
    m = ffi.dlopen("libm.so.6")
    erf = pool.register(ffi.addressof(m, "erf"), "double(double)", name="cffi_erf")
    assert pool.apply(erf, 0.5) == math.erf(0.5)


def test_workers_die_with_a_killed_interpreter(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(
        "import sys, time, swiftpool\n"
        "pool = swiftpool.Pool(2)\n"
        "print(' '.join(str(w['pid']) for w in pool.worker_stats()), flush=True)\n"
        "time.sleep(60)\n")
    shm_before = set(os.listdir("/dev/shm"))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in child.stdout.readline().split()]
    assert len(pids) == 2 and all(p > 0 for p in pids)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    deadline = time.monotonic() + 5
    def alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except OSError:
            return False
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids)
    assert set(os.listdir("/dev/shm")) <= shm_before


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="hand-written x86-64 machine code")
def test_code_outside_any_shared_object_runs_after_the_workers_are_forked_again(pool):
    # What a numba cfunc is: machine code in anonymous memory, which workers forked
    # before it was written do not have. Here: double twice(double x) { return x + x; }
    import mmap
    code = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    code.write(bytes([0xF2, 0x0F, 0x58, 0xC0, 0xC3]))  # addsd xmm0, xmm0; ret
    address = ctypes.addressof(ctypes.c_char.from_buffer(code))
    before = [w["pid"] for w in pool.worker_stats()]
    twice = pool.register(address, "double(double)", name="twice")
    assert np.array_equal(pool.map(twice, np.arange(1000.0)), 2 * np.arange(1000.0))
    assert pool.apply(twice, 21.0) == 42.0
    assert set(w["pid"] for w in pool.worker_stats()).isdisjoint(before)  # forked again, once
