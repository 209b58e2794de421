/* Reading a pool's workers: how many, and what each slot has done. */
#include <errno.h>
#include <string.h>

#include "job.h"
#include "statistics.h"

int cpool_worker_count(cpool_pool_t *h) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    rc = (int)p->workers;
    cpool__pool_leave(p);
    return rc;
}

/* Enters the pool for reading slot `worker` and takes its lock: 0, or the code the
 * reading call returns. */
static int enter_slot(cpool_pool_t *h, uint32_t worker, const void *out, cpool__pool_t **p) {
    if (!out) return -EINVAL;
    int rc = cpool__pool_enter(h, p);
    if (rc) return rc;
    if (worker >= (*p)->workers) {
        cpool__pool_leave(*p);
        return -ERANGE;
    }
    pthread_mutex_lock(&(*p)->lock);
    return 0;
}

static void leave_slot(cpool__pool_t *p) {
    pthread_mutex_unlock(&p->lock);
    cpool__pool_leave(p);
}

uint64_t cpool__slot_tasks_done(const cpool__pool_t *p, uint32_t w) {
    return p->w[w].items_before + atomic_load(&p->region.ctl[w].state.items_done);
}

int cpool_worker_stats(cpool_pool_t *h, uint32_t worker, cpool_worker_stats_t *out) {
    cpool__pool_t *p;
    int rc = enter_slot(h, worker, out, &p);
    if (rc) return rc;
    const cpool__worker_t *w = &p->w[worker];
    memset(out, 0, sizeof *out);
    out->pid = w->pid;
    out->tasks_done = cpool__slot_tasks_done(p, worker);
    out->restarts = w->restarts;
    out->crashes = w->crashes;
    out->timeouts = w->timeouts;
    out->recycles = w->recycles;
    leave_slot(p);
    return 0;
}

/* A consistent copy of a slowest-item entry (region.h), or 0 while it keeps changing. */
static int read_slow_item(const cpool__slow_item_t *e, cpool__slow_item_t *copy) {
    for (int tries = 0; tries < 64; tries++) {
        const uint32_t seq = atomic_load_explicit(&e->seq, memory_order_acquire);
        if (seq & 1) continue;
        copy->fn = e->fn; copy->ns = e->ns; copy->id = e->id;
        copy->job_slot = e->job_slot; copy->job_gen = e->job_gen;
        copy->chunk = e->chunk; copy->serial = e->serial; copy->item = e->item;
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&e->seq, memory_order_relaxed) == seq) return 1;
    }
    return 0;
}

void cpool__resolve_slowest(cpool__pool_t *p, uint32_t w, const cpool_job_t *job,
                            const cpool__chunk_t *ch, uint32_t chunk, uint32_t first,
                            uint32_t count) {
    const cpool__insights_t *in = &p->region.ctl[w].insights;
    cpool__worker_t *ws = &p->w[w];
    for (int i = 0; i < SLOWEST_ITEMS; i++) {
        cpool__slow_item_t e;
        if (!read_slow_item(&in->slowest[i], &e) || !e.ns) continue;
        if (e.job_slot != job->slot || e.job_gen != job->gen || e.chunk != chunk ||
            e.serial != ch->serial || e.item < first || e.item - first >= count)
            continue;
        /* Keep it in place of an entry the worker no longer lists. */
        int free_at = 0;
        for (int k = 0; k < SLOWEST_ITEMS; k++) {
            int listed = 0;
            for (int j = 0; j < SLOWEST_ITEMS && !listed; j++) {
                cpool__slow_item_t o;
                listed = read_slow_item(&in->slowest[j], &o) && o.ns && o.id + 1 == ws->slow_items[k].id;
            }
            if (!listed) {
                free_at = k;
                break;
            }
        }
        ws->slow_items[free_at].id = e.id + 1; /* 0: unused */
        ws->slow_items[free_at].item = (int64_t)(ch->first_item + e.item);
    }
}

int cpool_worker_insights(cpool_pool_t *h, uint32_t worker, cpool_worker_insights_t *out) {
    cpool__pool_t *p;
    int rc = enter_slot(h, worker, out, &p);
    if (rc) return rc;
    const cpool__worker_t *ws = &p->w[worker];
    const cpool__insights_t *in = &p->region.ctl[worker].insights;
    memset(out, 0, sizeof *out);
    out->processes = atomic_load(&in->processes);
    out->tasks_done = cpool__slot_tasks_done(p, worker);
    out->startup_ns = atomic_load(&in->startup_ns);
    out->init_ns = atomic_load(&in->init_ns);
    out->exit_ns = atomic_load(&in->exit_ns);
    out->working_ns = atomic_load(&in->working_ns);
    out->waiting_ns = atomic_load(&in->waiting_ns);
    for (int i = 0; i < SLOWEST_ITEMS; i++) {
        cpool__slow_item_t e;
        if (!read_slow_item(&in->slowest[i], &e) || !e.ns) continue;
        cpool_slow_item_t *o = &out->slowest[out->slowest_count++];
        o->duration_ns = e.ns;
        o->fn = cpool__fn_id(p, (int)e.fn);
        o->item = -1;
        for (int k = 0; k < SLOWEST_ITEMS; k++)
            if (ws->slow_items[k].id == e.id + 1) o->item = ws->slow_items[k].item;
    }
    leave_slot(p);
    return 0;
}
