/* Tasks that run too long are killed with their worker and reported as timed out;
 * cancelled jobs end at once, running ones by killing their worker. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "supervisor.h"
#include "testfns.h"

static cpool_pool_t *pool;
static cpool_fn_t sleeper, square;


static void shouldKillAnApplyPastItsTimeout(void) {
    int64_t ms = 60000, r = 0;
    cpool_status_t st;
    uint64_t t0 = test_now_ms();
    CHECK_RC(cpool_apply(pool, sleeper, &ms, 8, &r, 8, 100 * 1000000ull, &st), CPOOL_E_TASK_TIMEOUT);
    CHECK(test_now_ms() - t0 < 10000);
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
    cpool_fn_t s = cpool_register(p, "sleep_ms", "int64_t(int64_t)", (cpool_any_fn_t)t_sleep_ms, 0);
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

/* Waits until worker slot 0 of p runs a task; returns its pid (0 if it never did). */
static int32_t running_pid(cpool_pool_t *p) {
    cpool__pool_t *ip = cpool__pool_internal(p);
    for (int i = 0; i < 2000; i++) {
        if (atomic_load(&ip->region.ctl[0].state.phase) == PHASE_RUNNING) {
            cpool_worker_stats_t s;
            cpool_worker_stats(p, 0, &s);
            return s.pid;
        }
        usleep(1000);
    }
    return 0;
}

static void shouldCancelARunningTaskByKillingItsWorker(void) {
    cpool_pool_t *p = make_pool(1);
    cpool_fn_t s = cpool_register(p, "sleep_ms", "int64_t(int64_t)", (cpool_any_fn_t)t_sleep_ms, 0);
    int64_t ms = 60000, r = 0;
    cpool_job_t *job;
    CHECK_RC(cpool_submit(p, s, &ms, 8, &r, 8, 0, &job), 0);
    int32_t pid = running_pid(p);
    CHECK(pid > 0);
    uint64_t t0 = test_now_ms();
    CHECK_RC(cpool_job_cancel(job), 0);
    CHECK_RC(cpool_job_wait(job, 0), CPOOL_E_CANCELLED);
    CHECK(test_now_ms() - t0 < 5000);
    CHECK(wait_process_gone(pid, 5000)); /* killed, and reaped: not left a zombie */
    CHECK_RC(cpool_job_cancel(job), -EALREADY);
    cpool_job_free(job);
    ms = 3;
    CHECK_RC(cpool_apply(p, s, &ms, 8, &r, 8, 0, NULL), 0); /* on the replacement */
    CHECK_EQ(r, 3);
    CHECK_EQ(STAT_SUM(p, restarts), 1);
    cpool_destroy(p);
}

static void shouldCancelQueuedItemsOfAMapAtOnce(void) {
    enum { N = 400 };
    static int64_t in[N], out[N];
    static cpool_status_t st[N];
    for (int i = 0; i < N; i++) in[i] = 20; /* 20 ms each: 4 s of work on two workers */
    cpool_job_t *job;
    CHECK_RC(cpool_map_start(pool, sleeper, in, 8, out, 8, N, 1, st, &job), 0);
    usleep(100000);
    uint64_t t0 = test_now_ms();
    CHECK_RC(cpool_job_cancel(job), 0);
    CHECK_RC(cpool_job_wait(job, 0), CPOOL_E_TASK_FAILED);
    CHECK(test_now_ms() - t0 < 3000);
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

/* A kill aimed at one task (cancel, timeout) can land when its worker has already
 * moved on to the next task. That task is innocent: it runs again on the
 * replacement and succeeds. The kill is injected here at exactly that moment. */
static void shouldRunAnInnocentTaskAgainWhenItsWorkerWasKilledForAnother(void) {
    cpool_pool_t *p = make_pool(1);
    cpool__pool_t *ip = cpool__pool_internal(p);
    cpool_fn_t s = cpool_register(p, "sleep_ms", "int64_t(int64_t)", (cpool_any_fn_t)t_sleep_ms, 0);
    int64_t ms = 1, r = 0;
    CHECK_RC(cpool_apply(p, s, &ms, 8, &r, 8, 0, NULL), 0); /* the "guilty" task, done */
    const uint64_t guilty_seq = atomic_load(&ip->region.ctl[0].from_worker.task_tail) - 1;
    ms = 300;
    cpool_job_t *innocent;
    CHECK_RC(cpool_submit(p, s, &ms, 8, &r, 8, 0, &innocent), 0);
    int32_t pid = running_pid(p);
    CHECK(pid > 0);
    pthread_mutex_lock(&ip->lock);
    cpool__kill_worker(ip, 0, KILL_CANCEL, (cpool__position_t){guilty_seq, 0, 0});
    pthread_mutex_unlock(&ip->lock);
    CHECK_RC(cpool_job_wait(innocent, 0), 0);
    cpool_status_t st;
    CHECK_RC(cpool_job_status(innocent, &st), 0);
    CHECK_EQ(st.code, 0);
    CHECK_EQ(st.worker, 0);
    CHECK_EQ(r, 300);
    CHECK(wait_process_gone(pid, 5000));
    CHECK_EQ(STAT_SUM(p, restarts), 1);
    cpool_job_free(innocent);
    cpool_destroy(p);
}

/* Within one task, a worker runs slice after slice, each starting again at item 0 of
 * its run: a kill aimed at the first item of one slice lands when the next slice has
 * begun. The item running then is innocent: it runs again and succeeds. */
static void shouldRunAnInnocentItemAgainWhenTheKillWasForAnEarlierSlice(void) {
    cpool_pool_t *p = make_pool(1);
    cpool__pool_t *ip = cpool__pool_internal(p);
    cpool_fn_t s = cpool_register(p, "sleep_ms", "int64_t(int64_t)", (cpool_any_fn_t)t_sleep_ms, 0);
    int64_t in[2] = {1, 300}, out[2] = {0, 0};
    cpool_status_t st[2];
    cpool_job_t *job;
    /* One chunk of two items: an unmeasured function's first slice is one item. */
    CHECK_RC(cpool_map_start(p, s, in, 8, out, 8, 2, 2, st, &job), 0);
    cpool__worker_ctl_t *c = &ip->region.ctl[0];
    const uint64_t deadline = test_now_ms() + 5000;
    while ((atomic_load(&c->state.items_done) < 1 || atomic_load(&c->state.phase) != PHASE_RUNNING) &&
           test_now_ms() < deadline)
        usleep(200);
    cpool__position_t now = cpool__position_of(c);
    CHECK_EQ(now.item, 0);    /* the second item is item 0 of its slice... */
    CHECK_EQ(now.done, 1);    /* ...after the first slice was published */
    const cpool__position_t first_slice = {now.seq, 0, 0};
    pthread_mutex_lock(&ip->lock);
    cpool__kill_worker(ip, 0, KILL_CANCEL, first_slice);
    pthread_mutex_unlock(&ip->lock);
    CHECK_RC(cpool_job_wait(job, 0), 0);
    CHECK_EQ(st[1].code, 0);
    CHECK_EQ(out[0], 1);
    CHECK_EQ(out[1], 300);
    CHECK_EQ(STAT_SUM(p, restarts), 1);
    cpool_job_free(job);
    cpool_destroy(p);
}

/* Items that each take most of the timeout, run one slice after another in a single
 * task, never add up to a timeout: the watch sees each new item. */
static void shouldNotTimeOutItemsThatEachFinishInTime(void) {
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 1;
    o.task_timeout_ns = 250000000ull; /* 250 ms; six items of 100 ms in one chunk */
    cpool_pool_t *p;
    CHECK_RC(cpool_create(&o, &p), 0);
    cpool_fn_t s = cpool_register(p, "sleep_ms", "int64_t(int64_t)", (cpool_any_fn_t)t_sleep_ms, 0);
    int64_t in[6] = {100, 100, 100, 100, 100, 100}, out[6] = {0};
    cpool_status_t st[6];
    CHECK_RC(cpool_map(p, s, in, 8, out, 8, 6, 6, st), 0);
    int ok = 0;
    for (int i = 0; i < 6; i++) ok += st[i].code == 0 && out[i] == 100;
    CHECK_EQ(ok, 6);
    CHECK_EQ(STAT_SUM(p, timeouts), 0);
    cpool_destroy(p);
}

/* The same race left to chance, many times on one worker: cancelling a job whose
 * task just ended never fails the next job's task. */
static void shouldNeverFailTheNextTaskWhenCancellingOneThatJustEnded(void) {
    cpool_pool_t *p = make_pool(1);
    cpool_fn_t s = cpool_register(p, "sleep_ms", "int64_t(int64_t)", (cpool_any_fn_t)t_sleep_ms, 0);
    cpool_fn_t sq = cpool_register(p, "square", "int64_t(int64_t)", (cpool_any_fn_t)t_square, 0);
    for (int round = 0; round < 30; round++) {
        int64_t ms = 1 + round % 3, r1 = 0, x = 4 + round, r2 = 0;
        cpool_job_t *a, *b;
        CHECK_RC(cpool_submit(p, s, &ms, 8, &r1, 8, 0, &a), 0);
        CHECK_RC(cpool_submit(p, sq, &x, 8, &r2, 8, 0, &b), 0);
        usleep((useconds_t)(500 + 200 * (round % 10)));
        cpool_job_cancel(a);
        CHECK_RC(cpool_job_wait(b, 0), 0);
        CHECK_EQ(r2, x * x);
        cpool_status_t st;
        cpool_job_status(b, &st);
        CHECK_EQ(st.worker, 0);
        cpool_job_wait(a, 0);
        cpool_job_free(a);
        cpool_job_free(b);
    }
    cpool_destroy(p);
}

int main(void) {
    watchdog(150);
    pool = make_pool(2);
    sleeper = cpool_register(pool, "sleep_ms", "int64_t(int64_t)", (cpool_any_fn_t)t_sleep_ms, 0);
    square = cpool_register(pool, "square", "int64_t(int64_t)", (cpool_any_fn_t)t_square, 0);
    RUN(shouldKillAnApplyPastItsTimeout);
    RUN(shouldTimeOutOnlyTheSlowItemsOfAMap);
    RUN(shouldCancelARunningTaskByKillingItsWorker);
    RUN(shouldCancelQueuedItemsOfAMapAtOnce);
    RUN(shouldRunAnInnocentTaskAgainWhenItsWorkerWasKilledForAnother);
    RUN(shouldRunAnInnocentItemAgainWhenTheKillWasForAnEarlierSlice);
    RUN(shouldNotTimeOutItemsThatEachFinishInTime);
    RUN(shouldNeverFailTheNextTaskWhenCancellingOneThatJustEnded);
    cpool_destroy(pool);
    return finish();
}
