/* Reading a pool's workers: how many, and what each slot has done. */
#include <errno.h>
#include <string.h>

#include "pool.h"

int cpool_worker_count(cpool_pool_t *h) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    rc = (int)p->workers;
    cpool__pool_leave(p);
    return rc;
}

int cpool_worker_stats(cpool_pool_t *h, uint32_t worker, cpool_worker_stats_t *out) {
    if (!out) return -EINVAL;
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    if (worker >= p->workers) {
        cpool__pool_leave(p);
        return -ERANGE;
    }
    pthread_mutex_lock(&p->lock);
    const cpool__worker_t *w = &p->w[worker];
    memset(out, 0, sizeof *out);
    out->pid = w->pid;
    out->tasks_done = w->items_before + atomic_load(&p->region.ctl[worker].state.items_done);
    out->restarts = w->restarts;
    out->crashes = w->crashes;
    out->timeouts = w->timeouts;
    out->recycles = w->recycles;
    pthread_mutex_unlock(&p->lock);
    cpool__pool_leave(p);
    return 0;
}
