/* Worker lifecycle: init and exit hooks, lifespan, close/join, terminate, and a pool
 * whose workers cannot initialise. Hooks report through a shared page (an assertion
 * in a child process would be lost). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include "check.h"
#include "testfns.h"

typedef struct counters {
    _Atomic int inits, exits;
    _Atomic int init_ids[16];
} counters_t;

static counters_t *shared;

static int on_init(uint32_t id, void *ctx) {
    counters_t *c = ctx;
    atomic_fetch_add(&c->inits, 1);
    if (id < 16) atomic_fetch_add(&c->init_ids[id], 1);
    return 0;
}
static int on_exit_hook(uint32_t id, void *ctx) {
    atomic_fetch_add(&((counters_t *)ctx)->exits, 1);
    return 0;
}
static int failing_init(uint32_t id, void *ctx) { return 1; }

static cpool_pool_t *pool_with(uint32_t workers, uint64_t lifespan, cpool_worker_hook_t init,
                               cpool_worker_hook_t fini) {
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = workers;
    o.max_tasks_per_worker = lifespan;
    o.worker_init = init;
    o.worker_exit = fini;
    o.hook_ctx = shared;
    cpool_pool_t *p = NULL;
    int rc = cpool_create(&o, &p);
    CHECK_RC(rc, 0);
    return p;
}

static void shouldRunInitAndExitHooksOncePerWorker(void) {
    memset(shared, 0, sizeof *shared);
    cpool_pool_t *p = pool_with(3, 0, on_init, on_exit_hook);
    cpool_fn_t f = cpool_register(p, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    int64_t in[100], out[100];
    for (int i = 0; i < 100; i++) in[i] = i;
    CHECK_RC(cpool_map(p, f, in, 8, out, 8, 100, 1, NULL), 0);
    CHECK_RC(cpool_close(p), 0);
    CHECK_RC(cpool_join(p, 10000000000ull), 0);
    CHECK_EQ(atomic_load(&shared->inits), 3);
    CHECK_EQ(atomic_load(&shared->exits), 3);
    for (int i = 0; i < 3; i++) CHECK_EQ(atomic_load(&shared->init_ids[i]), 1);
    cpool_destroy(p);
}

static void shouldReplaceWorkersAfterTheirLifespan(void) {
    memset(shared, 0, sizeof *shared);
    cpool_pool_t *p = pool_with(2, 10, on_init, on_exit_hook);
    cpool_fn_t getpid_fn = cpool_register(p, "getpid", "i64(i64)", (cpool_any_fn_t)t_getpid, 0);
    int64_t in[100] = {0}, pids[100];
    CHECK_RC(cpool_map(p, getpid_fn, in, 8, pids, 8, 100, 1, NULL), 0);
    /* 100 tasks, 10 per process: at least 10 distinct processes ran them */
    int distinct = 0;
    for (int i = 0; i < 100; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= pids[j] == pids[i];
        distinct += !seen;
    }
    CHECK(distinct >= 10);
    uint64_t restarts = 0, done = 0;
    for (uint32_t w = 0; w < 2; w++) {
        cpool_worker_stats_t s;
        cpool_worker_stats(p, w, &s);
        restarts += s.restarts;
        done += s.tasks_done;
        CHECK_EQ(s.crashes, 0);
    }
    CHECK(restarts >= 8);
    CHECK_EQ(done, 100);
    cpool_close(p);
    CHECK_RC(cpool_join(p, 10000000000ull), 0);
    /* each retired process ran its exit hook */
    CHECK_EQ(atomic_load(&shared->exits), atomic_load(&shared->inits));
    cpool_destroy(p);
}

static void shouldFinishSubmittedWorkOnCloseAndJoin(void) {
    cpool_pool_t *p = pool_with(2, 0, NULL, NULL);
    cpool_fn_t s = cpool_register(p, "sleep_ms", "i64(i64)", (cpool_any_fn_t)t_sleep_ms, 0);
    cpool_job_t *jobs[6];
    int64_t ms = 50, r[6] = {0};
    for (int i = 0; i < 6; i++) CHECK_RC(cpool_submit(p, s, &ms, 8, &r[i], 8, 0, &jobs[i]), 0);
    CHECK_RC(cpool_join(p, 0), -EINVAL); /* still open */
    CHECK_RC(cpool_close(p), 0);
    CHECK_RC(cpool_join(p, 10000000000ull), 0);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(cpool_job_done(jobs[i]), 1);
        CHECK_RC(cpool_job_wait(jobs[i], 0), 0);
        CHECK_EQ(r[i], 50);
        cpool_job_free(jobs[i]);
    }
    for (uint32_t w = 0; w < 2; w++) {
        cpool_worker_stats_t st;
        cpool_worker_stats(p, w, &st);
        CHECK_EQ(st.pid, 0);
    }
    cpool_destroy(p);
}

static void shouldTimeOutAJoinWhileATaskRuns(void) {
    cpool_pool_t *p = pool_with(1, 0, NULL, NULL);
    cpool_fn_t s = cpool_register(p, "sleep_ms", "i64(i64)", (cpool_any_fn_t)t_sleep_ms, 0);
    int64_t ms = 60000, r;
    cpool_job_t *job;
    CHECK_RC(cpool_submit(p, s, &ms, 8, &r, 8, 0, &job), 0);
    cpool_close(p);
    CHECK_RC(cpool_join(p, 50000000ull), -ETIMEDOUT);
    CHECK_RC(cpool_terminate(p), 0);
    CHECK_RC(cpool_job_wait(job, 0), CPOOL_E_CANCELLED);
    CHECK_RC(cpool_join(p, 10000000000ull), 0);
    cpool_job_free(job);
    cpool_destroy(p);
}

static void shouldTerminateRunningAndQueuedWork(void) {
    cpool_pool_t *p = pool_with(2, 0, NULL, NULL);
    cpool_fn_t s = cpool_register(p, "sleep_ms", "i64(i64)", (cpool_any_fn_t)t_sleep_ms, 0);
    int64_t in[50], out[50];
    cpool_status_t st[50];
    for (int i = 0; i < 50; i++) in[i] = 60000;
    cpool_job_t *job;
    CHECK_RC(cpool_map_start(p, s, in, 8, out, 8, 50, 1, st, &job), 0);
    usleep(50000);
    pid_t pids[2];
    for (uint32_t w = 0; w < 2; w++) {
        cpool_worker_stats_t ws;
        cpool_worker_stats(p, w, &ws);
        pids[w] = ws.pid;
    }
    CHECK_RC(cpool_terminate(p), 0);
    CHECK_RC(cpool_job_wait(job, 0), CPOOL_E_TASK_FAILED);
    for (int i = 0; i < 50; i++) CHECK_EQ(st[i].code, CPOOL_E_CANCELLED);
    CHECK_RC(cpool_join(p, 10000000000ull), 0);
    for (int w = 0; w < 2; w++) CHECK(kill(pids[w], 0) != 0); /* gone and reaped */
    cpool_job_free(job);
    cpool_destroy(p);
}

static void shouldBreakThePoolWhenWorkersCannotInitialise(void) {
    cpool_pool_t *p = pool_with(2, 0, failing_init, NULL);
    if (!p) return;
    cpool_fn_t f = cpool_register(p, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    int64_t x = 3, r = 0;
    int rc = cpool_apply(p, f, &x, 8, &r, 8, 0, NULL);
    CHECK_RC(rc, CPOOL_E_WORKER_INIT);
    CHECK_RC(cpool_apply(p, f, &x, 8, &r, 8, 0, NULL), CPOOL_E_WORKER_INIT);
    cpool_destroy(p);
}

static int64_t *late_ctx;

static void shouldStopAndStartFreshWorkersThatSeeNewData(void) {
    memset(shared, 0, sizeof *shared);
    cpool_pool_t *p = pool_with(2, 0, on_init, on_exit_hook);
    cpool_fn_t sq = cpool_register(p, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    int64_t in[100], out[100];
    for (int i = 0; i < 100; i++) in[i] = i;
    CHECK_RC(cpool_map(p, sq, in, 8, out, 8, 100, 0, NULL), 0);
    pid_t before[2];
    for (uint32_t w = 0; w < 2; w++) {
        cpool_worker_stats_t s;
        cpool_worker_stats(p, w, &s);
        before[w] = s.pid;
    }
    CHECK_RC(cpool_stop_workers(p, 10000000000ull), 0);
    CHECK_EQ(atomic_load(&shared->exits), 2); /* exit hooks ran */
    for (uint32_t w = 0; w < 2; w++) {
        cpool_worker_stats_t s;
        cpool_worker_stats(p, w, &s);
        CHECK_EQ(s.pid, 0);
    }
    /* work submitted while stopped waits */
    int64_t x = 6, r = 0;
    cpool_job_t *job;
    CHECK_RC(cpool_submit(p, sq, &x, 8, &r, 8, 0, &job), 0);
    CHECK_RC(cpool_job_wait(job, 50000000ull), -ETIMEDOUT);
    /* data made now is seen by the fresh workers */
    late_ctx = malloc(sizeof *late_ctx);
    *late_ctx = 7;
    cpool_fn_t bf = cpool_register_batch(p, "late_batch", t_batch_square, late_ctx, 8, 8);
    CHECK_RC(cpool_start_workers(p), 0);
    CHECK_RC(cpool_job_wait(job, 0), 0);
    CHECK_EQ(r, 36);
    cpool_job_free(job);
    CHECK_EQ(atomic_load(&shared->inits), 4);
    for (uint32_t w = 0; w < 2; w++) {
        cpool_worker_stats_t s;
        cpool_worker_stats(p, w, &s);
        CHECK(s.pid > 0 && s.pid != before[0] && s.pid != before[1]);
    }
    CHECK_RC(cpool_map(p, bf, in, 8, out, 8, 100, 0, NULL), 0);
    for (int i = 0; i < 100; i++) CHECK_EQ(out[i], i * i + 7);
    CHECK_RC(cpool_start_workers(p), 0); /* idempotent */
    cpool_destroy(p);
    free(late_ctx);
}

static void shouldDestroyAnOpenPoolWithoutLeavingWorkers(void) {
    cpool_pool_t *p = pool_with(2, 0, NULL, NULL);
    pid_t pids[2];
    for (uint32_t w = 0; w < 2; w++) {
        cpool_worker_stats_t ws;
        cpool_worker_stats(p, w, &ws);
        pids[w] = ws.pid;
    }
    cpool_destroy(p);
    for (int w = 0; w < 2; w++) CHECK(kill(pids[w], 0) != 0);
}

/* Fails the first `failures_left` init calls of the pool, then succeeds. */
static _Atomic int *failures_left;
static int init_failing_a_few_times(uint32_t id, void *ctx) {
    (void)id;
    (void)ctx;
    return atomic_fetch_sub(failures_left, 1) > 0 ? 1 : 0;
}

static void check_init_failures_in_a_row(int failures, int want_broken) {
    atomic_store(failures_left, failures);
    cpool_pool_t *p = pool_with(1, 0, init_failing_a_few_times, NULL);
    if (!p) return;
    cpool_fn_t f = cpool_register(p, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    int64_t x = 7, r = 0;
    CHECK_RC(cpool_apply(p, f, &x, 8, &r, 8, 0, NULL), want_broken ? CPOOL_E_WORKER_INIT : 0);
    if (!want_broken) CHECK_EQ(r, 49);
    CHECK_EQ(STAT_SUM(p, restarts), failures < 3 ? failures : 2);
    cpool_destroy(p);
}

static void shouldKeepWorkingAfterOneInitFailure(void) { check_init_failures_in_a_row(1, 0); }
static void shouldKeepWorkingAfterTwoInitFailuresInARow(void) { check_init_failures_in_a_row(2, 0); }
static void shouldBreakAfterThreeInitFailuresInARow(void) { check_init_failures_in_a_row(3, 1); }

typedef struct blocked_call {
    cpool_pool_t *pool;
    cpool_fn_t fn;
    int is_map;
    int rc;
    cpool_status_t st[4];
} blocked_call_t;

static void *call_and_block(void *arg) {
    blocked_call_t *c = arg;
    int64_t in[4] = {30000, 30000, 30000, 30000}, out[4];
    c->rc = c->is_map ? cpool_map(c->pool, c->fn, in, 8, out, 8, 4, 1, c->st)
                      : cpool_apply(c->pool, c->fn, in, 8, out, 8, 0, c->st);
    return NULL;
}

static void shouldCancelCallsBlockedOnOtherThreadsWhenDestroyed(void) {
    cpool_pool_t *p = pool_with(2, 0, NULL, NULL);
    cpool_fn_t s = cpool_register(p, "sleep_ms", "i64(i64)", (cpool_any_fn_t)t_sleep_ms, 0);
    blocked_call_t calls[2] = {{p, s, 0, 1, {{0}}}, {p, s, 1, 1, {{0}}}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, call_and_block, &calls[i]);
    usleep(200000); /* both wait on tasks of 30 s */
    uint64_t t0 = test_now_ms();
    cpool_destroy(p);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    CHECK(test_now_ms() - t0 < 10000);
    CHECK_RC(calls[0].rc, CPOOL_E_CANCELLED);
    CHECK_EQ(calls[0].st[0].code, CPOOL_E_CANCELLED);
    CHECK_RC(calls[1].rc, CPOOL_E_TASK_FAILED);
    for (int i = 0; i < 4; i++) CHECK_EQ(calls[1].st[i].code, CPOOL_E_CANCELLED);
}

static void shouldCancelAndWaitWhenFreeingARunningJob(void) {
    cpool_pool_t *p = pool_with(1, 0, NULL, NULL);
    cpool_fn_t s = cpool_register(p, "sleep_ms", "i64(i64)", (cpool_any_fn_t)t_sleep_ms, 0);
    int64_t ms = 30000, r = 0;
    cpool_job_t *job;
    CHECK_RC(cpool_submit(p, s, &ms, 8, &r, 8, 0, &job), 0);
    usleep(100000);
    cpool_worker_stats_t before;
    cpool_worker_stats(p, 0, &before);
    uint64_t t0 = test_now_ms();
    cpool_job_free(job); /* cancels (killing the worker) and waits */
    CHECK(test_now_ms() - t0 < 10000);
    CHECK(wait_process_gone(before.pid, 5000));
    ms = 1;
    CHECK_RC(cpool_apply(p, s, &ms, 8, &r, 8, 0, NULL), 0); /* the slot serves again */
    CHECK_EQ(r, 1);
    cpool_destroy(p);
}

static void shouldTimeOutStopWorkersAndRefuseItWhenClosed(void) {
    cpool_pool_t *p = pool_with(1, 0, NULL, NULL);
    cpool_fn_t s = cpool_register(p, "sleep_ms", "i64(i64)", (cpool_any_fn_t)t_sleep_ms, 0);
    int64_t ms = 500, r = 0;
    cpool_job_t *job;
    CHECK_RC(cpool_submit(p, s, &ms, 8, &r, 8, 0, &job), 0);
    usleep(50000);
    CHECK_RC(cpool_stop_workers(p, 20 * 1000000ull), -ETIMEDOUT); /* the task still runs */
    CHECK_RC(cpool_job_wait(job, 0), 0);                            /* and finishes */
    CHECK_EQ(r, 500);
    cpool_job_free(job);
    CHECK_RC(cpool_start_workers(p), 0);
    CHECK_RC(cpool_close(p), 0);
    CHECK_RC(cpool_stop_workers(p, 0), CPOOL_E_CLOSED);
    CHECK_RC(cpool_start_workers(p), CPOOL_E_CLOSED);
    cpool_destroy(p);
}

static void shouldRefuseWorkAfterTerminateAlone(void) {
    cpool_pool_t *p = pool_with(2, 0, NULL, NULL);
    cpool_fn_t f = cpool_register(p, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    CHECK_RC(cpool_terminate(p), 0);
    int64_t x = 3, r = 0;
    cpool_job_t *job = NULL;
    CHECK_RC(cpool_apply(p, f, &x, 8, &r, 8, 0, NULL), CPOOL_E_CLOSED);
    CHECK_RC(cpool_submit(p, f, &x, 8, &r, 8, 0, &job), CPOOL_E_CLOSED);
    CHECK_RC(cpool_map(p, f, &x, 8, &r, 8, 1, 0, NULL), CPOOL_E_CLOSED);
    CHECK_RC(cpool_register(p, "g", "i64(i64)", (cpool_any_fn_t)t_square, 0), CPOOL_E_CLOSED);
    CHECK(cpool_alloc(p, 64) == NULL);
    CHECK_RC(cpool_start_workers(p), CPOOL_E_CLOSED);
    CHECK_RC(cpool_close(p), 0);
    CHECK_RC(cpool_terminate(p), 0);
    CHECK_RC(cpool_join(p, 5000000000ull), 0);
    CHECK_EQ(r, 0);
    cpool_destroy(p);
}

int main(void) {
    watchdog(150);
    failures_left = mmap(NULL, sizeof *failures_left, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    RUN(shouldRunInitAndExitHooksOncePerWorker);
    RUN(shouldReplaceWorkersAfterTheirLifespan);
    RUN(shouldFinishSubmittedWorkOnCloseAndJoin);
    RUN(shouldTimeOutAJoinWhileATaskRuns);
    RUN(shouldTerminateRunningAndQueuedWork);
    RUN(shouldBreakThePoolWhenWorkersCannotInitialise);
    RUN(shouldStopAndStartFreshWorkersThatSeeNewData);
    RUN(shouldDestroyAnOpenPoolWithoutLeavingWorkers);
    RUN(shouldKeepWorkingAfterOneInitFailure);
    RUN(shouldKeepWorkingAfterTwoInitFailuresInARow);
    RUN(shouldBreakAfterThreeInitFailuresInARow);
    RUN(shouldCancelCallsBlockedOnOtherThreadsWhenDestroyed);
    RUN(shouldCancelAndWaitWhenFreeingARunningJob);
    RUN(shouldTimeOutStopWorkersAndRefuseItWhenClosed);
    RUN(shouldRefuseWorkAfterTerminateAlone);
    return finish();
}
