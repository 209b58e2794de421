"""Cross-language test: Python loads libcpoolcore.so with ctypes, registers libm's cos
by symbol name and a C function of a test library by address, maps both over
1,000,000 doubles held in ctypes arrays, and checks every result.

usage: test_ctypes.py LIBCPOOLCORE LIBTESTFNS
"""
import ctypes as C
import math
import sys
from pathlib import Path


# The structs, from the Python package's module that defines them (it loads nothing).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python" / "src" / "swiftpool"))
from _structs import Options, Status  # noqa: E402


def load(core_path):
    lib = C.CDLL(core_path)
    lib.cpool_options_init.argtypes = [C.POINTER(Options)]
    lib.cpool_create.argtypes = [C.POINTER(Options), C.POINTER(C.c_void_p)]
    lib.cpool_destroy.argtypes = [C.c_void_p]
    lib.cpool_destroy.restype = None
    lib.cpool_register.argtypes = [C.c_void_p, C.c_char_p, C.c_char_p, C.c_void_p, C.c_uint32]
    lib.cpool_register_symbol.argtypes = [C.c_void_p, C.c_char_p, C.c_char_p, C.c_char_p, C.c_char_p, C.c_uint32]
    lib.cpool_map.argtypes = [C.c_void_p, C.c_int32, C.c_void_p, C.c_size_t, C.c_void_p, C.c_size_t,
                              C.c_size_t, C.c_size_t, C.POINTER(Status)]
    lib.cpool_apply.argtypes = [C.c_void_p, C.c_int32, C.c_void_p, C.c_size_t, C.c_void_p, C.c_size_t,
                                C.c_uint64, C.POINTER(Status)]
    lib.cpool_strerror.argtypes = [C.c_int]
    lib.cpool_strerror.restype = C.c_char_p
    return lib


failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)


def main():
    core = load(sys.argv[1])
    testfns = C.CDLL(sys.argv[2])
    opts = Options()
    core.cpool_options_init(C.byref(opts))
    # The struct above must be the C one, field for field: cpool_options_init says its size.
    check(opts.struct_bytes == C.sizeof(Options), "Options has %d bytes, C says %d" % (C.sizeof(Options), opts.struct_bytes))
    opts.workers = 2
    pool = C.c_void_p()
    rc = core.cpool_create(C.byref(opts), C.byref(pool))
    check(rc == 0, "cpool_create: %s" % core.cpool_strerror(rc))

    n = 1_000_000
    xs = (C.c_double * n)(*[i * 1e-3 for i in range(n)])
    out = (C.c_double * n)()

    cos_id = core.cpool_register_symbol(pool, b"cos", b"libm.so.6", b"cos", b"double(double)", 0)
    check(cos_id >= 0, "register cos: %s" % core.cpool_strerror(cos_id))
    rc = core.cpool_map(pool, cos_id, xs, 8, out, 8, n, 0, None)
    check(rc == 0, "map cos: %s" % core.cpool_strerror(rc))
    bad = sum(1 for i in range(n) if out[i] != math.cos(xs[i]))
    check(bad == 0, "cos: %d of %d results wrong" % (bad, n))

    scale_addr = C.cast(testfns.t_scale, C.c_void_p).value
    scale_id = core.cpool_register(pool, b"scale", b"double(double)", scale_addr, 0)
    check(scale_id >= 0, "register t_scale: %s" % core.cpool_strerror(scale_id))
    rc = core.cpool_map(pool, scale_id, xs, 8, out, 8, n, 0, None)
    check(rc == 0, "map t_scale: %s" % core.cpool_strerror(rc))
    bad = sum(1 for i in range(n) if out[i] != 2.0 * xs[i])
    check(bad == 0, "t_scale: %d of %d results wrong" % (bad, n))

    # errors come back as codes with names, and the pool keeps working
    rc = core.cpool_register(pool, b"broken", b"double(double", scale_addr, 0)
    check(core.cpool_strerror(rc) == b"the signature does not parse or is not supported",
          "bad signature gives %d" % rc)
    x, r = C.c_double(0.5), C.c_double()
    rc = core.cpool_apply(pool, 4242, C.byref(x), 8, C.byref(r), 8, 0, None)
    check(rc < 0 and b"no function" in core.cpool_strerror(rc), "unknown id gives %d" % rc)
    rc = core.cpool_apply(pool, cos_id, C.byref(x), 8, C.byref(r), 8, 0, None)
    check(rc == 0 and r.value == math.cos(0.5), "apply cos after errors")

    core.cpool_destroy(pool)
    print("1 passed, 0 failed" if failures == 0 else "0 passed, 1 failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
