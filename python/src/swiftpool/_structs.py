"""The C API's structs (include/cpool.h) for ctypes, field for field. Nothing here loads
the library, so a bare-ctypes program can use them too (Tests/Python/test_ctypes.py)."""
import ctypes as C


class Options(C.Structure):
    """cpool_options_t, field for field (checked against cpool_options_init's size)."""

    _fields_ = [
        ("struct_bytes", C.c_size_t),
        ("workers", C.c_uint32),
        ("ring_slots", C.c_uint32),
        ("arena_bytes", C.c_uint64),
        ("max_tasks_per_worker", C.c_uint64),
        ("task_timeout_ns", C.c_uint64),
        ("spin_ns", C.c_uint64),
        ("worker_init", C.c_void_p),
        ("worker_exit", C.c_void_p),
        ("hook_ctx", C.c_void_p),
        ("crash_retries", C.c_uint32),
        ("reserved0", C.c_uint32),
        ("init_timeout_ns", C.c_uint64),
        ("exit_timeout_ns", C.c_uint64),
        ("max_memory_growth_bytes", C.c_uint64),
        ("kill_grace_ns", C.c_uint64),
        ("output_bytes", C.c_uint64),
        ("flags", C.c_uint32),
        ("reserved1", C.c_uint32),
        ("on_event", C.c_void_p),
        ("event_ctx", C.c_void_p),
        ("on_output", C.c_void_p),
        ("output_ctx", C.c_void_p),
        ("start_method", C.c_uint32),
        ("reserved2", C.c_uint32),
        ("executable", C.c_char_p),
        ("worker_init_name", C.c_char_p),
        ("worker_exit_name", C.c_char_p),
        ("hook_output_bytes", C.c_uint64),
    ]


class Status(C.Structure):
    """cpool_status_t."""

    _fields_ = [("code", C.c_int32), ("detail", C.c_int32), ("worker", C.c_int32), ("reserved", C.c_int32)]


class WorkerStats(C.Structure):
    """cpool_worker_stats_t."""

    _fields_ = [("pid", C.c_int32), ("reserved", C.c_uint32), ("tasks_done", C.c_uint64),
                ("restarts", C.c_uint64), ("crashes", C.c_uint64), ("timeouts", C.c_uint64),
                ("recycles", C.c_uint64)]
