/* Failure policies: crash retries, init and exit hook timeouts, memory-growth
 * recycling, the SIGTERM grace before SIGKILL, garbage completions from a worker, and
 * a stress run where 1% of 100,000 tasks kill their worker. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "check.h"
#include "pool.h"
#include "ring.h"
#include "testfns.h"

typedef struct page {
    _Atomic int attempts[1024];
    _Atomic int sigterm_seen;
    _Atomic int exits;
} page_t;
static page_t *pg;

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static cpool_pool_t *pool_opts(cpool_options_t *o) {
    cpool_pool_t *p = NULL;
    int rc = cpool_create(o, &p);
    CHECK_RC(rc, 0);
    return p;
}

/* Crashes the first `x / 1000` attempts of item x % 1000, then returns x. */
static int64_t flaky(int64_t x) {
    int item = (int)(x % 1000), crashes = (int)(x / 1000);
    if (atomic_fetch_add(&pg->attempts[item], 1) < crashes) raise(SIGSEGV);
    return x;
}

static void shouldRetryACrashedTaskUpToTheLimit(void) {
    memset(pg, 0, sizeof *pg);
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 2;
    o.crash_retries = 2;
    cpool_pool_t *p = pool_opts(&o);
    cpool_fn_t f = cpool_register(p, "flaky", "i64(i64)", (cpool_any_fn_t)flaky, 0);
    /* item 1 crashes once, item 2 twice (both recover), item 3 three times (fails) */
    int64_t in[4] = {0, 1001, 2002, 3003}, out[4];
    cpool_status_t st[4];
    CHECK_RC(cpool_map(p, f, in, 8, out, 8, 4, 1, st), CPOOL_E_TASK_FAILED);
    CHECK_EQ(st[0].code, 0);
    CHECK_EQ(st[1].code, 0);
    CHECK_EQ(out[1], 1001);
    CHECK_EQ(st[2].code, 0);
    CHECK_EQ(out[2], 2002);
    CHECK_EQ(st[3].code, CPOOL_E_CRASHED);
    CHECK_EQ(atomic_load(&pg->attempts[3]), 3); /* the first run and two retries */
    cpool_destroy(p);
}

static int sleepy_init(uint32_t id, void *ctx) {
    sleep(30);
    return 0;
}

static void shouldBreakThePoolWhenInitHooksHang(void) {
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 2;
    o.worker_init = sleepy_init;
    o.init_timeout_ns = 100 * 1000000ull;
    uint64_t t0 = now_ms();
    cpool_pool_t *p = pool_opts(&o);
    cpool_fn_t f = cpool_register(p, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    int64_t x = 2, r;
    CHECK_RC(cpool_apply(p, f, &x, 8, &r, 8, 0, NULL), CPOOL_E_WORKER_INIT);
    CHECK(now_ms() - t0 < 10000);
    cpool_destroy(p);
}

static int hanging_exit(uint32_t id, void *ctx) {
    atomic_fetch_add(&((page_t *)ctx)->exits, 1);
    sleep(30);
    return 0;
}

static void shouldKillAnExitHookThatHangs(void) {
    memset(pg, 0, sizeof *pg);
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 2;
    o.worker_exit = hanging_exit;
    o.hook_ctx = pg;
    o.exit_timeout_ns = 100 * 1000000ull;
    cpool_pool_t *p = pool_opts(&o);
    uint64_t t0 = now_ms();
    cpool_close(p);
    CHECK_RC(cpool_join(p, 20000000000ull), 0);
    CHECK(now_ms() - t0 < 10000);
    CHECK_EQ(atomic_load(&pg->exits), 2);
    cpool_destroy(p);
}

/* Leaks 8 MiB per call, touched so that it is resident. */
static char *volatile leaked; /* the allocations escape: the compiler may not drop them */

static int64_t leaky(int64_t x) {
    char *m = malloc(8 << 20);
    memset(m, 1, 8 << 20);
    m[0] = (char)(uintptr_t)leaked;
    leaked = m;
    return x;
}

static void shouldReplaceAWorkerWhoseMemoryGrows(void) {
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 1;
    o.max_memory_growth_bytes = 30ull << 20;
    cpool_pool_t *p = pool_opts(&o);
    cpool_fn_t f = cpool_register(p, "leaky", "i64(i64)", (cpool_any_fn_t)leaky, 0);
    int64_t in[20], out[20];
    for (int i = 0; i < 20; i++) in[i] = i;
    CHECK_RC(cpool_map(p, f, in, 8, out, 8, 20, 1, NULL), 0);
    for (int i = 0; i < 20; i++) CHECK_EQ(out[i], i);
    cpool_worker_stats_t s;
    cpool_worker_stats(p, 0, &s);
    CHECK(s.recycles >= 4); /* 160 MiB leaked in all, 30 MiB allowed a process */
    CHECK_EQ(s.crashes, 0);
    cpool_destroy(p);
}

static void on_sigterm(int sig) {
    atomic_store(&pg->sigterm_seen, 1);
    _exit(0);
}

static int install_sigterm(uint32_t id, void *ctx) {
    signal(SIGTERM, on_sigterm);
    return 0;
}

static void shouldSendSigtermBeforeSigkillWithAGrace(void) {
    memset(pg, 0, sizeof *pg);
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 1;
    o.worker_init = install_sigterm;
    o.kill_grace_ns = 2000 * 1000000ull;
    cpool_pool_t *p = pool_opts(&o);
    cpool_fn_t s = cpool_register(p, "sleep_ms", "i64(i64)", (cpool_any_fn_t)t_sleep_ms, 0);
    int64_t ms = 30000, r;
    cpool_status_t st;
    CHECK_RC(cpool_apply(p, s, &ms, 8, &r, 8, 100 * 1000000ull, &st), CPOOL_E_TASK_TIMEOUT);
    CHECK_EQ(atomic_load(&pg->sigterm_seen), 1); /* its handler ran */
    cpool_destroy(p);
}

static int ignoring_init(uint32_t id, void *ctx) {
    signal(SIGTERM, SIG_IGN);
    return 0;
}

static void shouldSigkillAfterTheGraceWhenSigtermIsIgnored(void) {
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 1;
    o.worker_init = ignoring_init;
    o.kill_grace_ns = 200 * 1000000ull;
    cpool_pool_t *p = pool_opts(&o);
    cpool_fn_t s = cpool_register(p, "sleep_ms", "i64(i64)", (cpool_any_fn_t)t_sleep_ms, 0);
    int64_t ms = 30000, r;
    uint64_t t0 = now_ms();
    CHECK_RC(cpool_apply(p, s, &ms, 8, &r, 8, 100 * 1000000ull, NULL), CPOOL_E_TASK_TIMEOUT);
    uint64_t took = now_ms() - t0;
    CHECK(took >= 250 && took < 10000); /* timeout + grace, then SIGKILL */
    cpool_destroy(p);
}

/* A worker that publishes garbage completions through its own result ring, as a bug
 * or a stray write in a task could. */
static cpool_pool_t *victim;
static cpool__region_t *victim_region;

static int64_t scribble(int64_t x) {
    cpool__region_t *r = victim_region;
    uint32_t w = (uint32_t)x; /* the test runs it on worker 0 only (one worker) */
    cpool__worker_ctl_t *c = &r->ctl[w];
    const uint32_t cap = r->header->ring_slots;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int k = 0; k < 64; k++) {
        uint64_t pos = cpool__ring_reserve(&c->from_worker.res_head, &c->to_worker.res_tail, cap);
        if (pos == UINT64_MAX) break;
        cpool__completion_t *rec = &cpool__result_ring(r, w)[cpool__ring_index(pos, cap)];
        unsigned char *b = (unsigned char *)rec;
        for (size_t i = 0; i < sizeof *rec; i++) {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            b[i] = (unsigned char)seed;
        }
        if (k % 4 == 0) rec->job_slot %= MAX_JOBS; /* sometimes a real slot */
        cpool__ring_publish(&c->from_worker.res_head, pos);
    }
    return x;
}

static void shouldIgnoreGarbageCompletionsFromAWorker(void) {
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 1;
    victim = pool_opts(&o);
    victim_region = &cpool__pool_internal(victim)->region;
    /* fresh workers, forked after `victim` was set, so that the task can find its ring */
    CHECK_RC(cpool_stop_workers(victim, 0), 0);
    CHECK_RC(cpool_start_workers(victim), 0);
    cpool_fn_t sc = cpool_register(victim, "scribble", "i64(i64)", (cpool_any_fn_t)scribble, 0);
    cpool_fn_t sq = cpool_register(victim, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    int64_t zero = 0, r = -1;
    CHECK_RC(cpool_apply(victim, sc, &zero, 8, &r, 8, 0, NULL), 0);
    CHECK_EQ(r, 0);
    int64_t in[1000], out[1000];
    for (int i = 0; i < 1000; i++) in[i] = i;
    CHECK_RC(cpool_map(victim, sq, in, 8, out, 8, 1000, 10, NULL), 0);
    for (int i = 0; i < 1000; i++) CHECK_EQ(out[i], i * i);
    uint64_t used = 1;
    cpool_arena_usage(victim, &used, NULL);
    CHECK_EQ(used, 0);
    cpool_destroy(victim);
}

static void shouldDeliverEveryResultOnceWhenOnePercentOfTasksKillTheirWorker(void) {
    cpool_pool_t *p = make_pool(2);
    cpool_fn_t f = cpool_register(p, "crash_at", "i64(i64)", (cpool_any_fn_t)t_crash_at, 0);
    enum { N = 100000 };
    int64_t *in = malloc(N * 8), *out = malloc(N * 8);
    cpool_status_t *st = malloc(N * sizeof *st);
    int deaths = 0;
    for (int i = 0; i < N; i++) {
        in[i] = (i % 100 == 42) ? 500 : i + 1000;
        deaths += in[i] == 500;
        st[i].code = 12345; /* must be overwritten exactly once */
    }
    CHECK_RC(cpool_map(p, f, in, 8, out, 8, N, 0, st), CPOOL_E_TASK_FAILED);
    int right = 0, crashed = 0, other = 0;
    for (int i = 0; i < N; i++) {
        if (in[i] == 500 && st[i].code == CPOOL_E_CRASHED) crashed++;
        else if (in[i] != 500 && st[i].code == 0 && out[i] == in[i] * in[i]) right++;
        else other++;
    }
    CHECK_EQ(crashed, deaths);
    CHECK_EQ(right, N - deaths);
    CHECK_EQ(other, 0);
    uint64_t used = 1;
    cpool_arena_usage(p, &used, NULL);
    CHECK_EQ(used, 0);
    free(in);
    free(out);
    free(st);
    cpool_destroy(p);
}

int main(void) {
    watchdog(170);
    pg = mmap(NULL, sizeof *pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    RUN(shouldRetryACrashedTaskUpToTheLimit);
    RUN(shouldBreakThePoolWhenInitHooksHang);
    RUN(shouldKillAnExitHookThatHangs);
    RUN(shouldReplaceAWorkerWhoseMemoryGrows);
    RUN(shouldSendSigtermBeforeSigkillWithAGrace);
    RUN(shouldSigkillAfterTheGraceWhenSigtermIsIgnored);
    RUN(shouldIgnoreGarbageCompletionsFromAWorker);
    RUN(shouldDeliverEveryResultOnceWhenOnePercentOfTasksKillTheirWorker);
    return finish();
}
