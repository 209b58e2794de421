/* A worker that dies fails exactly the task it ran; every other result arrives once;
 * the worker is replaced and the pool serves the next call. */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>

#include "check.h"
#include "testfns.h"

static cpool_pool_t *pool;
static cpool_fn_t crash;

static uint64_t total(uint64_t cpool_worker_stats_t_field_offset) {
    uint64_t sum = 0;
    for (int w = 0; w < cpool_worker_count(pool); w++) {
        cpool_worker_stats_t s;
        cpool_worker_stats(pool, (uint32_t)w, &s);
        sum += *(uint64_t *)((char *)&s + cpool_worker_stats_t_field_offset);
    }
    return sum;
}

static void check_map_with_one_death(int64_t killer, int want_detail, size_t chunk) {
    enum { N = 1000 };
    int64_t in[N], out[N];
    cpool_status_t st[N];
    for (int i = 0; i < N; i++) in[i] = i < 500 ? i : i + 1000; /* only `killer` kills */
    in[killer < 500 ? killer : 500] = killer;
    int at = killer < 500 ? (int)killer : 500;
    memset(out, 0, sizeof out);
    uint64_t crashes_before = total(offsetof(cpool_worker_stats_t, crashes));
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
    CHECK_EQ(total(offsetof(cpool_worker_stats_t, crashes)), crashes_before + 1);
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
    cpool_fn_t f = cpool_register(pool, "oom", "i64(i64)", (void *)killed_like_oom, 0);
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
        if (s.pid > 0 && kill(s.pid, 0) == 0) alive++;
    }
    /* a replacement may still be forking: give it a moment */
    for (int tries = 0; alive < 2 && tries < 100; tries++) {
        usleep(10000);
        alive = 0;
        for (uint32_t w = 0; w < 2; w++) {
            cpool_worker_stats_t s;
            cpool_worker_stats(pool, w, &s);
            if (s.pid > 0 && kill(s.pid, 0) == 0) alive++;
        }
    }
    CHECK_EQ(alive, 2);
}

int main(void) {
    watchdog(150);
    pool = make_pool(2);
    crash = cpool_register(pool, "crash_at", "int64_t(int64_t)", (void *)t_crash_at, 0);
    RUN(shouldFailOnlyTheTaskWhoseWorkerSegfaulted);
    RUN(shouldFailOnlyTheSegfaultingItemWithinALargeChunk);
    RUN(shouldFailOnlyTheSegfaultingItemWithChunksOfOne);
    RUN(shouldReportAbortAsSigabrt);
    RUN(shouldReportExitStatusOfAWorkerThatExits);
    RUN(shouldListOnlyTheFailedItemsOfAJob);
    RUN(shouldReportAWorkerKilledFromOutsideLikeTheOomKiller);
    RUN(shouldReportACrashedApplyAndKeepServing);
    RUN(shouldSurviveManyCrashesInOneMap);
    RUN(shouldKeepTheWorkerCountAfterCrashes);
    cpool_destroy(pool);
    return finish();
}
