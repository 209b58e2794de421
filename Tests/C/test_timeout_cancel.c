/* Tasks that run too long are killed with their worker and reported as timed out;
 * cancelled jobs end at once, running ones by killing their worker. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "testfns.h"

static cpool_pool_t *pool;
static cpool_fn_t sleeper, square;

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void shouldKillAnApplyPastItsTimeout(void) {
    int64_t ms = 60000, r = 0;
    cpool_status_t st;
    uint64_t t0 = now_ms();
    CHECK_RC(cpool_apply(pool, sleeper, &ms, 8, &r, 8, 100 * 1000000ull, &st), CPOOL_E_TASK_TIMEOUT);
    CHECK(now_ms() - t0 < 10000);
    CHECK_EQ(st.code, CPOOL_E_TASK_TIMEOUT);
    ms = 5;
    CHECK_RC(cpool_apply(pool, sleeper, &ms, 8, &r, 8, 5000 * 1000000ull, &st), 0);
    CHECK_EQ(r, 5);
    uint64_t timeouts = 0;
    for (uint32_t w = 0; w < 2; w++) {
        cpool_worker_stats_t s;
        cpool_worker_stats(pool, w, &s);
        timeouts += s.timeouts;
    }
    CHECK_EQ(timeouts, 1);
}

static void shouldTimeOutOnlyTheSlowItemsOfAMap(void) {
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 2;
    o.task_timeout_ns = 200 * 1000000ull;
    cpool_pool_t *p;
    CHECK_RC(cpool_create(&o, &p), 0);
    cpool_fn_t s = cpool_register(p, "sleep_ms", "int64_t(int64_t)", (void *)t_sleep_ms, 0);
    int64_t in[20], out[20];
    cpool_status_t st[20];
    for (int i = 0; i < 20; i++) in[i] = (i == 3 || i == 15) ? 30000 : 1;
    CHECK_RC(cpool_map(p, s, in, 8, out, 8, 20, 1, st), CPOOL_E_TASK_FAILED);
    for (int i = 0; i < 20; i++) {
        if (i == 3 || i == 15) CHECK_EQ(st[i].code, CPOOL_E_TASK_TIMEOUT);
        else {
            CHECK_EQ(st[i].code, 0);
            CHECK_EQ(out[i], 1);
        }
    }
    cpool_destroy(p);
}

static void shouldCancelARunningTaskByKillingItsWorker(void) {
    int64_t ms = 60000, r = 0;
    cpool_job_t *job;
    CHECK_RC(cpool_submit(pool, sleeper, &ms, 8, &r, 8, 0, &job), 0);
    usleep(50000); /* let it start */
    uint64_t t0 = now_ms();
    CHECK_RC(cpool_job_cancel(job), 0);
    CHECK_RC(cpool_job_wait(job, 0), CPOOL_E_CANCELLED);
    CHECK(now_ms() - t0 < 5000);
    CHECK_RC(cpool_job_cancel(job), -EALREADY);
    cpool_job_free(job);
    int64_t x = 9;
    CHECK_RC(cpool_apply(pool, square, &x, 8, &r, 8, 0, NULL), 0);
    CHECK_EQ(r, 81);
}

static void shouldCancelQueuedItemsOfAMapAtOnce(void) {
    enum { N = 400 };
    static int64_t in[N], out[N];
    static cpool_status_t st[N];
    for (int i = 0; i < N; i++) in[i] = 20; /* 20 ms each: 4 s of work on two workers */
    cpool_job_t *job;
    CHECK_RC(cpool_map_start(pool, sleeper, in, 8, out, 8, N, 1, st, &job), 0);
    usleep(100000);
    uint64_t t0 = now_ms();
    CHECK_RC(cpool_job_cancel(job), 0);
    CHECK_RC(cpool_job_wait(job, 0), CPOOL_E_TASK_FAILED);
    CHECK(now_ms() - t0 < 3000);
    int ok = 0, cancelled = 0;
    for (int i = 0; i < N; i++) {
        if (st[i].code == 0) ok += out[i] == 20;
        else cancelled += st[i].code == CPOOL_E_CANCELLED;
    }
    CHECK_EQ(ok + cancelled, N);
    CHECK(cancelled > N / 2);
    cpool_job_free(job);
    uint64_t used = 1;
    cpool_arena_usage(pool, &used, NULL);
    CHECK_EQ(used, 0);
}

static void shouldRunAnInnocentTaskAgainWhenItsWorkerWasKilledForAnother(void) {
    /* Cancel a job whose task just ended: the worker may already run the next job's
     * task when the kill lands; that task must not be reported as cancelled. */
    for (int round = 0; round < 20; round++) {
        int64_t ms = 1 + round % 3, r1 = 0, x = 4 + round, r2 = 0;
        cpool_job_t *a, *b;
        CHECK_RC(cpool_submit(pool, sleeper, &ms, 8, &r1, 8, 0, &a), 0);
        CHECK_RC(cpool_submit(pool, square, &x, 8, &r2, 8, 0, &b), 0);
        usleep(1000);
        cpool_job_cancel(a);
        CHECK_RC(cpool_job_wait(b, 0), 0);
        CHECK_EQ(r2, x * x);
        cpool_job_wait(a, 0);
        cpool_job_free(a);
        cpool_job_free(b);
    }
}

int main(void) {
    watchdog(150);
    pool = make_pool(2);
    sleeper = cpool_register(pool, "sleep_ms", "int64_t(int64_t)", (void *)t_sleep_ms, 0);
    square = cpool_register(pool, "square", "int64_t(int64_t)", (void *)t_square, 0);
    RUN(shouldKillAnApplyPastItsTimeout);
    RUN(shouldTimeOutOnlyTheSlowItemsOfAMap);
    RUN(shouldCancelARunningTaskByKillingItsWorker);
    RUN(shouldCancelQueuedItemsOfAMapAtOnce);
    RUN(shouldRunAnInnocentTaskAgainWhenItsWorkerWasKilledForAnother);
    cpool_destroy(pool);
    return finish();
}
