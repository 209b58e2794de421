/* The schedule adapts: no item waits behind a long one while a worker is idle. Each
 * test holds one item (the "gate") running until every other item of the map has run,
 * or gives up after GATE_LIMIT_S; it then reports whether it was released. A schedule
 * that leaves items queued behind the gate (in its chunk, or on its worker's ring)
 * never releases it. No timing is asserted: the gate waits on a count, not a clock. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "check.h"
#include "pool.h"

#ifndef GATE_LIMIT_S
#define GATE_LIMIT_S 20.0
#endif

typedef struct shared {
    _Atomic int64_t others_done;
    int64_t others;
    int64_t gate;
} shared_t;

/* Mapped shared before the pools fork their workers, so every process sees it. */
static shared_t *sh;

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The gate item returns 1 when the others all ran while it held, -1 when it gave up;
 * every other item counts itself and returns its input + 1000. */
static int64_t gated(int64_t x) {
    if (x == sh->gate) {
        const double end = seconds() + GATE_LIMIT_S;
        while (atomic_load(&sh->others_done) < sh->others)
            if (seconds() > end) return -1;
        return 1;
    }
    struct timespec ts = {0, 20000}; /* 20 us: enough to let a schedule misbehave */
    nanosleep(&ts, NULL);
    atomic_fetch_add(&sh->others_done, 1);
    return x + 1000;
}

/* A map of n items, item `gate` held, chunks of `chunk` (0: automatic); in and out in
 * the caller's memory or in the pool's shared buffers. */
static void map_with_gate(cpool_pool_t *p, size_t n, int64_t gate, size_t chunk, int shared) {
    cpool_fn_t f = cpool_lookup(p, "gated");
    if (f < 0) f = cpool_register(p, "gated", "int64_t(int64_t)", (cpool_any_fn_t)gated, 0);
    CHECK(f >= 0);
    int64_t *in = shared ? cpool_alloc(p, n * 8) : malloc(n * 8);
    int64_t *out = shared ? cpool_alloc(p, n * 8) : malloc(n * 8);
    cpool_status_t *st = malloc(n * sizeof *st);
    for (size_t i = 0; i < n; i++) in[i] = (int64_t)i;
    atomic_store(&sh->others_done, 0);
    sh->others = (int64_t)n - 1;
    sh->gate = gate;
    CHECK_RC(cpool_map(p, f, in, 8, out, 8, n, chunk, st), 0);
    CHECK_EQ(out[gate], 1); /* released: nothing waited behind it */
    size_t wrong = 0, other_worker = 0;
    for (size_t i = 0; i < n; i++) {
        if ((int64_t)i != gate) wrong += out[i] != (int64_t)i + 1000 || st[i].code != 0;
        other_worker += st[i].worker != st[gate].worker;
    }
    CHECK_EQ(wrong, 0);
    CHECK(other_worker > 0);
    if (shared) {
        cpool_free(p, in);
        cpool_free(p, out);
    } else {
        free(in);
        free(out);
    }
    free(st);
}

static cpool_pool_t *pool;

/* ------------------------------------------------------------ exactly once, rebalancing */

/* Runs of each item, counted in a shared mapping by the workers. */
enum { CHAOS_ITEMS = 3000 };
static _Atomic uint32_t *runs_of;

/* x = index | sleep_us << 24 | 1 << 40 for an item that kills its worker. */
static int64_t chaos(int64_t x) {
    atomic_fetch_add(&runs_of[x & 0xffffff], 1);
    if (x >> 40) raise(SIGKILL);
    const int64_t us = (x >> 24) & 0xffff;
    if (us) {
        struct timespec ts = {0, us * 1000};
        nanosleep(&ts, NULL);
    }
    return x & 0xffffff;
}

/* A skewed map (2% of items 3 ms, the others up to 40 us) on 3 workers, 1% of items
 * killing their worker, optionally cancelled part-way: whatever moved between workers,
 * every item ends exactly once and ran at most once — once when it succeeded or
 * crashed, at most once when it was cancelled. */
static void check_exactly_once_while_rebalancing(cpool_pool_t *p, size_t chunk, int cancel_after_ms) {
    enum { N = CHAOS_ITEMS };
    static int64_t in[N], out[N];
    static cpool_status_t st[N];
    memset((void *)runs_of, 0, N * sizeof *runs_of);
    uint64_t seed = 7;
    int deaths = 0;
    for (int i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        const int64_t us = (seed >> 33) % 50 == 0 ? 3000 : (int64_t)((seed >> 40) % 40);
        const int dies = (seed >> 20) % 100 == 0;
        in[i] = (int64_t)i | us << 24 | (dies ? (int64_t)1 << 40 : 0);
        deaths += dies;
    }
    cpool_fn_t f = cpool_lookup(p, "chaos");
    if (f < 0) f = cpool_register(p, "chaos", "int64_t(int64_t)", (cpool_any_fn_t)chaos, 0);
    cpool_job_t *job;
    CHECK_RC(cpool_map_start(p, f, in, 8, out, 8, N, chunk, st, &job), 0);
    if (cancel_after_ms) {
        usleep((useconds_t)cancel_after_ms * 1000);
        cpool_job_cancel(job);
    }
    const int rc = cpool_job_wait(job, 0);
    CHECK(rc == CPOOL_E_TASK_FAILED || (rc == 0 && deaths == 0));
    int wrong = 0, ok = 0, crashed = 0, cancelled = 0;
    for (int i = 0; i < N; i++) {
        const uint32_t runs = atomic_load(&runs_of[i]);
        if (st[i].code == 0) {
            ok++;
            wrong += runs != 1 || out[i] != i || (in[i] >> 40);
        } else if (st[i].code == CPOOL_E_CRASHED) {
            crashed++;
            wrong += runs != 1 || !(in[i] >> 40);
        } else if (st[i].code == CPOOL_E_CANCELLED) {
            cancelled++;
            wrong += runs > 1 || !cancel_after_ms;
        } else {
            wrong++;
        }
    }
    CHECK_EQ(wrong, 0);
    CHECK_EQ(ok + crashed + cancelled, N);
    if (!cancel_after_ms) CHECK_EQ(crashed, deaths);
    cpool_job_free(job);
}

static void shouldEndEveryItemExactlyOnceWhileRebalancingAndCrashing(void) {
    cpool_pool_t *p3 = make_pool(3);
    check_exactly_once_while_rebalancing(p3, 0, 0);
    check_exactly_once_while_rebalancing(p3, 1, 0);
    check_exactly_once_while_rebalancing(p3, 64, 0);
    cpool_destroy(p3);
}

static void shouldEndEveryItemExactlyOnceWhenCancelledWhileRebalancing(void) {
    cpool_pool_t *p3 = make_pool(3);
    check_exactly_once_while_rebalancing(p3, 0, 30);
    check_exactly_once_while_rebalancing(p3, 1, 30);
    check_exactly_once_while_rebalancing(p3, 64, 60);
    cpool_destroy(p3);
}

/* The gate first: with fixed chunks of n/4 its chunk holds a quarter of the input. */
static void shouldRunTheRestOfASlowItemsChunkElsewhere(void) {
    map_with_gate(pool, 400, 0, 100, 0);
}

/* The gate in the middle of an automatic (guided) chunk. */
static void shouldRunItemsBehindASlowOneElsewhereWithAutomaticChunks(void) {
    map_with_gate(pool, 1000, 3, 0, 0);
    map_with_gate(pool, 1000, 600, 0, 0);
}

/* Chunks of 1: the gate's worker has whole tasks queued behind it. */
static void shouldRunTasksQueuedBehindASlowOneElsewhere(void) {
    map_with_gate(pool, 300, 0, 1, 0);
}

/* Zero-copy buffers: the items taken back are read and written in place. */
static void shouldRebalanceInSharedBuffers(void) {
    map_with_gate(pool, 1000, 0, 0, 1);
}

/* Three workers: any idle one takes work from the one that holds the gate. */
static void shouldRebalanceOnMoreWorkers(void) {
    cpool_pool_t *p3 = make_pool(3);
    map_with_gate(p3, 900, 0, 0, 0);
    cpool_destroy(p3);
}

int main(void) {
    watchdog(150);
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) return 1;
    runs_of = mmap(NULL, CHAOS_ITEMS * sizeof *runs_of, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (runs_of == MAP_FAILED) return 1;
    pool = make_pool(2);
    RUN(shouldRunTheRestOfASlowItemsChunkElsewhere);
    RUN(shouldRunItemsBehindASlowOneElsewhereWithAutomaticChunks);
    RUN(shouldRunTasksQueuedBehindASlowOneElsewhere);
    RUN(shouldRebalanceInSharedBuffers);
    RUN(shouldRebalanceOnMoreWorkers);
    RUN(shouldEndEveryItemExactlyOnceWhileRebalancingAndCrashing);
    RUN(shouldEndEveryItemExactlyOnceWhenCancelledWhileRebalancing);
    cpool_destroy(pool);
    return finish();
}
