/* What a caller does with a started job: wait for it, poll it, cancel it, read how
 * its items ended, and free it. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>

#include "completion.h"
#include "dispatch.h"
#include "futex.h"
#include "job.h"
#include "output.h"
#include "supervisor.h"

/* How long a waiting thread sleeps at most before it looks again on its own. */
#define WAIT_SLICE_NS 100000000ull

/* ------------------------------------------------------------ waiting */

static int job_result(const cpool_job_t *job) {
    if (job->failed_items == 0) return 0;
    if (job->statuses == &job->single) return job->single.code;
    return CPOOL_E_TASK_FAILED;
}

static int results_pending(const cpool__pool_t *p) {
    for (uint32_t w = 0; w < p->workers; w++) {
        cpool__worker_ctl_t *c = &p->region.ctl[w];
        if (atomic_load_explicit(&c->from_worker.res_head, memory_order_acquire) !=
                atomic_load_explicit(&c->to_worker.res_tail, memory_order_relaxed) ||
            cpool__output_pending(p, w))
            return 1;
    }
    return 0;
}

/* Drains and dispatches for everybody when there is something to drain. With force,
 * also looks for idle workers to give work to (a worker that ran out of tasks just as
 * this thread was going to sleep did not wake it: this is where that is seen). */
static void make_progress(cpool__pool_t *p, int force) {
    if (!force && !results_pending(p) && !p->queue_head) return;
    pthread_mutex_lock(&p->lock);
    int changed = cpool__progress(p);
    if (force && !changed) cpool__rebalance(p);
    pthread_mutex_unlock(&p->lock);
    if (changed) cpool__wake_waiters(p);
}

/* The lowest index of an ended job, -EINTR when interruptible and an interruption is
 * pending (it is taken), or -1. */
static int first_ended(cpool__pool_t *p, cpool_job_t *const *jobs, size_t n, int interruptible) {
    for (size_t i = 0; i < n; i++)
        if (atomic_load_explicit(&jobs[i]->ended, memory_order_acquire)) return (int)i;
    if (interruptible && atomic_load_explicit(&p->interrupt_pending, memory_order_relaxed) &&
        atomic_exchange_explicit(&p->interrupt_pending, 0, memory_order_acq_rel))
        return -EINTR;
    return -1;
}

/* What a waiter sleeps unless: one of its jobs has ended, after it has applied what
 * workers did before they could see it asleep (they wake a sleeping parent only when
 * it has something to do) and given any worker that ran out of tasks just then work. */
typedef struct waiting {
    cpool__pool_t *p;
    cpool_job_t *const *jobs;
    size_t n;
    int interruptible;
} waiting_t;

static int any_ended(void *arg) {
    const waiting_t *wt = arg;
    make_progress(wt->p, 1);
    return first_ended(wt->p, wt->jobs, wt->n, wt->interruptible) != -1;
}

/* Waits until one of the jobs (all of pool p) has ended; returns its index, or
 * -ETIMEDOUT. The waiting drains and dispatches for everybody. */
static int wait_any(cpool__pool_t *p, cpool_job_t *const *jobs, size_t n, uint64_t timeout_ns,
                    int woke_worker, int interruptible) {
    cpool__header_t *h = p->region.header;
    const uint64_t start = cpool__now_ns();
    cpool__backoff_t b;
    cpool__backoff_start(&b);
    /* A worker just woken from its futex is often placed on the waking CPU: spinning
     * here would keep it off that CPU for the whole spin window (idle-latency p50 was
     * 108 us that way), yielding lets it run at once. */
    if (woke_worker) b.yielding = 1;
    /* Once the wait has needed a sleep it is a long one: after each wake-up the caller
     * applies what there is and sleeps again at once, instead of spinning on cores the
     * workers need. */
    int slept = 0, ended;
    waiting_t wt = {p, jobs, n, interruptible};
    make_progress(p, 1);
    for (;;) {
        if ((ended = first_ended(p, jobs, n, interruptible)) != -1) return ended;
        make_progress(p, 0);
        if ((ended = first_ended(p, jobs, n, interruptible)) != -1) return ended;
        /* The clock is read every 64 rounds while spinning (a read costs ~20 ns). */
        if (timeout_ns && (b.rounds & 63u) == 0 && cpool__now_ns() - start >= timeout_ns)
            return -ETIMEDOUT;
        if (!slept && cpool__backoff(&b, p->opts.spin_ns)) continue;
        uint64_t slice = WAIT_SLICE_NS;
        if (timeout_ns) {
            const uint64_t waited = cpool__now_ns() - start;
            if (waited >= timeout_ns) return -ETIMEDOUT;
            if (timeout_ns - waited < slice) slice = timeout_ns - waited;
        }
        cpool__sleep_unless(&h->parent_sleepers, &h->results_seq, slice, any_ended, &wt);
        slept = 1;
        cpool__backoff_start(&b);
    }
}

int cpool_job_wait(cpool_job_t *job, uint64_t timeout_ns) {
    if (!job) return -EINVAL;
    const int rc = wait_any(job->pool, &job, 1, timeout_ns, job->woke_worker, 0);
    return rc < 0 ? rc : job_result(job);
}

int cpool_job_wait_any(cpool_job_t *const *jobs, size_t count, uint64_t timeout_ns) {
    if (!jobs || count == 0 || count > INT32_MAX) return -EINVAL;
    for (size_t i = 0; i < count; i++)
        if (!jobs[i] || jobs[i]->pool != jobs[0]->pool) return -EINVAL;
    return wait_any(jobs[0]->pool, jobs, count, timeout_ns, 0, 1);
}

int cpool_interrupt_waits(cpool_pool_t *h) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    atomic_store_explicit(&p->interrupt_pending, 1, memory_order_release);
    /* A sleeping waiter sleeps on results_seq: move it, so that the sleep ends. */
    cpool__header_t *hd = p->region.header;
    atomic_fetch_add_explicit(&hd->results_seq, 1, memory_order_release);
    cpool__futex_wake_all(&hd->results_seq);
    cpool__pool_leave(p);
    return 0;
}

int cpool_job_done(cpool_job_t *job) {
    if (!job) return -EINVAL;
    make_progress(job->pool, 0);
    return atomic_load_explicit(&job->ended, memory_order_acquire) ? 1 : 0;
}

int cpool_job_progress(cpool_job_t *job, uint64_t *ended, uint64_t *failed, uint64_t *total) {
    if (!job) return -EINVAL;
    cpool__pool_t *p = job->pool;
    make_progress(p, 0);
    pthread_mutex_lock(&p->lock);
    if (ended) *ended = job->ended_items;
    if (failed) *failed = job->failed_items;
    if (total) *total = job->count;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

int cpool_job_cancel(cpool_job_t *job) {
    if (!job) return -EINVAL;
    cpool__pool_t *p = job->pool;
    pthread_mutex_lock(&p->lock);
    cpool__progress(p);
    if (atomic_load(&job->ended)) {
        pthread_mutex_unlock(&p->lock);
        return -EALREADY;
    }
    cpool__job_mark_cancelled(p, job);
    cpool__end_undispatched(p, job, CPOOL_E_CANCELLED);
    cpool__withdraw(p, job, CPOOL_E_CANCELLED);
    /* Stop the workers running this job now; queued tasks of it are skipped by the
     * workers, which see the cancelled generation. */
    for (uint32_t w = 0; w < p->workers; w++) {
        cpool__worker_ctl_t *c = &p->region.ctl[w];
        if (!p->w[w].pid || atomic_load(&c->state.phase) != PHASE_RUNNING) continue;
        const cpool__position_t at = cpool__position_of(c);
        cpool__task_t t;
        if (cpool__job_of_task(p, w, at.seq, &t) != job) continue;
        if (p->w[w].kill_reason == KILL_NONE) cpool__kill_worker(p, w, KILL_CANCEL, at);
    }
    cpool__job_end_check(p, job);
    pthread_mutex_unlock(&p->lock);
    cpool__wake_waiters(p);
    return 0;
}

int cpool_job_status(cpool_job_t *job, cpool_status_t *status) {
    if (!job || !status) return -EINVAL;
    if (!atomic_load_explicit(&job->ended, memory_order_acquire)) return -EBUSY;
    if (job->statuses == &job->single) {
        *status = job->single;
    } else {
        *status = (cpool_status_t){job->failed_items ? job->first_failed_code : 0, 0, -1, 0};
    }
    return 0;
}

int64_t cpool_job_failures(cpool_job_t *job, size_t *indices, cpool_status_t *statuses,
                           size_t max) {
    if (!job) return -EINVAL;
    if (!atomic_load_explicit(&job->ended, memory_order_acquire)) return -EBUSY;
    size_t n = job->failures_count < max ? job->failures_count : max;
    for (size_t i = 0; i < n; i++) {
        if (indices) indices[i] = job->failures[i].index;
        if (statuses) statuses[i] = job->failures[i].status;
    }
    return (int64_t)job->failed_items;
}

void cpool_job_free(cpool_job_t *job) {
    if (!job) return;
    cpool__pool_t *p = job->pool;
    if (!atomic_load_explicit(&job->ended, memory_order_acquire)) {
        cpool_job_cancel(job);
        cpool_job_wait(job, 0);
    }
    pthread_mutex_lock(&p->lock);
    cpool__job_remove(p, job);
    pthread_mutex_unlock(&p->lock);
    cpool__job_destroy(job);
}
