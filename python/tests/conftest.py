"""Test helpers: a shared library of C functions that crash, sleep or compute, compiled
once per session with the system's C compiler."""
import os
import subprocess

import pytest

SOURCE = r"""
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int64_t square(int64_t x) { return x * x; }
int64_t crash_at(int64_t x) {
    if (x == 500) raise(SIGSEGV);
    if (x == 600) _exit(3);
    return x * x;
}
double sleep_ms(double ms) {
    struct timespec t = {(time_t)(ms / 1000), (long)((ms - 1000 * (long)(ms / 1000)) * 1e6)};
    while (nanosleep(&t, &t) != 0) {}
    return ms;
}
double mix(int32_t a, double b, int8_t c) { return a * b + c; }
int64_t worker_pid(int64_t x) { (void)x; return (int64_t)getpid(); }
"""


@pytest.fixture(scope="session")
def testlib(tmp_path_factory):
    d = tmp_path_factory.mktemp("testlib")
    src, lib = d / "t.c", d / "libt.so"
    src.write_text(SOURCE)
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", str(src), "-o", str(lib)], check=True)
    return str(lib)
