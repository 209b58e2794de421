/* Start methods other than fork: spawned workers (a fresh process of this very program,
 * whose main() serves when it was spawned as a worker) and worker threads. Every
 * guarantee a forked worker gives is checked again for spawned ones: crash isolation,
 * timeouts, cancellation, lifespan, hooks, no orphans; and what a spawned worker cannot
 * have (the parent's memory, an undefined name) is a clear error. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "check.h"
#include "testfns.h"

/* ------------------------------------------------------------ what every process defines */

/* A function of this program (not of a shared library): found in a spawned worker at
 * the same offset of the same file. */
static int64_t triple(int64_t x) { return 3 * x; }

/* A context that lives in each process, set the same way in each (as a binding's
 * closure would be). */
typedef struct scaler { int64_t factor; } scaler_t;
static scaler_t process_scaler;

static int64_t scale_batch(void *ctx, const void *in, size_t in_stride, void *out, size_t out_stride,
                           size_t count, volatile size_t *progress) {
    const scaler_t *s = ctx;
    for (size_t i = 0; i < count; i++) {
        *progress = i;
        int64_t x;
        memcpy(&x, (const char *)in + i * in_stride, sizeof x);
        const int64_t r = x * s->factor;
        memcpy((char *)out + i * out_stride, &r, sizeof r);
    }
    return 0;
}

/* Which worker ran an item, and in which process. */
static int64_t whoami_batch(void *ctx, const void *in, size_t in_stride, void *out,
                            size_t out_stride, size_t count, volatile size_t *progress) {
    (void)ctx, (void)in, (void)in_stride;
    for (size_t i = 0; i < count; i++) {
        *progress = i;
        const int64_t r = (int64_t)cpool_worker_id() << 32 | (int64_t)getpid();
        memcpy((char *)out + i * out_stride, &r, sizeof r);
    }
    return 0;
}

static int init_named(uint32_t worker, void *ctx) {
    (void)ctx;
    /* The init hook of a spawned worker sees this worker's id. */
    return cpool_worker_id() == (int)worker ? 0 : 1;
}

static int exit_named(uint32_t worker, void *ctx) {
    (void)ctx;
    const int64_t v[2] = {(int64_t)worker, (int64_t)getpid()};
    return cpool_hook_output(v, sizeof v);
}

static int failing_init(uint32_t worker, void *ctx) {
    (void)worker, (void)ctx;
    return 1;
}

/* An options hook by address, with a context passed as a value. */
static int exit_by_address(uint32_t worker, void *ctx) {
    const int64_t v[2] = {(int64_t)worker, (int64_t)(intptr_t)ctx};
    return cpool_hook_output(v, sizeof v);
}

static void define_everything(void) {
    process_scaler.factor = 7;
    /* A spawned worker of the "other type" test defines the same name with another
     * type, and one of the "undefined" test leaves a name out. */
    const char *scale_type = getenv("TEST_OTHER_TYPE") ? "int64 -> int32" : "int64 -> int64";
    if (cpool_define("scale", scale_type, scale_batch, &process_scaler, 8, 8) != 0) abort();
    if (!getenv("TEST_SKIP_DEFINE") && cpool_define("whoami", "() -> id", whoami_batch, NULL, 8, 8) != 0)
        abort();
    if (cpool_define_hook("init_named", init_named, NULL) != 0) abort();
    if (cpool_define_hook("exit_named", exit_named, NULL) != 0) abort();
    if (cpool_define_hook("failing_init", failing_init, NULL) != 0) abort();
}

/* ------------------------------------------------------------ helpers */

static cpool_pool_t *pool_with(uint32_t method, uint32_t workers, void (*adjust)(cpool_options_t *)) {
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = workers;
    o.start_method = method;
    if (adjust) adjust(&o);
    cpool_pool_t *pool = NULL;
    int rc = cpool_create(&o, &pool);
    if (rc) fprintf(stderr, "cpool_create: %s\n", cpool_strerror(rc));
    return pool;
}

static void fill(int64_t *a, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = (int64_t)i;
}

/* ------------------------------------------------------------ the table */

static void test_definitions_are_listed_and_found(void) {
    /* What a program compares across its processes (the ranks of an MPI job): every
     * definition in order, each found again by name with the same type hash. */
    cpool_definition_info_t info, again;
    size_t n = 0, functions = 0, hooks = 0;
    int scale_seen = 0;
    while (cpool_definition_at(n, &info) == 0) {
        CHECK_RC(cpool_definition_find(info.name, &again), 0);
        CHECK(again.type_hash == info.type_hash && again.fn == info.fn && again.is_hook == info.is_hook);
        if (info.is_hook) hooks++; else functions++;
        if (strcmp(info.name, "scale") == 0) {
            scale_seen = 1;
            CHECK(info.in_bytes == 8 && info.out_bytes == 8 && info.ctx == &process_scaler);
            CHECK(strcmp(info.type, "int64 -> int64") == 0);
        }
        n++;
    }
    CHECK(scale_seen && functions >= 2 && hooks >= 1);
    CHECK_RC(cpool_definition_at(n, &info), -ENOENT);
    CHECK_RC(cpool_definition_find("no such name", &info), CPOOL_E_UNKNOWN_FUNCTION);
}

/* ------------------------------------------------------------ spawn */

static void test_spawn_functions_by_every_route(void) {
    cpool_pool_t *pool = pool_with(CPOOL_START_SPAWN, 2, NULL);
    CHECK(pool != NULL);
    if (!pool) return;
    cpool_fn_t lib = cpool_register(pool, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    cpool_fn_t own = cpool_register(pool, "triple", "i64(i64)", (cpool_any_fn_t)triple, 0);
    cpool_fn_t sym = cpool_register_symbol(pool, "cos", "libm.so.6", "cos", "double(double)", 0);
    cpool_fn_t def = cpool_register_defined(pool, "scale", 0);
    CHECK(lib >= 0 && own >= 0 && sym >= 0 && def >= 0);
    enum { N = 10000 };
    static int64_t in[N], out[N];
    fill(in, N);
    CHECK_RC(cpool_map(pool, lib, in, 8, out, 8, N, 0, NULL), 0);
    CHECK_EQ(out[N - 1], (int64_t)(N - 1) * (N - 1));
    CHECK_RC(cpool_map(pool, own, in, 8, out, 8, N, 0, NULL), 0);
    CHECK_EQ(out[1234], 3 * 1234);
    CHECK_RC(cpool_map(pool, def, in, 8, out, 8, N, 0, NULL), 0);
    CHECK_EQ(out[1234], 7 * 1234); /* the worker's own context, set by its own main() */
    double x = 0.0, y = 0.0;
    CHECK_RC(cpool_apply(pool, sym, &x, sizeof x, &y, sizeof y, 0, NULL), 0);
    CHECK(y == 1.0);
    /* The workers are other programs' processes, not forks: their parent is us and their
     * executable is this program. */
    cpool_worker_stats_t st;
    CHECK_RC(cpool_worker_stats(pool, 0, &st), 0);
    char path[64], exe[512], self[512];
    snprintf(path, sizeof path, "/proc/%d/exe", st.pid);
    ssize_t a = readlink(path, exe, sizeof exe - 1), b = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(a > 0 && b > 0 && a == b && memcmp(exe, self, (size_t)a) == 0);
    cpool_destroy(pool);
}

static void test_spawn_worker_ids_and_shared_buffers(void) {
    cpool_pool_t *pool = pool_with(CPOOL_START_SPAWN, 2, NULL);
    CHECK(pool != NULL);
    if (!pool) return;
    cpool_fn_t who = cpool_register_defined(pool, "whoami", 0);
    /* A batch context in the parent's memory means nothing in a spawned worker; one in
     * the pool's shared memory is at the same address there. */
    static scaler_t on_heap = {5};
    CHECK_RC(cpool_register_batch(pool, "heap", scale_batch, &on_heap, 8, 8), CPOOL_E_START_METHOD);
    scaler_t *shared = cpool_alloc(pool, sizeof *shared);
    CHECK(shared != NULL);
    if (!shared) return;
    shared->factor = 11;
    cpool_fn_t sh = cpool_register_batch(pool, "shared", scale_batch, shared, 8, 8);
    CHECK(sh >= 0);
    enum { N = 4000 };
    static int64_t in[N], out[N];
    fill(in, N);
    CHECK_RC(cpool_map(pool, sh, in, 8, out, 8, N, 0, NULL), 0);
    CHECK_EQ(out[N - 1], 11 * (N - 1));
    CHECK_RC(cpool_map(pool, who, in, 8, out, 8, N, 1, NULL), 0);
    for (size_t i = 0; i < N; i++) {
        const int id = (int)(out[i] >> 32), pid = (int)(uint32_t)out[i];
        cpool_worker_stats_t st;
        CHECK(id == 0 || id == 1);
        CHECK_RC(cpool_worker_stats(pool, (uint32_t)id, &st), 0);
        if (st.pid != pid) {
            CHECK_EQ(st.pid, pid);
            break;
        }
    }
    CHECK_EQ(cpool_worker_id(), -1); /* the parent is no worker */
    cpool_destroy(pool);
}

static void test_spawn_crash_timeout_cancel_lifespan(void) {
    cpool_pool_t *pool = pool_with(CPOOL_START_SPAWN, 2, NULL);
    CHECK(pool != NULL);
    if (!pool) return;
    cpool_fn_t crash = cpool_register(pool, "crash_at", "i64(i64)", (cpool_any_fn_t)t_crash_at, 0);
    cpool_fn_t sleepy = cpool_register(pool, "sleep_ms", "i64(i64)", (cpool_any_fn_t)t_sleep_ms, 0);
    enum { N = 2000 };
    static int64_t in[N], out[N];
    static cpool_status_t st[N];
    fill(in, N);
    for (size_t i = 0; i < N; i++)
        if (in[i] == 600 || in[i] == 700) in[i] = 1; /* one crash: SIGSEGV at 500 */
    CHECK_RC(cpool_map(pool, crash, in, 8, out, 8, N, 0, st), CPOOL_E_TASK_FAILED);
    int failed = 0;
    for (size_t i = 0; i < N; i++) {
        if (st[i].code) failed++;
        else if (out[i] != in[i] * in[i]) CHECK_EQ(out[i], in[i] * in[i]);
    }
    CHECK_EQ(failed, 1);
    CHECK_EQ(st[500].code, CPOOL_E_CRASHED);
    CHECK_EQ(st[500].detail, SIGSEGV);
    /* The pool goes on, with a spawned replacement. */
    int64_t x = 5, r = 0;
    CHECK_RC(cpool_apply(pool, crash, &x, 8, &r, 8, 0, NULL), 0);
    CHECK_EQ(r, 25);
    /* A task past its own timeout: its worker is killed. */
    x = 10000;
    CHECK_RC(cpool_apply(pool, sleepy, &x, 8, &r, 8, 100000000ull, NULL), CPOOL_E_TASK_TIMEOUT);
    /* A cancelled running task. */
    cpool_job_t *job = NULL;
    CHECK_RC(cpool_submit(pool, sleepy, &x, 8, &r, 8, 0, &job), 0);
    usleep(100000);
    CHECK_RC(cpool_job_cancel(job), 0);
    CHECK_RC(cpool_job_wait(job, 0), CPOOL_E_CANCELLED);
    cpool_job_free(job);
    x = 1;
    CHECK_RC(cpool_apply(pool, sleepy, &x, 8, &r, 8, 0, NULL), 0);
    CHECK(STAT_SUM(pool, restarts) >= 3);
    cpool_destroy(pool);
}

static void lifespan_of_50(cpool_options_t *o) { o->max_tasks_per_worker = 50; }

static void test_spawn_lifespan(void) {
    cpool_pool_t *pool = pool_with(CPOOL_START_SPAWN, 2, lifespan_of_50);
    CHECK(pool != NULL);
    if (!pool) return;
    cpool_fn_t def = cpool_register_defined(pool, "scale", 0);
    enum { N = 1000 };
    static int64_t in[N], out[N];
    fill(in, N);
    CHECK_RC(cpool_map(pool, def, in, 8, out, 8, N, 1, NULL), 0);
    for (size_t i = 0; i < N; i++)
        if (out[i] != 7 * in[i]) {
            CHECK_EQ(out[i], 7 * in[i]);
            break;
        }
    CHECK(STAT_SUM(pool, restarts) >= N / 50 - 2);
    CHECK_EQ(STAT_SUM(pool, crashes), 0);
    cpool_destroy(pool);
}

/* Exit values of the options' hook (by address, context as a value) and of the named
 * hooks, and hooks set for the next workers only. */
static void hooks_everywhere(cpool_options_t *o) {
    o->worker_exit = exit_by_address;
    o->hook_ctx = (void *)(intptr_t)4242;
    o->worker_init_name = "init_named";
    o->worker_exit_name = "exit_named";
}

typedef struct exits {
    int count;
    int64_t values[16][2];
} exits_t;

static void collect_exit(uint32_t worker, const void *bytes, size_t count, void *ctx) {
    exits_t *e = ctx;
    if (count != 16 || e->count == 16) return;
    memcpy(e->values[e->count], bytes, 16);
    (void)worker;
    e->count++;
}

static void check_hooks(uint32_t method) {
    cpool_pool_t *pool = pool_with(method, 2, hooks_everywhere);
    CHECK(pool != NULL);
    if (!pool) return;
    cpool_fn_t def = cpool_register_defined(pool, "scale", 0);
    int64_t x = 3, r = 0;
    CHECK_RC(cpool_apply(pool, def, &x, 8, &r, 8, 0, NULL), 0);
    CHECK_RC(cpool_set_worker_hooks(pool, NULL, NULL), -EBUSY); /* workers run */
    CHECK_RC(cpool_stop_workers(pool, 0), 0);
    exits_t e = {0};
    CHECK_EQ(cpool_take_exit_outputs(pool, collect_exit, &e), 4); /* 2 hooks × 2 workers */
    int by_address = 0, named = 0;
    for (int i = 0; i < e.count; i++) {
        if (e.values[i][1] == 4242) by_address++;
        else if (method != CPOOL_START_THREADS && e.values[i][1] != getpid()) named++;
        else if (method == CPOOL_START_THREADS && e.values[i][1] == getpid()) named++;
    }
    CHECK_EQ(by_address, 2);
    CHECK_EQ(named, 2);
    CHECK_EQ(cpool_take_exit_outputs(pool, collect_exit, &e), 0); /* taken once */
    /* Hooks for the next workers: an init that fails breaks the pool. */
    CHECK_RC(cpool_set_worker_hooks(pool, "failing_init", NULL), 0);
    CHECK_RC(cpool_start_workers(pool), CPOOL_E_WORKER_INIT);
    cpool_destroy(pool);
    /* An undefined hook name fails the start the same way, never a crash. */
    pool = pool_with(method, 1, NULL);
    CHECK_RC(cpool_stop_workers(pool, 0), 0);
    CHECK_RC(cpool_set_worker_hooks(pool, "no_such_hook", NULL), 0);
    CHECK_RC(cpool_start_workers(pool), CPOOL_E_WORKER_INIT);
    cpool_destroy(pool);
}

static void test_spawn_hooks(void) { check_hooks(CPOOL_START_SPAWN); }
static void test_thread_hooks(void) { check_hooks(CPOOL_START_THREADS); }

/* What a spawned worker does not have is a clear error for its tasks. */
static void test_spawn_names_the_worker_lacks(void) {
    cpool_pool_t *pool = pool_with(CPOOL_START_SPAWN, 1, NULL);
    CHECK_RC(cpool_register_defined(pool, "never_defined", 0), CPOOL_E_UNKNOWN_FUNCTION);
    cpool_destroy(pool);

    int64_t x = 2, r = 0;
    cpool_status_t st;
    setenv("TEST_SKIP_DEFINE", "1", 1); /* the workers' main() leaves "whoami" out */
    pool = pool_with(CPOOL_START_SPAWN, 1, NULL);
    unsetenv("TEST_SKIP_DEFINE");
    cpool_fn_t who = cpool_register_defined(pool, "whoami", 0);
    CHECK_RC(cpool_apply(pool, who, &x, 8, &r, 8, 0, &st), CPOOL_E_NOT_IN_WORKER);
    cpool_destroy(pool);

    setenv("TEST_OTHER_TYPE", "1", 1); /* the workers define "scale" with another type */
    pool = pool_with(CPOOL_START_SPAWN, 1, NULL);
    unsetenv("TEST_OTHER_TYPE");
    cpool_fn_t def = cpool_register_defined(pool, "scale", 0);
    CHECK_RC(cpool_apply(pool, def, &x, 8, &r, 8, 0, &st), CPOOL_E_SIGNATURE);
    /* The pool goes on with what the worker does know. */
    cpool_fn_t lib = cpool_register(pool, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    CHECK_RC(cpool_apply(pool, lib, &x, 8, &r, 8, 0, NULL), 0);
    CHECK_EQ(r, 4);
    cpool_destroy(pool);
}

static void with_executable(cpool_options_t *o) { o->executable = getenv("TEST_EXECUTABLE"); }
static void quick_start_limit(cpool_options_t *o) { o->init_timeout_ns = 300000000ull; }

/* Programs that do not serve: a clear error, never a hang or a swarm of processes. */
static void test_spawn_programs_that_do_not_serve(void) {
    cpool_pool_t *pool = NULL;
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 1;
    o.start_method = CPOOL_START_SPAWN;
    o.executable = "/nonexistent/program";
    CHECK_RC(cpool_create(&o, &pool), -ENOENT);

    setenv("TEST_EXECUTABLE", "/bin/true", 1); /* exits at once, never serves */
    pool = pool_with(CPOOL_START_SPAWN, 1, with_executable);
    cpool_fn_t lib = cpool_register(pool, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    int64_t x = 2, r = 0;
    CHECK_RC(cpool_apply(pool, lib, &x, 8, &r, 8, 0, NULL), CPOOL_E_SPAWN);
    cpool_destroy(pool);
    unsetenv("TEST_EXECUTABLE");

    setenv("TEST_NO_SERVE", "1", 1); /* main() makes a pool instead of serving */
    pool = pool_with(CPOOL_START_SPAWN, 1, NULL);
    unsetenv("TEST_NO_SERVE");
    lib = cpool_register(pool, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    CHECK_RC(cpool_apply(pool, lib, &x, 8, &r, 8, 0, NULL), CPOOL_E_SPAWN);
    cpool_destroy(pool);

    setenv("TEST_HANG", "1", 1); /* main() never gets to serve */
    pool = pool_with(CPOOL_START_SPAWN, 1, quick_start_limit);
    unsetenv("TEST_HANG");
    lib = cpool_register(pool, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    CHECK_RC(cpool_apply(pool, lib, &x, 8, &r, 8, 0, NULL), CPOOL_E_SPAWN);
    cpool_destroy(pool);
}

/* The parent killed with SIGKILL: its spawned workers go too. */
static void test_spawn_no_orphans(void) {
    int *pids = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(pids != MAP_FAILED);
    if (pids == MAP_FAILED) return;
    memset(pids, 0, 4096);
    pid_t child = fork();
    if (child == 0) {
        cpool_pool_t *pool = pool_with(CPOOL_START_SPAWN, 2, NULL);
        if (!pool) _exit(1);
        cpool_worker_stats_t st;
        for (uint32_t w = 0; w < 2; w++) {
            cpool_worker_stats(pool, w, &st);
            pids[w] = st.pid;
        }
        __atomic_store_n(&pids[2], 1, __ATOMIC_RELEASE);
        for (;;) pause();
    }
    for (int i = 0; i < 1000 && !__atomic_load_n(&pids[2], __ATOMIC_ACQUIRE); i++) usleep(10000);
    CHECK(pids[0] > 0 && pids[1] > 0);
    CHECK(process_alive(pids[0]) && process_alive(pids[1]));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    CHECK(wait_process_gone(pids[0], 1000));
    CHECK(wait_process_gone(pids[1], 1000));
    munmap(pids, 4096);
}

/* ------------------------------------------------------------ threads */

static void test_threads_run_the_same_calls(void) {
    cpool_pool_t *pool = pool_with(CPOOL_START_THREADS, 3, NULL);
    CHECK(pool != NULL);
    if (!pool) return;
    /* Any context pointer works: it is this process. */
    static scaler_t on_heap = {5};
    cpool_fn_t heap = cpool_register_batch(pool, "heap", scale_batch, &on_heap, 8, 8);
    cpool_fn_t who = cpool_register_batch(pool, "who", whoami_batch, NULL, 8, 8);
    cpool_fn_t lib = cpool_register(pool, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    enum { N = 30000 };
    static int64_t in[N], out[N];
    fill(in, N);
    CHECK_RC(cpool_map(pool, heap, in, 8, out, 8, N, 0, NULL), 0);
    CHECK_EQ(out[N - 1], 5 * (N - 1));
    CHECK_RC(cpool_map(pool, lib, in, 8, out, 8, N, 0, NULL), 0);
    CHECK_EQ(out[300], 90000);
    CHECK_RC(cpool_map(pool, who, in, 8, out, 8, N, 1, NULL), 0);
    int seen[3] = {0};
    for (size_t i = 0; i < N; i++) {
        const int id = (int)(out[i] >> 32), pid = (int)(uint32_t)out[i];
        if (id < 0 || id > 2 || pid != getpid()) {
            CHECK(id >= 0 && id <= 2 && pid == getpid());
            break;
        }
        seen[id] = 1;
    }
    CHECK(seen[0] + seen[1] + seen[2] >= 1);
    cpool_worker_stats_t st;
    CHECK_RC(cpool_worker_stats(pool, 0, &st), 0);
    CHECK_EQ(st.pid, getpid());
    cpool_destroy(pool);
}

static void lifespan_of_7(cpool_options_t *o) { o->max_tasks_per_worker = 7; }

static void test_threads_lifespan_and_cancel(void) {
    cpool_pool_t *pool = pool_with(CPOOL_START_THREADS, 2, lifespan_of_7);
    CHECK(pool != NULL);
    if (!pool) return;
    cpool_fn_t lib = cpool_register(pool, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    cpool_fn_t sleepy = cpool_register(pool, "sleep_ms", "i64(i64)", (cpool_any_fn_t)t_sleep_ms, 0);
    enum { N = 500 };
    static int64_t in[N], out[N];
    fill(in, N);
    CHECK_RC(cpool_map(pool, lib, in, 8, out, 8, N, 1, NULL), 0);
    CHECK_EQ(out[N - 1], (int64_t)(N - 1) * (N - 1));
    CHECK(STAT_SUM(pool, restarts) >= N / 7 - 2);
    /* Cancelling drops the tasks not started; running ones finish (a thread cannot be
     * stopped). */
    static int64_t waits[8] = {200, 200, 200, 200, 200, 200, 200, 200};
    static cpool_status_t st[8];
    cpool_job_t *job = NULL;
    CHECK_RC(cpool_map_start(pool, sleepy, waits, 8, out, 8, 8, 1, st, &job), 0);
    usleep(50000);
    CHECK_RC(cpool_job_cancel(job), 0);
    CHECK_RC(cpool_job_wait(job, 0), CPOOL_E_TASK_FAILED);
    int cancelled = 0, ran = 0;
    for (int i = 0; i < 8; i++) {
        if (st[i].code == CPOOL_E_CANCELLED) cancelled++;
        else if (st[i].code == 0) ran++;
    }
    CHECK(ran >= 1 && ran <= 4);
    CHECK_EQ(cancelled + ran, 8);
    cpool_job_free(job);
    /* What threads cannot do is refused, not pretended. */
    int64_t x = 1, r = 0;
    CHECK_RC(cpool_apply(pool, sleepy, &x, 8, &r, 8, 1000000000ull, NULL), CPOOL_E_START_METHOD);
    cpool_destroy(pool);
    cpool_options_t o;
    cpool_options_init(&o);
    o.start_method = CPOOL_START_THREADS;
    o.task_timeout_ns = 1000000000ull;
    CHECK_RC(cpool_create(&o, &pool), CPOOL_E_START_METHOD);
    o.task_timeout_ns = 0;
    o.max_memory_growth_bytes = 1 << 20;
    CHECK_RC(cpool_create(&o, &pool), CPOOL_E_START_METHOD);
    o.max_memory_growth_bytes = 0;
    o.start_method = 7;
    CHECK_RC(cpool_create(&o, &pool), -EINVAL);
}

static void test_threads_terminate_waits_for_running_tasks(void) {
    cpool_pool_t *pool = pool_with(CPOOL_START_THREADS, 2, NULL);
    CHECK(pool != NULL);
    if (!pool) return;
    cpool_fn_t sleepy = cpool_register(pool, "sleep_ms", "i64(i64)", (cpool_any_fn_t)t_sleep_ms, 0);
    static int64_t waits[6] = {100, 100, 100, 100, 100, 100}, out[6];
    static cpool_status_t st[6];
    cpool_job_t *job = NULL;
    CHECK_RC(cpool_map_start(pool, sleepy, waits, 8, out, 8, 6, 1, st, &job), 0);
    usleep(30000);
    CHECK_RC(cpool_terminate(pool), 0);
    CHECK_RC(cpool_join(pool, 0), 0);
    CHECK_RC(cpool_job_wait(job, 0), CPOOL_E_TASK_FAILED);
    for (int i = 0; i < 6; i++) CHECK(st[i].code == 0 || st[i].code == CPOOL_E_CANCELLED);
    cpool_job_free(job);
    cpool_destroy(pool);
}

int main(void) {
    define_everything();
    if (getenv("TEST_HANG")) {
        unsetenv("TEST_HANG");
        for (;;) pause(); /* a program whose main() never serves */
    }
    if (!getenv("TEST_NO_SERVE")) cpool_serve_if_spawned();
    else { /* a program whose main() makes a pool first: spawned, it must stop there */
        cpool_pool_t *pool = pool_with(CPOOL_START_FORK, 1, NULL);
        cpool_destroy(pool);
        return 0;
    }
    watchdog(120);
    RUN(test_definitions_are_listed_and_found);
    RUN(test_spawn_functions_by_every_route);
    RUN(test_spawn_worker_ids_and_shared_buffers);
    RUN(test_spawn_crash_timeout_cancel_lifespan);
    RUN(test_spawn_lifespan);
    RUN(test_spawn_hooks);
    RUN(test_spawn_names_the_worker_lacks);
    RUN(test_spawn_programs_that_do_not_serve);
    RUN(test_spawn_no_orphans);
    RUN(test_threads_run_the_same_calls);
    RUN(test_thread_hooks);
    RUN(test_threads_lifespan_and_cancel);
    RUN(test_threads_terminate_waits_for_running_tasks);
    return check_failures ? 1 : 0;
}
