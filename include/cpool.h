/*
 * cpool.h — SwiftPool's C core: a process pool for Linux.
 *
 * Workers are forked processes. Tasks and results move through shared memory
 * (per-worker single-producer/single-consumer rings and a shared payload arena),
 * never through pipes, and nothing is serialized on the hot path. A worker that
 * crashes or hangs fails only the task it was running; the pool replaces it.
 *
 * This header is the whole C API. Conventions:
 *   - every function returns 0 (or a count) on success and a negative error code
 *     on failure: -errno for system errors (-EINVAL, -ENOMEM, -ETIMEDOUT, ...),
 *     CPOOL_E_* for the pool's own; cpool_strerror() names any of them;
 *   - there is no global or thread-local "last error";
 *   - destroying NULL is a no-op; units are in names (_ns, _bytes);
 *   - unless a comment says otherwise, a function may be called from several
 *     threads at once on the same pool.
 */
#ifndef CPOOL_H
#define CPOOL_H

#if !defined(__linux__)
#error "SwiftPool's C core runs on Linux only (5.3 or later, for pidfd_open)."
#endif

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CPOOL_BUILDING) && defined(__GNUC__)
#define CPOOL_API __attribute__((visibility("default")))
#else
#define CPOOL_API
#endif

#define CPOOL_VERSION_MAJOR 0
#define CPOOL_VERSION_MINOR 3

/* ---------------------------------------------------------------- errors */

/* The pool's own error codes, a reserved range below -10000 that no errno reaches. */
enum {
    CPOOL_E_CLOSED = -10001,           /* the pool is closed, terminated or destroyed */
    CPOOL_E_UNKNOWN_FUNCTION = -10002, /* no function with that id or name */
    CPOOL_E_SIGNATURE = -10003,        /* signature does not parse or is not supported */
    CPOOL_E_TOO_LARGE = -10004,        /* payload larger than the arena can ever hold */
    CPOOL_E_EXISTS = -10005,           /* a function with that name is already registered */
    CPOOL_E_SYMBOL = -10006,           /* dlopen/dlsym failed (library or symbol not found) */
    CPOOL_E_CRASHED = -10007,          /* the worker died while running the task */
    CPOOL_E_TASK_TIMEOUT = -10008,     /* the task ran past its timeout; its worker was killed */
    CPOOL_E_CANCELLED = -10009,        /* the task was cancelled before it finished */
    CPOOL_E_TASK_FAILED = -10010,      /* some tasks of a map failed; see their statuses */
    CPOOL_E_FUNCTION_ERROR = -10011,   /* the registered function itself reported an error */
    CPOOL_E_WORKER_INIT = -10012,      /* the worker init hook kept failing; pool broken */
    CPOOL_E_NOT_IN_WORKER = -10013,    /* function registered after the workers started is
                                          not reachable in them (not in a shared object) */
    CPOOL_E_SIZE = -10014,             /* apply/submit: argument or result size is not the
                                          signature's; map: a stride below the record */
    CPOOL_E_FULL = -10015,             /* a fixed table (functions, tasks) is full */
    CPOOL_E_SPAWN = -10016,            /* spawned workers kept failing to start: the program
                                          is not one that serves (its main() does not call
                                          cpool_serve_if_spawned first), or it could not map
                                          the pool's memory; pool broken */
    CPOOL_E_START_METHOD = -10017,     /* not possible with the pool's start method (e.g. a
                                          batch context in the parent's memory under spawn,
                                          a task timeout on threads) */
};

/* A static, human-readable text for any code this API returns (never NULL). */
CPOOL_API const char *cpool_strerror(int code);

/* ---------------------------------------------------------------- options */

typedef struct cpool_pool cpool_pool_t;

/* Called in each worker right after it starts (init) and when it leaves gracefully
 * (exit: lifespan reached, pool closed, workers stopped). worker_id is the slot number,
 * 0 .. workers-1, stable across replacements. An init hook that returns non-zero
 * makes that worker exit; a pool whose workers keep failing init is broken
 * (CPOOL_E_WORKER_INIT). Under fork, hooks run in the forked child: synchronous code
 * only. An exit hook may hand the parent a value (cpool_hook_output). */
typedef int (*cpool_worker_hook_t)(uint32_t worker_id, void *ctx);

/* How a pool starts its workers (cpool_options_t.start_method). */
typedef enum cpool_start_method {
    /* Forked from the calling process (the default): they see everything it holds at the
     * fork, so any function and context pointer works; fastest start. A forked child of a
     * multi-threaded process must not use facilities whose threads did not survive the
     * fork (thread pools, async runtimes). */
    CPOOL_START_FORK = 0,
    /* Fresh processes started from `executable` (default: the running program), whose
     * main() calls cpool_serve_if_spawned() first. They share only the pool's memory
     * (mapped at the same address) and find every function by name or by where it lives:
     * cpool_register_symbol, cpool_register_defined, or cpool_register of a function of
     * the program or a library it loads (found at the same offset in the same file). Any
     * library works in them; every other guarantee of fork holds. */
    CPOOL_START_SPAWN = 1,
    /* Threads of the calling process: for work that waits rather than computes. The same
     * calls, results and errors, but no isolation: a crash ends the process, and a
     * running task cannot be stopped (task timeouts, memory limits and hook timeouts are
     * CPOOL_E_START_METHOD; cancelling a job drops only its tasks not started; terminate
     * and destroy wait for running tasks to return). */
    CPOOL_START_THREADS = 2,
} cpool_start_method_t;

/* What happened to a worker, as the pool's supervisor thread saw it (see on_event). */
typedef enum cpool_event_kind {
    CPOOL_EVENT_WORKER_STARTED = 1,  /* a process was forked for the slot; detail: 1 when it
                                        replaces one (crash, lifespan, recycle), else 0 */
    CPOOL_EVENT_WORKER_EXITED = 2,   /* it left gracefully (lifespan reached, pool closed or
                                        workers stopped) */
    CPOOL_EVENT_WORKER_CRASHED = 3,  /* it died on its own: detail as cpool_status_t's for
                                        CPOOL_E_CRASHED (signal, 1000 + exit status, or
                                        CPOOL_DETAIL_UNKNOWN) */
    CPOOL_EVENT_TASK_TIMED_OUT = 4,  /* it was killed because its task ran past its timeout */
    CPOOL_EVENT_TASK_CANCELLED = 5,  /* it was killed to stop a cancelled task */
    CPOOL_EVENT_WORKER_RECYCLED = 6, /* it left because its memory grew past the limit */
    CPOOL_EVENT_INIT_FAILED = 7,     /* its init hook failed, or ran past init_timeout_ns */
    CPOOL_EVENT_EXIT_TIMED_OUT = 8,  /* its exit hook ran past exit_timeout_ns */
    CPOOL_EVENT_KILLED = 9,          /* it was killed by terminate or destroy */
    CPOOL_EVENT_POOL_BROKEN = 10,    /* init kept failing: every call now fails; worker -1 */
} cpool_event_kind_t;

typedef struct cpool_event {
    int32_t kind;     /* cpool_event_kind_t */
    int32_t worker;   /* the slot, 0 .. workers-1 */
    int32_t pid;      /* the process concerned */
    int32_t detail;   /* see the kinds */
    uint64_t tasks_done; /* items the slot has completed so far, over all its processes */
} cpool_event_t;

/* Receives each event once, in order, on the pool's supervisor thread, with no lock of
 * the pool held. It may read statistics and log; it must return promptly (the
 * supervisor also notices deaths and timeouts) and must not destroy the pool. */
typedef void (*cpool_event_fn_t)(const cpool_event_t *event, void *ctx);

/* Receives one line a worker wrote to its stdout (stream 1) or stderr (stream 2), without
 * its newline, when the pool captures output (CPOOL_OPTION_CAPTURE_OUTPUT). Lines of one
 * worker and stream come in the order written; a line longer than 64 KiB comes in
 * pieces of 64 KiB; a last line without a newline comes when the worker exits. Called on
 * the supervisor thread, like on_event. */
typedef void (*cpool_output_fn_t)(uint32_t worker, int stream, const char *line, size_t length,
                                  void *ctx);

/* Bits of cpool_options_t.flags. */
enum {
    /* Time every item and hook (cpool_worker_insights). Items are then claimed and
     * published one by one, which costs tiny tasks some of their speed. */
    CPOOL_OPTION_INSIGHTS = 1u << 0,
    /* Workers' stdout and stderr go to pipes that the pool reads and hands line by line
     * to on_output (required). Without it the workers write to the parent's own streams
     * directly, each line whole (their stdout is line-buffered and starts empty, so
     * nothing the parent had buffered is written twice). */
    CPOOL_OPTION_CAPTURE_OUTPUT = 1u << 1,
};

typedef struct cpool_options {
    size_t struct_bytes;           /* set by cpool_options_init; fields are only appended */
    uint32_t workers;              /* 0 = the CPUs this process may run on */
    uint32_t ring_slots;           /* per worker and direction; power of two; default 256 */
    uint64_t arena_bytes;          /* shared payload memory; default 64 MiB */
    uint64_t max_tasks_per_worker; /* lifespan: a worker is replaced after this many; 0 = never */
    uint64_t task_timeout_ns;      /* a task running longer is killed with its worker; 0 = none */
    uint64_t spin_ns;              /* busy-wait window before yielding and sleeping;
                                      default 50 us */
    cpool_worker_hook_t worker_init; /* may be NULL */
    cpool_worker_hook_t worker_exit; /* may be NULL */
    void *hook_ctx;
    uint32_t crash_retries;        /* a task whose worker died runs again up to this many
                                      times before it fails with CPOOL_E_CRASHED; default 0 */
    uint32_t reserved0;
    uint64_t init_timeout_ns;      /* an init hook running longer gets its worker killed
                                      (an init failure); 0 = no limit */
    uint64_t exit_timeout_ns;      /* an exit hook running longer gets its worker killed;
                                      0 = no limit */
    uint64_t max_memory_growth_bytes; /* a worker whose resident memory grew by more than
                                      this since it started is replaced between tasks
                                      (leak protection); 0 = never */
    uint64_t kill_grace_ns;        /* stopping a task (timeout, cancel): SIGTERM first,
                                      SIGKILL after this grace; 0 = SIGKILL at once */
    uint64_t output_bytes;         /* per worker: the ring that carries items' outputs
                                      (cpool_task_output) to the parent; an output larger
                                      than it goes in pieces. Default 4 MiB, at least
                                      16 KiB; its pages are touched only as outputs pass
                                      through */
    uint32_t flags;                /* CPOOL_OPTION_* */
    uint32_t reserved1;
    cpool_event_fn_t on_event;     /* may be NULL */
    void *event_ctx;
    cpool_output_fn_t on_output;   /* required with CPOOL_OPTION_CAPTURE_OUTPUT */
    void *output_ctx;
    uint32_t start_method;         /* cpool_start_method_t; default CPOOL_START_FORK */
    uint32_t reserved2;
    const char *executable;        /* spawn: the program workers run (copied); NULL: this
                                      one (/proc/self/exe) */
    /* Hooks defined by name (cpool_define_hook), found in each worker's own process; they
     * run after worker_init and before worker_exit. NULL: none. (Copied; see also
     * cpool_set_worker_hooks.) */
    const char *worker_init_name;
    const char *worker_exit_name;
    uint64_t hook_output_bytes;    /* per worker slot: room for the values exit hooks hand
                                      over (cpool_hook_output) until taken; default 64 KiB */
} cpool_options_t;

/* Fills *options with the defaults. Returns 0, or -EINVAL for NULL. */
CPOOL_API int cpool_options_init(cpool_options_t *options);

/* ---------------------------------------------------------------- spawned workers */

/* Call first thing in main() (after defining functions and hooks with cpool_define and
 * cpool_define_hook) in a program whose pools spawn workers. In a process that a pool
 * spawned as its worker it serves that pool and exits: it never returns. Anywhere
 * else it returns 0 at once. A spawned process that creates a pool instead (main()
 * does not call this) exits at once, so a forgotten call cannot multiply processes; its
 * pool then fails with CPOOL_E_SPAWN. */
CPOOL_API int cpool_serve_if_spawned(void);

/* The slot (0 .. workers-1) of the worker the calling code runs in: a worker process,
 * or a pool's worker thread under CPOOL_START_THREADS; -1 anywhere else. */
CPOOL_API int cpool_worker_id(void);

/* ---------------------------------------------------------------- pool lifetime */

/* Creates a pool and starts its workers. options may be NULL (defaults). The workers
 * are forked by the pool's supervisor thread and die with the process, even when it
 * is killed with SIGKILL. On success *out owns the pool: release it with
 * cpool_destroy. Returns 0, -EINVAL, -ENOMEM, or the errno of a failed system call. */
CPOOL_API int cpool_create(const cpool_options_t *options, cpool_pool_t **out);

/* No new work is accepted (calls return CPOOL_E_CLOSED); work already submitted
 * finishes. Idempotent. */
CPOOL_API int cpool_close(cpool_pool_t *pool);

/* Stops at once: workers are killed, unfinished tasks end with CPOOL_E_CANCELLED.
 * Implies close. Idempotent. */
CPOOL_API int cpool_terminate(cpool_pool_t *pool);

/* After close or terminate: waits until every task has ended and every worker has
 * exited (running their exit hooks when closed gracefully). timeout_ns 0 waits
 * forever. Returns 0, -EINVAL when the pool is still open, or -ETIMEDOUT. */
CPOOL_API int cpool_join(cpool_pool_t *pool, uint64_t timeout_ns);

/* Stops every worker once it has finished the tasks already queued on it; each runs its
 * exit hook and leaves, and no replacement is forked. Work submitted while the workers
 * are stopped waits for cpool_start_workers. timeout_ns 0 waits forever. Returns 0,
 * -ETIMEDOUT (the workers go on stopping), or CPOOL_E_CLOSED. */
CPOOL_API int cpool_stop_workers(cpool_pool_t *pool, uint64_t timeout_ns);

/* Forks a fresh worker for every slot that has none (after cpool_stop_workers, or at
 * any time: slots with a worker are left alone) and waits until each has finished its
 * init hook (a hook that hangs is bounded only by init_timeout_ns). Fresh workers
 * see everything the process holds now: functions registered since, and the data their
 * context pointers point to. Returns 0, CPOOL_E_CLOSED, or -errno of a failed fork. */
CPOOL_API int cpool_start_workers(cpool_pool_t *pool);

/* Sets the named hooks (cpool_define_hook; NULL or "" for none) that worker processes
 * started from now on run, after options.worker_init and before options.worker_exit:
 * hooks for one call, between cpool_stop_workers and cpool_start_workers. Returns 0,
 * -EBUSY while a worker runs or is due to start, -ENAMETOOLONG, CPOOL_E_CLOSED. A name
 * not defined in a worker makes its start fail (CPOOL_E_WORKER_INIT once it repeats). */
CPOOL_API int cpool_set_worker_hooks(cpool_pool_t *pool, const char *init_name,
                                     const char *exit_name);

/* Called in an exit hook: hands the parent a copy of bytes[0, count), the value of this
 * worker process's exit, which the parent collects with cpool_take_exit_outputs. Calling
 * it again in the same hook replaces the value. Returns 0, -EPERM outside an exit hook,
 * -EINVAL, or -ENOSPC when it does not fit in the slot's room (hook_output_bytes less
 * what earlier exits of the slot left untaken). */
CPOOL_API int cpool_hook_output(const void *bytes, size_t count);

/* Receives one exit hook's value: the slot whose process left, and the bytes (valid
 * during the call only). */
typedef void (*cpool_exit_output_fn_t)(uint32_t worker, const void *bytes, size_t count,
                                       void *ctx);

/* Hands every exit value not yet taken to fn, in the order the processes of each slot
 * left, slot by slot, and frees their room once no process of the slot runs. Returns
 * how many, or a negative code. */
CPOOL_API int cpool_take_exit_outputs(cpool_pool_t *pool, cpool_exit_output_fn_t fn, void *ctx);

/* Terminates (unless already joined), joins, and frees everything: no worker and no
 * shared memory is left. Threads blocked on this pool return first: cpool_apply with
 * CPOOL_E_CANCELLED, cpool_map with CPOOL_E_TASK_FAILED and every unfinished item
 * CPOOL_E_CANCELLED. NULL is a no-op. Jobs not yet freed are freed here and must not
 * be used afterwards. A handle is never reused: later calls with it return
 * CPOOL_E_CLOSED, and destroying it again is a no-op, whatever pools exist by then. */
CPOOL_API void cpool_destroy(cpool_pool_t *pool);

/* ---------------------------------------------------------------- functions */

typedef int32_t cpool_fn_t; /* a registered function's id, >= 0 */

/* Any function, as cpool_register takes it: cast yours, `(cpool_any_fn_t)my_fn` (a cast
 * between function pointer types is valid ISO C; one to void * is not). */
typedef void (*cpool_any_fn_t)(void);

/* Signatures are C-like strings: "ret(arg,arg,...)", up to 8 arguments, types
 *   int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t
 *   float double   (aliases: i8 .. i64, u8 .. u64, f32, f64, int, long, size_t)
 * and ret may be void. A task's arguments are one packed record laid out like the C
 * struct of those types in order (natural alignment); its result is one value of ret.
 *
 * One more form passes bytes instead of scalars:
 *   "void(const void*,size_t,void*,size_t)"   or   "int64_t(const void*,size_t,void*,size_t)"
 * The function gets the task's input bytes and an output buffer of the size the
 * caller asked for; an int64_t return below 0 fails that task (CPOOL_E_FUNCTION_ERROR).
 *
 * A batch function receives a whole chunk and is the fastest path for language
 * bindings (one call per chunk, not per item). It must store the index of the item
 * it is about to run in *progress before running it (so a crash fails exactly that
 * item) and return 0, or a negative code after setting *progress to the failing
 * item's index (the worker then continues with the next item). */
typedef int64_t (*cpool_batch_fn_t)(void *ctx, const void *in, size_t in_stride_bytes,
                                    void *out, size_t out_stride_bytes, size_t count,
                                    volatile size_t *progress);

enum {
    CPOOL_REGISTER_NO_DIRECT = 1u << 0, /* always dispatch through libffi (benchmarks) */
};

/* Function ids are specific to their pool: another pool's id is CPOOL_E_UNKNOWN_FUNCTION.
 * Registers fn under a unique name with a signature. Any time: before the workers
 * start, or after (a function registered later is found in the workers through its
 * shared object, see CPOOL_E_NOT_IN_WORKER). Returns the id (>= 0), or -EINVAL,
 * CPOOL_E_SIGNATURE, CPOOL_E_EXISTS, CPOOL_E_FULL, CPOOL_E_CLOSED. */
CPOOL_API cpool_fn_t cpool_register(cpool_pool_t *pool, const char *name,
                                    const char *signature, cpool_any_fn_t fn, uint32_t flags);

/* Registers the symbol `symbol` of the shared library `library` (a path or soname
 * as dlopen takes it; NULL = the running program and its loaded libraries), e.g.
 * ("cos", "libm.so.6", "cos", "double(double)"). The workers open the library
 * themselves. Returns the id, or the codes of cpool_register, or CPOOL_E_SYMBOL. */
CPOOL_API cpool_fn_t cpool_register_symbol(cpool_pool_t *pool, const char *name,
                                           const char *library, const char *symbol,
                                           const char *signature, uint32_t flags);

/* Registers a batch function with a context pointer passed through unchanged
 * (it must be valid in the workers: allocated before they were forked, or shared).
 * in_bytes and out_bytes are the sizes of one item's input and output. */
CPOOL_API cpool_fn_t cpool_register_batch(cpool_pool_t *pool, const char *name,
                                          cpool_batch_fn_t fn, void *ctx, size_t in_bytes,
                                          size_t out_bytes);

/* Defines a batch function by name in this process, with a context pointer of this
 * process: a binding's closure, say. A program defines the same functions in every
 * process (before cpool_serve_if_spawned in a spawned one); a pool registers one with
 * cpool_register_defined, and each worker finds its own definition by name. `type`
 * names what the items hold (any text up to 4 KiB, e.g. "Int -> String"): a worker
 * whose definition has another type or sizes fails those tasks with CPOOL_E_SIGNATURE,
 * one without the name with CPOOL_E_NOT_IN_WORKER. Definitions live as long as the
 * process. Returns 0, -EINVAL, -ENAMETOOLONG (name of 64 bytes or more), CPOOL_E_EXISTS
 * (the name is defined: names are unique per process), or CPOOL_E_FULL (1024 names). */
CPOOL_API int cpool_define(const char *name, const char *type, cpool_batch_fn_t fn, void *ctx,
                           size_t in_bytes, size_t out_bytes);

/* Defines a worker hook by name in this process, for options.worker_init_name,
 * worker_exit_name and cpool_set_worker_hooks. Returns as cpool_define. Function and
 * hook names share one table. */
CPOOL_API int cpool_define_hook(const char *name, cpool_worker_hook_t hook, void *ctx);

/* One entry of the process's table of definitions (cpool_define, cpool_define_hook). */
typedef struct cpool_definition_info {
    char name[64];
    char type[96];      /* the start of the function's type text, for messages */
    uint64_t type_hash; /* its type and item sizes: two processes whose hashes differ
                           disagree on the function */
    uint32_t in_bytes, out_bytes;
    int32_t is_hook;
    uint32_t reserved;
    void *fn;           /* the cpool_batch_fn_t, or the cpool_worker_hook_t of a hook */
    void *ctx;          /* its context pointer in this process */
} cpool_definition_info_t;

/* Copies the definition named `name` into *info. Returns 0 or CPOOL_E_UNKNOWN_FUNCTION. */
CPOOL_API int cpool_definition_find(const char *name, cpool_definition_info_t *info);

/* Copies the index-th definition (in the order they were made) into *info: what a
 * program compares across its processes, e.g. the ranks of an MPI job. Entries are
 * never changed or removed. Returns 0, or -ENOENT past the last. */
CPOOL_API int cpool_definition_at(size_t index, cpool_definition_info_t *info);

/* Registers the function defined under `name` (cpool_define). Any start method, any
 * time: workers find the definition in their own process on first use. Returns the id,
 * or the codes of cpool_register, or CPOOL_E_UNKNOWN_FUNCTION (not defined here). */
CPOOL_API cpool_fn_t cpool_register_defined(cpool_pool_t *pool, const char *name, uint32_t flags);

/* The id registered under name, or CPOOL_E_UNKNOWN_FUNCTION. */
CPOOL_API cpool_fn_t cpool_lookup(cpool_pool_t *pool, const char *name);

/* Size in bytes of one task's argument record and of its result for function fn
 * (for the bytes form: 0, the caller chooses). Either pointer may be NULL. */
CPOOL_API int cpool_function_sizes(cpool_pool_t *pool, cpool_fn_t fn, size_t *args_bytes,
                                   size_t *result_bytes);

/* ---------------------------------------------------------------- shared buffers */

/* Allocates bytes of the pool's shared arena, 64-byte aligned, visible to the workers
 * at the same address. A map whose input or output lies in such a buffer moves no
 * bytes at all (zero-copy); otherwise the pool copies through the arena. Returns
 * NULL when the arena has no room or the pool is closed. Free with cpool_free. */
CPOOL_API void *cpool_alloc(cpool_pool_t *pool, size_t bytes);
CPOOL_API void cpool_free(cpool_pool_t *pool, void *buffer);

/* ---------------------------------------------------------------- tasks */

typedef struct cpool_status {
    int32_t code;    /* 0, CPOOL_E_CRASHED, CPOOL_E_TASK_TIMEOUT, CPOOL_E_CANCELLED,
                        CPOOL_E_FUNCTION_ERROR, CPOOL_E_NOT_IN_WORKER ... */
    int32_t detail;  /* CRASHED: the signal number, or 1000 + exit status for a worker
                        that exited, or CPOOL_DETAIL_UNKNOWN when the host program took
                        the worker's exit status first (it ignores SIGCHLD or reaps every
                        child itself); FUNCTION_ERROR: the function's return value */
    int32_t worker;  /* the worker slot that ran (or last held) the task; -1 if none */
    int32_t reserved;
} cpool_status_t;

/* status.detail of a crash whose exit status the pool could not collect. */
#define CPOOL_DETAIL_UNKNOWN (-1)

typedef struct cpool_job cpool_job_t;

/* Runs fn once and waits. args/args_bytes: the packed argument record (for the bytes
 * form: the input bytes); result/result_bytes: where the result goes (bytes form: the
 * output buffer the function fills). Both sizes must be exactly the signature's record
 * and result sizes (cpool_function_sizes), else CPOOL_E_SIZE. timeout_ns > 0 kills the task's worker when the
 * task runs longer (0 = the pool's task_timeout_ns). status may be NULL.
 * Returns 0, or the task's failure code (also in status), or a call error. */
CPOOL_API int cpool_apply(cpool_pool_t *pool, cpool_fn_t fn, const void *args,
                          size_t args_bytes, void *result, size_t result_bytes,
                          uint64_t timeout_ns, cpool_status_t *status);

/* Like cpool_apply without waiting: returns 0 and *job, which the caller waits on
 * and then releases with cpool_job_free. args are copied; result must stay valid
 * until the job has ended (it is written before cpool_job_wait returns 0). */
CPOOL_API int cpool_submit(cpool_pool_t *pool, cpool_fn_t fn, const void *args,
                           size_t args_bytes, void *result, size_t result_bytes,
                           uint64_t timeout_ns, cpool_job_t **job);

/* Maps fn over count items: item i's argument record is at in + i*in_stride_bytes,
 * its result goes to out + i*out_stride_bytes (bytes form: in_stride_bytes input bytes
 * and out_stride_bytes output bytes per item). A stride larger than the record or the
 * result leaves the bytes in between alone (records inside larger structs); a smaller
 * one is CPOOL_E_SIZE; a count whose span overflows size_t or the address space is
 * -EOVERFLOW. Items go to the workers in chunks of chunk_items, or 0 for automatic
 * chunks that shrink as the input drains. Either way a worker that runs out of work
 * takes over items that another has not started, so no item waits behind a slow one
 * while a worker is idle. statuses (count entries) may be NULL. Returns 0 when
 * every item succeeded, CPOOL_E_TASK_FAILED when some failed (statuses say which;
 * the others' results are all written), or a call error (nothing ran). */
CPOOL_API int cpool_map(cpool_pool_t *pool, cpool_fn_t fn, const void *in,
                        size_t in_stride_bytes, void *out, size_t out_stride_bytes,
                        size_t count, size_t chunk_items, cpool_status_t *statuses);

/* cpool_map without waiting. in, out and statuses must stay valid until the job ends. */
CPOOL_API int cpool_map_start(cpool_pool_t *pool, cpool_fn_t fn, const void *in,
                              size_t in_stride_bytes, void *out, size_t out_stride_bytes,
                              size_t count, size_t chunk_items, cpool_status_t *statuses,
                              cpool_job_t **job);

/* Waits for the job to end. timeout_ns 0 waits forever. Returns 0 when all its tasks
 * succeeded, a failure code (single task) or CPOOL_E_TASK_FAILED (map), or
 * -ETIMEDOUT when the wait timed out (the job goes on). Several threads may wait
 * on different jobs at once; one job is waited on by one thread at a time. */
CPOOL_API int cpool_job_wait(cpool_job_t *job, uint64_t timeout_ns);

/* Waits until any of `count` jobs (all of one pool) has ended, like
 * concurrent.futures.wait(FIRST_COMPLETED): returns the lowest index of an ended job
 * (read its outcome with cpool_job_wait, which then returns at once), -ETIMEDOUT when
 * timeout_ns (0: no limit) passed first, -EINTR for a cpool_interrupt_waits on the pool
 * not seen by any wait_any yet (before this call or during it), or -EINVAL (no jobs, a NULL job, jobs of different pools).
 * Workers wake the caller when a job ends: no polling. */
CPOOL_API int cpool_job_wait_any(cpool_job_t *const *jobs, size_t count, uint64_t timeout_ns);

/* Makes the cpool_job_wait_any on this pool in progress, or else the next one, return
 * -EINTR (one of them when several threads wait; cpool_job_wait is not affected): a
 * thread that serves many jobs with one wait (a waiter of futures) is told to look at
 * its list again, e.g. for a job just submitted. Any wait_any may take it: a thread
 * that did not ask for it calls cpool_interrupt_waits again, so that it reaches the
 * thread it was meant for. Returns 0 or CPOOL_E_CLOSED. */
CPOOL_API int cpool_interrupt_waits(cpool_pool_t *pool);

/* 1 when the job has ended, 0 when not; makes progress like a zero wait. */
CPOOL_API int cpool_job_done(cpool_job_t *job);

/* Cancels the job: tasks not started end with CPOOL_E_CANCELLED at once; a running
 * task is stopped by killing its worker (SIGKILL), which the pool replaces.
 * Returns 0, or -EALREADY when the job had already ended. */
CPOOL_API int cpool_job_cancel(cpool_job_t *job);

/* The status of a single-task job (submit) once it has ended. */
CPOOL_API int cpool_job_status(cpool_job_t *job, cpool_status_t *status);

/* The failed items of a job that has ended: returns how many failed (0 when none, or
 * -EBUSY while the job runs) and writes the first `max` of them, in the order they
 * ended, as item indices and statuses (either array may be NULL). Cheaper than a
 * per-item status array when failures are rare. Nothing is lost however many fail: a
 * failed item's description, when its function gave one (cpool_task_output), is its
 * output, read with cpool_job_output. */
CPOOL_API int64_t cpool_job_failures(cpool_job_t *job, size_t *indices, cpool_status_t *statuses,
                                     size_t max);

/* How far the job is: items ended (successful or not), items failed, items in all.
 * Makes progress like a zero wait, so it moves while no thread waits. Any pointer may be
 * NULL. Returns 0. */
CPOOL_API int cpool_job_progress(cpool_job_t *job, uint64_t *ended, uint64_t *failed,
                                 uint64_t *total);

/* Releases the job. A job that has not ended is cancelled first and waited for.
 * NULL is a no-op. */
CPOOL_API void cpool_job_free(cpool_job_t *job);

/* ---------------------------------------------------------------- outputs of any size */

/* Called by a function while it runs in a worker (any kind: batch, bytes, scalar):
 * sets the output of the item it is running now to a copy of bytes[0, count). An
 * item's output has any size (0 included); the parent receives exactly those bytes,
 * in pieces through the worker's output ring when they are larger than it. Calling
 * it again for the same item replaces the output. When the item then fails
 * (CPOOL_E_FUNCTION_ERROR), its output is the error's description: a code, a
 * message, an encoded error value, whatever the caller and the function agree on.
 * An item that crashes, times out or is cancelled has no output; one that runs
 * again (crash_retries) starts with none.
 * A batch function registered with out_bytes 0 and mapped with out NULL and
 * out_stride 0 returns results of any size this way.
 * Returns 0, -EPERM outside a running task (in the parent, in an init hook), or
 * -EINVAL for NULL bytes with count > 0. Blocks while the ring is full until the
 * parent has drained it (it does whenever one of its threads waits on a job). */
CPOOL_API int cpool_task_output(const void *bytes, size_t count);

/* The output of item `index` of an ended job (0 for a submit): its bytes, valid
 * until cpool_job_free, and their count. An item without output gets NULL and 0.
 * Returns 0, -EBUSY while the job runs, -ERANGE for an index past the job's items,
 * -ENOMEM when the parent had no memory to receive it. */
CPOOL_API int cpool_job_output(cpool_job_t *job, size_t index, const void **bytes,
                               size_t *count);

/* ---------------------------------------------------------------- statistics */

typedef struct cpool_worker_stats {
    int32_t pid;         /* current process, 0 when none is running */
    uint32_t reserved;
    uint64_t tasks_done; /* items completed by this slot, over all its processes */
    uint64_t restarts;   /* replacements forked for this slot (any reason) */
    uint64_t crashes;    /* processes of this slot that died abnormally */
    uint64_t timeouts;   /* processes killed for a task timeout */
    uint64_t recycles;   /* processes replaced for their memory growth */
} cpool_worker_stats_t;

/* One of the slowest items a worker slot ran (insights). */
typedef struct cpool_slow_item {
    uint64_t duration_ns;
    int64_t item;        /* its index in its job, -1 when the job ended before the pool
                            could tell */
    cpool_fn_t fn;       /* the function it ran */
    uint32_t reserved;
} cpool_slow_item_t;

#define CPOOL_SLOWEST_ITEMS 5

/* Where a worker slot's time went, summed over all of its processes. The times are
 * measured only when the pool was created with CPOOL_OPTION_INSIGHTS; without it they
 * are 0 and only the counts are kept. */
typedef struct cpool_worker_insights {
    uint64_t processes;      /* processes that became ready to run tasks */
    uint64_t tasks_done;     /* as cpool_worker_stats */
    uint64_t startup_ns;     /* fork to ready, init hook included */
    uint64_t init_ns;        /* in the init hook */
    uint64_t exit_ns;        /* in the exit hook */
    uint64_t working_ns;     /* running items */
    uint64_t waiting_ns;     /* ready and waiting for work */
    uint32_t slowest_count;  /* entries of slowest[] in use */
    uint32_t reserved;
    cpool_slow_item_t slowest[CPOOL_SLOWEST_ITEMS]; /* slowest first */
} cpool_worker_insights_t;

/* Insights of worker slot `worker`. Returns 0, -EINVAL (NULL out), -ERANGE (no such
 * slot). */
CPOOL_API int cpool_worker_insights(cpool_pool_t *pool, uint32_t worker,
                                    cpool_worker_insights_t *out);

/* Bytes of the arena in use now (by running tasks and cpool_alloc) and its capacity.
 * Either pointer may be NULL. Returns 0 or a negative code. */
CPOOL_API int cpool_arena_usage(cpool_pool_t *pool, uint64_t *in_use_bytes,
                                uint64_t *capacity_bytes);

/* The CPUs this process may run on (its affinity mask): the default worker count. */
CPOOL_API int cpool_cpu_count(void);

/* Number of worker slots, or a negative code. */
CPOOL_API int cpool_worker_count(cpool_pool_t *pool);

/* Statistics of worker slot `worker` (0 .. workers-1). Returns 0, -EINVAL (NULL out),
 * -ERANGE (no such slot). tasks_done counts every item that ran to its end in that
 * slot, also those of a chunk whose process died later in the same chunk. */
CPOOL_API int cpool_worker_stats(cpool_pool_t *pool, uint32_t worker,
                                 cpool_worker_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* CPOOL_H */
