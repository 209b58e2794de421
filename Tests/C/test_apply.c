/* cpool_apply, cpool_submit and jobs: results, waiting, several caller threads. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "check.h"
#include "testfns.h"

static cpool_pool_t *pool;
static cpool_fn_t square, sleeper;

static void shouldApplyAndReturnTheResult(void) {
    for (int64_t x = -5; x < 1000; x++) {
        int64_t r = 0;
        cpool_status_t st;
        CHECK_RC(cpool_apply(pool, square, &x, 8, &r, 8, 0, &st), 0);
        CHECK_EQ(r, x * x);
        CHECK_EQ(st.code, 0);
        CHECK(st.worker >= 0 && st.worker < 2);
    }
}

static void shouldSubmitManyAndWaitForEach(void) {
    enum { N = 1000 }; /* more than the rings hold: the rest queue in the parent */
    static cpool_job_t *jobs[N];
    static int64_t results[N];
    for (int64_t i = 0; i < N; i++) CHECK_RC(cpool_submit(pool, square, &i, 8, &results[i], 8, 0, &jobs[i]), 0);
    for (int i = N - 1; i >= 0; i--) {
        CHECK_RC(cpool_job_wait(jobs[i], 0), 0);
        CHECK_EQ(cpool_job_done(jobs[i]), 1);
        cpool_status_t st;
        CHECK_RC(cpool_job_status(jobs[i], &st), 0);
        CHECK_EQ(st.code, 0);
        CHECK_EQ(results[i], (int64_t)i * i);
        cpool_job_free(jobs[i]);
    }
}

static void shouldTimeOutTheWaitButNotTheTask(void) {
    int64_t ms = 300, r = 0;
    cpool_job_t *job;
    CHECK_RC(cpool_submit(pool, sleeper, &ms, 8, &r, 8, 0, &job), 0);
    CHECK_RC(cpool_job_wait(job, 20 * 1000000ull), -ETIMEDOUT);
    CHECK_EQ(cpool_job_done(job), 0);
    cpool_status_t st;
    CHECK_RC(cpool_job_status(job, &st), -EBUSY);
    CHECK_RC(cpool_job_wait(job, 0), 0);
    CHECK_EQ(r, 300);
    cpool_job_free(job);
}

static void *caller(void *arg) {
    int64_t base = (int64_t)(intptr_t)arg;
    int bad = 0;
    for (int64_t i = 0; i < 2000; i++) {
        int64_t x = base + i, r = 0;
        if (cpool_apply(pool, square, &x, 8, &r, 8, 0, NULL) != 0 || r != x * x) bad++;
        if (i % 100 == 0) {
            int64_t in[50], out[50];
            for (int k = 0; k < 50; k++) in[k] = base + k;
            if (cpool_map(pool, square, in, 8, out, 8, 50, 3, NULL) != 0) bad++;
            for (int k = 0; k < 50; k++) bad += out[k] != in[k] * in[k];
        }
    }
    return (void *)(intptr_t)bad;
}

static void shouldServeSeveralCallerThreadsAtOnce(void) {
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, caller, (void *)(intptr_t)(i * 100000));
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(th[i], &bad);
        CHECK_EQ((intptr_t)bad, 0);
    }
}

/* With the worker busy and its ring full, a submitted task waits in the parent: its
 * argument must have been copied at submit, not when it is finally dispatched. */
static void shouldCopySubmitArgumentsAtOnce(void) {
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 1;
    o.ring_slots = 2;
    cpool_pool_t *p;
    CHECK_RC(cpool_create(&o, &p), 0);
    cpool_fn_t s = cpool_register(p, "sleep_ms", "int64_t(int64_t)", (cpool_any_fn_t)t_sleep_ms, 0);
    cpool_fn_t sq = cpool_register(p, "square", "int64_t(int64_t)", (cpool_any_fn_t)t_square, 0);
    int64_t ms[3] = {100, 1, 1}, slept[3];
    cpool_job_t *busy[3];
    for (int i = 0; i < 3; i++) CHECK_RC(cpool_submit(p, s, &ms[i], 8, &slept[i], 8, 0, &busy[i]), 0);
    int64_t x = 12, r = 0;
    cpool_job_t *job;
    CHECK_RC(cpool_submit(p, sq, &x, 8, &r, 8, 0, &job), 0);
    x = 99; /* the caller's buffer changes right after submit */
    CHECK_RC(cpool_job_wait(job, 0), 0);
    CHECK_EQ(r, 144);
    cpool_job_free(job);
    for (int i = 0; i < 3; i++) {
        CHECK_RC(cpool_job_wait(busy[i], 0), 0);
        cpool_job_free(busy[i]);
    }
    cpool_destroy(p);
}

/* Registering, allocating and closing from several threads at once: every call either
 * succeeds or says the pool is closed; ids stay unique; nothing is lost. */
typedef struct racer {
    cpool_pool_t *pool;
    int index;
    int registered, refused, bad;
    cpool_fn_t ids[40];
} racer_t;

static void *race(void *arg) {
    racer_t *r = arg;
    char name[32];
    for (int k = 0; k < 40; k++) {
        snprintf(name, sizeof name, "fn_%d_%d", r->index, k);
        cpool_fn_t id = cpool_register(r->pool, name, "i64(i64)", (cpool_any_fn_t)t_square, 0);
        if (id >= 0) r->ids[r->registered++] = id;
        else if (id == CPOOL_E_CLOSED || id == CPOOL_E_FULL) r->refused++;
        else r->bad++;
        void *b = cpool_alloc(r->pool, 4096);
        if (b) {
            memset(b, r->index, 4096);
            cpool_free(r->pool, b);
        }
        if (k == 20 && r->index == 0) CHECK_RC(cpool_close(r->pool), 0);
    }
    return NULL;
}

static void shouldRegisterAllocateAndCloseFromSeveralThreadsAtOnce(void) {
    cpool_pool_t *p = make_pool(2);
    racer_t racers[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        racers[i] = (racer_t){.pool = p, .index = i};
        pthread_create(&th[i], NULL, race, &racers[i]);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(racers[i].bad, 0);
        CHECK_EQ(racers[i].registered + racers[i].refused, 40);
        total += racers[i].registered;
    }
    CHECK(total >= 21);
    for (int i = 0; i < 4; i++)
        for (int a = 0; a < racers[i].registered; a++)
            for (int j = i; j < 4; j++)
                for (int b = (j == i ? a + 1 : 0); b < racers[j].registered; b++)
                    CHECK(racers[i].ids[a] != racers[j].ids[b]);
    uint64_t used = 1;
    CHECK_RC(cpool_arena_usage(p, &used, NULL), 0);
    CHECK_EQ(used, 0);
    CHECK_RC(cpool_join(p, 10000000000ull), 0);
    cpool_destroy(p);
}

/* cpool_job_wait_any returns whichever job ends first, without polling. */
static void shouldWaitForWhicheverJobEndsFirst(void) {
    int64_t ms[3] = {400, 20, 400}, r[3] = {0, 0, 0};
    cpool_job_t *jobs[3];
    /* Two workers: the third task waits in the queue, the second ends first. */
    for (int i = 0; i < 3; i++) CHECK_RC(cpool_submit(pool, sleeper, &ms[i], 8, &r[i], 8, 0, &jobs[i]), 0);
    /* 1, not 0: the lowest ended index is returned, so job 0 had not ended yet. */
    CHECK_EQ(cpool_job_wait_any(jobs, 3, 0), 1);
    CHECK_EQ(cpool_job_wait(jobs[1], 0), 0);
    CHECK_EQ(r[1], 20);
    /* Ended jobs are found at once, the lowest index first. */
    CHECK_EQ(cpool_job_wait_any(jobs, 3, 0), 1);
    CHECK_EQ(cpool_job_wait_any(jobs + 2, 1, 0), 0);
    CHECK_EQ(cpool_job_wait_any(jobs, 3, 0), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(cpool_job_wait(jobs[i], 0), 0);
        CHECK_EQ(r[i], ms[i]);
        cpool_job_free(jobs[i]);
    }
}

static void shouldTimeOutWaitingForAnyAndRejectBadInput(void) {
    int64_t ms = 300, r = 0;
    cpool_job_t *job;
    CHECK_RC(cpool_submit(pool, sleeper, &ms, 8, &r, 8, 0, &job), 0);
    CHECK_RC(cpool_job_wait_any(&job, 1, 20000000ull), -ETIMEDOUT);
    CHECK_RC(cpool_job_wait_any(&job, 0, 0), -EINVAL);
    CHECK_RC(cpool_job_wait_any(NULL, 1, 0), -EINVAL);
    cpool_job_t *with_null[2] = {job, NULL};
    CHECK_RC(cpool_job_wait_any(with_null, 2, 0), -EINVAL);
    cpool_pool_t *other = make_pool(1);
    cpool_fn_t other_sleeper = cpool_register(other, "sleep_ms", "int64_t(int64_t)", (cpool_any_fn_t)t_sleep_ms, 0);
    int64_t ms2 = 1, r2 = 0;
    cpool_job_t *foreign;
    CHECK_RC(cpool_submit(other, other_sleeper, &ms2, 8, &r2, 8, 0, &foreign), 0);
    cpool_job_t *mixed[2] = {job, foreign};
    CHECK_RC(cpool_job_wait_any(mixed, 2, 0), -EINVAL); /* jobs of two pools */
    CHECK_EQ(cpool_job_wait(foreign, 0), 0);
    cpool_job_free(foreign);
    cpool_destroy(other);
    CHECK_EQ(cpool_job_wait_any(&job, 1, 0), 0);
    CHECK_EQ(r, 300);
    cpool_job_free(job);
}

/* A thread serving many jobs with one wait is told to look at its list again. */
static void *interrupt_later(void *arg) {
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
    cpool_interrupt_waits(arg);
    return NULL;
}

static void shouldInterruptAWaitForAnyButNotAWait(void) {
    int64_t ms = 400, r = 0;
    cpool_job_t *job;
    CHECK_RC(cpool_submit(pool, sleeper, &ms, 8, &r, 8, 0, &job), 0);
    pthread_t t;
    pthread_create(&t, NULL, interrupt_later, pool);
    CHECK_RC(cpool_job_wait_any(&job, 1, 0), -EINTR); /* during the wait */
    pthread_join(t, NULL);
    CHECK_EQ(cpool_job_done(job), 0);
    CHECK_RC(cpool_interrupt_waits(pool), 0);
    CHECK_RC(cpool_job_wait_any(&job, 1, 0), -EINTR); /* before it: not lost */
    pthread_create(&t, NULL, interrupt_later, pool);
    CHECK_RC(cpool_job_wait(job, 0), 0); /* a plain wait goes on */
    pthread_join(t, NULL);
    CHECK_RC(cpool_job_wait_any(&job, 1, 0), 0); /* ended jobs come first */
    CHECK_EQ(r, 400);
    cpool_job_free(job);
    CHECK_RC(cpool_interrupt_waits(NULL), -EINVAL);
}

int main(void) {
    watchdog(120);
    pool = make_pool(2);
    square = cpool_register(pool, "square", "int64_t(int64_t)", (cpool_any_fn_t)t_square, 0);
    sleeper = cpool_register(pool, "sleep_ms", "int64_t(int64_t)", (cpool_any_fn_t)t_sleep_ms, 0);
    RUN(shouldApplyAndReturnTheResult);
    RUN(shouldSubmitManyAndWaitForEach);
    RUN(shouldTimeOutTheWaitButNotTheTask);
    RUN(shouldServeSeveralCallerThreadsAtOnce);
    RUN(shouldCopySubmitArgumentsAtOnce);
    RUN(shouldRegisterAllocateAndCloseFromSeveralThreadsAtOnce);
    RUN(shouldWaitForWhicheverJobEndsFirst);
    RUN(shouldTimeOutWaitingForAnyAndRejectBadInput);
    RUN(shouldInterruptAWaitForAnyButNotAWait);
    cpool_destroy(pool);
    return finish();
}
