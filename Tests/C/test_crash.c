/* A worker that dies fails exactly the task it ran; every other result arrives once;
 * the worker is replaced and the pool serves the next call. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/mman.h>
#include <string.h>

#include "check.h"
#include "testfns.h"

static cpool_pool_t *pool;
static cpool_fn_t crash;

/* Runs of each item, counted in a shared page by the workers (exactly-once test). */
enum { ONCE_ITEMS = 20000 };
static _Atomic uint32_t *runs_of;

/* x = index, plus 1 << 40 for an item that kills its worker. */
static int64_t count_run(int64_t x) {
    atomic_fetch_add(&runs_of[x & 0xffffff], 1);
    if (x >> 40) raise(SIGSEGV);
    return x & 0xffffff;
}

static void check_map_with_one_death(int64_t killer, int want_detail, size_t chunk) {
    enum { N = 1000 };
    int64_t in[N], out[N];
    cpool_status_t st[N];
    for (int i = 0; i < N; i++) in[i] = i < 500 ? i : i + 1000; /* only `killer` kills */
    in[killer < 500 ? killer : 500] = killer;
    int at = killer < 500 ? (int)killer : 500;
    memset(out, 0, sizeof out);
    uint64_t crashes_before = STAT_SUM(pool, crashes);
    CHECK_RC(cpool_map(pool, crash, in, 8, out, 8, N, chunk, st), CPOOL_E_TASK_FAILED);
    int failed = 0, right = 0;
    for (int i = 0; i < N; i++) {
        if (st[i].code) failed++;
        else right += out[i] == in[i] * in[i];
    }
    CHECK_EQ(failed, 1);
    CHECK_EQ(right, N - 1);
    CHECK_EQ(st[at].code, CPOOL_E_CRASHED);
    CHECK_EQ(st[at].detail, want_detail);
    CHECK_EQ(STAT_SUM(pool, crashes), crashes_before + 1);
    /* and the next map works on the replaced worker */
    for (int i = 0; i < N; i++) in[i] = i + 1000;
    CHECK_RC(cpool_map(pool, crash, in, 8, out, 8, N, chunk, NULL), 0);
    for (int i = 0; i < N; i++) CHECK_EQ(out[i], in[i] * in[i]);
}

static void shouldFailOnlyTheTaskWhoseWorkerSegfaulted(void) {
    check_map_with_one_death(500, SIGSEGV, 0);
}
static void shouldFailOnlyTheSegfaultingItemWithinALargeChunk(void) {
    check_map_with_one_death(500, SIGSEGV, 1000); /* one chunk holds all 1000 */
}
static void shouldFailOnlyTheSegfaultingItemWithChunksOfOne(void) {
    check_map_with_one_death(500, SIGSEGV, 1);
}
static void shouldReportAbortAsSigabrt(void) { check_map_with_one_death(600, SIGABRT, 0); }
static void shouldReportExitStatusOfAWorkerThatExits(void) {
    check_map_with_one_death(700, 1000 + 3, 0);
}

static void shouldListOnlyTheFailedItemsOfAJob(void) {
    enum { N = 3000 };
    static int64_t in[N], out[N];
    for (int i = 0; i < N; i++) in[i] = i + 1000;
    in[10] = in[2000] = 500;
    cpool_job_t *job;
    CHECK_RC(cpool_map_start(pool, crash, in, 8, out, 8, N, 0, NULL, &job), 0);
    CHECK_RC(cpool_job_failures(job, NULL, NULL, 0), -EBUSY);
    CHECK_RC(cpool_job_wait(job, 0), CPOOL_E_TASK_FAILED);
    size_t idx[4];
    cpool_status_t st[4];
    CHECK_EQ(cpool_job_failures(job, idx, st, 4), 2);
    CHECK((idx[0] == 10 && idx[1] == 2000) || (idx[0] == 2000 && idx[1] == 10));
    CHECK_EQ(st[0].code, CPOOL_E_CRASHED);
    CHECK_EQ(st[1].detail, SIGSEGV);
    cpool_job_free(job);
}

static int64_t killed_like_oom(int64_t x) {
    if (x == 13) kill(getpid(), SIGKILL); /* what the kernel's OOM killer does */
    return x;
}

static void shouldReportAWorkerKilledFromOutsideLikeTheOomKiller(void) {
    cpool_fn_t f = cpool_register(pool, "oom", "i64(i64)", (cpool_any_fn_t)killed_like_oom, 0);
    int64_t in[40], out[40];
    cpool_status_t st[40];
    for (int i = 0; i < 40; i++) in[i] = i;
    CHECK_RC(cpool_map(pool, f, in, 8, out, 8, 40, 4, st), CPOOL_E_TASK_FAILED);
    for (int i = 0; i < 40; i++) {
        if (i == 13) {
            CHECK_EQ(st[i].code, CPOOL_E_CRASHED);
            CHECK_EQ(st[i].detail, SIGKILL);
        } else {
            CHECK_EQ(st[i].code, 0);
            CHECK_EQ(out[i], i);
        }
    }
}

static void shouldReportACrashedApplyAndKeepServing(void) {
    int64_t x = 500, r = 0;
    cpool_status_t st;
    CHECK_RC(cpool_apply(pool, crash, &x, 8, &r, 8, 0, &st), CPOOL_E_CRASHED);
    CHECK_EQ(st.code, CPOOL_E_CRASHED);
    CHECK_EQ(st.detail, SIGSEGV);
    x = 7;
    CHECK_RC(cpool_apply(pool, crash, &x, 8, &r, 8, 0, &st), 0);
    CHECK_EQ(r, 49);
}

static void shouldSurviveManyCrashesInOneMap(void) {
    enum { N = 20000 };
    static int64_t in[N], out[N];
    static cpool_status_t st[N];
    int deaths = 0;
    for (int i = 0; i < N; i++) {
        in[i] = (i % 100 == 37) ? 500 : i + 1000; /* 1% of them kill their worker */
        deaths += in[i] == 500;
    }
    uint64_t used = 1;
    CHECK_RC(cpool_map(pool, crash, in, 8, out, 8, N, 0, st), CPOOL_E_TASK_FAILED);
    int failed = 0, right = 0;
    for (int i = 0; i < N; i++) {
        if (in[i] == 500) failed += st[i].code == CPOOL_E_CRASHED;
        else right += st[i].code == 0 && out[i] == in[i] * in[i];
    }
    CHECK_EQ(failed, deaths);
    CHECK_EQ(right, N - deaths);
    cpool_arena_usage(pool, &used, NULL);
    CHECK_EQ(used, 0); /* every extent came back, dead writers or not */
}

static void shouldKeepTheWorkerCountAfterCrashes(void) {
    CHECK_EQ(cpool_worker_count(pool), 2);
    int alive = 0;
    for (uint32_t w = 0; w < 2; w++) {
        cpool_worker_stats_t s;
        cpool_worker_stats(pool, w, &s);
        if (s.pid > 0 && process_alive(s.pid)) alive++;
    }
    /* a replacement may still be forking: give it a moment */
    for (int tries = 0; alive < 2 && tries < 100; tries++) {
        usleep(10000);
        alive = 0;
        for (uint32_t w = 0; w < 2; w++) {
            cpool_worker_stats_t s;
            cpool_worker_stats(pool, w, &s);
            if (s.pid > 0 && process_alive(s.pid)) alive++;
        }
    }
    CHECK_EQ(alive, 2);
}

/* "Exactly once": every item that did not crash ran once (a re-run or a double
 * delivery would show as 2), each crashing item ran once and failed, and the
 * statistics count exactly the items that completed and the processes that died. */
static void check_exactly_once(size_t chunk) {
    enum { N = ONCE_ITEMS };
    static int64_t in[N], out[N];
    static cpool_status_t st[N];
    memset((void *)runs_of, 0, N * sizeof *runs_of);
    int deaths = 0;
    for (int i = 0; i < N; i++) {
        int dies = i % 100 == 37;
        in[i] = (int64_t)i | (dies ? (int64_t)1 << 40 : 0);
        deaths += dies;
    }
    cpool_fn_t f = cpool_lookup(pool, "count_run");
    uint64_t done_before = STAT_SUM(pool, tasks_done), crashes_before = STAT_SUM(pool, crashes);
    CHECK_RC(cpool_map(pool, f, in, 8, out, 8, N, chunk, st), CPOOL_E_TASK_FAILED);
    int once = 0, crashed_once = 0;
    for (int i = 0; i < N; i++) {
        uint32_t runs = atomic_load(&runs_of[i]);
        if (in[i] >> 40) crashed_once += runs == 1 && st[i].code == CPOOL_E_CRASHED;
        else once += runs == 1 && st[i].code == 0 && out[i] == i;
    }
    CHECK_EQ(once, N - deaths);
    CHECK_EQ(crashed_once, deaths);
    CHECK_EQ(STAT_SUM(pool, tasks_done) - done_before, N - deaths);
    CHECK_EQ(STAT_SUM(pool, crashes) - crashes_before, deaths);
}

static void shouldRunEveryItemExactlyOnceWithAutomaticChunks(void) { check_exactly_once(0); }
static void shouldRunEveryItemExactlyOnceWithChunksOfOne(void) { check_exactly_once(1); }
static void shouldRunEveryItemExactlyOnceWithLargeChunks(void) { check_exactly_once(5000); }

static int64_t bus_error(int64_t x) {
    if (x == 3) raise(SIGBUS); /* what touching a truncated mapped file does */
    return x;
}

static void shouldReportSigbusAsACrash(void) {
    cpool_fn_t f = cpool_lookup(pool, "bus_error");
    int64_t in[8] = {0, 1, 2, 3, 4, 5, 6, 7}, out[8];
    cpool_status_t st[8];
    CHECK_RC(cpool_map(pool, f, in, 8, out, 8, 8, 2, st), CPOOL_E_TASK_FAILED);
    for (int i = 0; i < 8; i++) {
        if (i == 3) {
            CHECK_EQ(st[i].code, CPOOL_E_CRASHED);
            CHECK_EQ(st[i].detail, SIGBUS);
        } else {
            CHECK_EQ(st[i].code, 0);
            CHECK_EQ(out[i], i);
        }
    }
}

/* The failures list: the count of all of them, the first `max` written, in the order
 * the items ended (one worker, chunks of one: index order). */
static void shouldListTheFirstFailuresInTheOrderTheyEnded(void) {
    cpool_pool_t *p = make_pool(1);
    cpool_fn_t rev = cpool_register(p, "reverse", "int64_t(const void*,size_t,void*,size_t)",
                                    (cpool_any_fn_t)t_reverse, 0);
    char in[12][8], out[12][8];
    for (int i = 0; i < 12; i++) memcpy(in[i], i % 4 == 1 ? "Xfails.." : "abcdefgh", 8);
    cpool_job_t *job;
    CHECK_RC(cpool_map_start(p, rev, in, 8, out, 8, 12, 1, NULL, &job), 0);
    CHECK_RC(cpool_job_wait(job, 0), CPOOL_E_TASK_FAILED);
    size_t idx[3] = {777, 777, 777};
    cpool_status_t st[3];
    memset(st, 0x55, sizeof st);
    CHECK_EQ(cpool_job_failures(job, idx, st, 2), 3);
    CHECK_EQ(idx[0], 1);
    CHECK_EQ(idx[1], 5);
    CHECK_EQ(idx[2], 777); /* not written past max */
    CHECK_EQ(st[0].code, CPOOL_E_FUNCTION_ERROR);
    CHECK_EQ(st[1].detail, -7);
    CHECK_EQ(st[2].code, 0x55555555);
    CHECK_EQ(cpool_job_failures(job, idx, NULL, 3), 3);
    CHECK_EQ(idx[2], 9);
    cpool_job_free(job);
    cpool_destroy(p);
}

/* Items cancelled before any worker held them say so: worker -1. */
static void shouldMarkItemsNeverDispatchedWithNoWorker(void) {
    cpool_pool_t *p = make_pool(1);
    cpool_fn_t s = cpool_register(p, "sleep_ms", "int64_t(int64_t)", (cpool_any_fn_t)t_sleep_ms, 0);
    enum { N = 100 };
    int64_t in[N], out[N];
    cpool_status_t st[N];
    for (int i = 0; i < N; i++) in[i] = 20;
    cpool_job_t *job;
    CHECK_RC(cpool_map_start(p, s, in, 8, out, 8, N, 1, st, &job), 0);
    usleep(50000);
    CHECK_RC(cpool_job_cancel(job), 0);
    CHECK_RC(cpool_job_wait(job, 0), CPOOL_E_TASK_FAILED);
    int ran = 0, never = 0, other = 0;
    for (int i = 0; i < N; i++) {
        if (st[i].code == 0) ran += st[i].worker == 0 && out[i] == 20;
        else if (st[i].code == CPOOL_E_CANCELLED && st[i].worker == -1) never++;
        else other += st[i].code != CPOOL_E_CANCELLED || st[i].worker != 0;
    }
    CHECK(ran >= 1);
    CHECK(never >= N / 2);
    CHECK_EQ(other, 0);
    cpool_job_free(job);
    cpool_destroy(p);
}

int main(void) {
    watchdog(150);
    pool = make_pool(2);
    runs_of = mmap(NULL, ONCE_ITEMS * sizeof *runs_of, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    crash = cpool_register(pool, "crash_at", "int64_t(int64_t)", (cpool_any_fn_t)t_crash_at, 0);
    cpool_register(pool, "count_run", "int64_t(int64_t)", (cpool_any_fn_t)count_run, 0);
    cpool_register(pool, "bus_error", "int64_t(int64_t)", (cpool_any_fn_t)bus_error, 0);
    RUN(shouldFailOnlyTheTaskWhoseWorkerSegfaulted);
    RUN(shouldFailOnlyTheSegfaultingItemWithinALargeChunk);
    RUN(shouldFailOnlyTheSegfaultingItemWithChunksOfOne);
    RUN(shouldReportAbortAsSigabrt);
    RUN(shouldReportExitStatusOfAWorkerThatExits);
    RUN(shouldListOnlyTheFailedItemsOfAJob);
    RUN(shouldReportAWorkerKilledFromOutsideLikeTheOomKiller);
    RUN(shouldReportACrashedApplyAndKeepServing);
    RUN(shouldSurviveManyCrashesInOneMap);
    RUN(shouldRunEveryItemExactlyOnceWithAutomaticChunks);
    RUN(shouldRunEveryItemExactlyOnceWithChunksOfOne);
    RUN(shouldRunEveryItemExactlyOnceWithLargeChunks);
    RUN(shouldReportSigbusAsACrash);
    RUN(shouldListTheFirstFailuresInTheOrderTheyEnded);
    RUN(shouldMarkItemsNeverDispatchedWithNoWorker);
    RUN(shouldKeepTheWorkerCountAfterCrashes);
    cpool_destroy(pool);
    return finish();
}
