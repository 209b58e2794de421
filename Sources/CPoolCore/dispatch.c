/* Dispatching: a job's items go out in chunks, each staged through the arena unless
 * the caller's buffers are already in it, onto the ring of the least loaded worker. */
#define _GNU_SOURCE
#include <string.h>

#include "dispatch.h"
#include "futex.h"
#include "ring.h"

size_t cpool__auto_chunk(const cpool__pool_t *p, size_t count) {
    /* About four chunks a worker, as multiprocessing and mpire choose: big enough to
     * amortize the ~0.1-1 us a chunk costs, small enough to balance uneven tasks. */
    size_t c = count / ((size_t)p->workers * 4);
    if (c < 1) c = 1;
    if (c > 65536) c = 65536;
    if (p->opts.max_tasks_per_worker && c > p->opts.max_tasks_per_worker)
        c = (size_t)p->opts.max_tasks_per_worker;
    return c;
}

/* ------------------------------------------------------------ the queue of jobs */

static void enqueue(cpool__pool_t *p, cpool_job_t *job) {
    if (job->queued) return;
    job->queued = 1;
    job->next_queued = NULL;
    if (p->queue_tail) p->queue_tail->next_queued = job; else p->queue_head = job;
    p->queue_tail = job;
}

void cpool__unqueue(cpool__pool_t *p, cpool_job_t *job) {
    if (!job->queued) return;
    cpool_job_t **pp = &p->queue_head, *prev = NULL;
    while (*pp && *pp != job) {
        prev = *pp;
        pp = &(*pp)->next_queued;
    }
    if (*pp) *pp = job->next_queued;
    if (p->queue_tail == job) p->queue_tail = prev;
    job->queued = 0;
    job->next_queued = NULL;
}

int cpool__dispatch_queued(cpool__pool_t *p) {
    int sent = 0;
    cpool_job_t *job = p->queue_head;
    while (job) {
        cpool_job_t *next = job->next_queued;
        size_t before = job->next_item;
        cpool__dispatch(p, job);
        if (job->next_item != before) sent = 1;
        job = next;
    }
    return sent;
}

/* ------------------------------------------------------------ workers' rings */

/* The worker slot with room in its ring and the fewest chunks queued; slots with a
 * living process first. -1 when every ring is full. */
static int pick_worker(cpool__pool_t *p) {
    int best = -1;
    uint64_t best_load = UINT64_MAX;
    const uint32_t cap = p->region.header->ring_slots;
    for (uint32_t i = 0; i < p->workers; i++) {
        cpool__worker_ctl_t *c = &p->region.ctl[i];
        if (cpool__ring_reserve(&c->to_worker.task_head, &c->from_worker.task_tail, cap) == UINT64_MAX)
            continue;
        uint64_t load = (uint64_t)p->w[i].inflight * 2 + (p->w[i].pid == 0);
        if (load < best_load) {
            best_load = load;
            best = (int)i;
        }
    }
    return best;
}

/* Returns 1 when the worker was asleep and had to be woken. */
static int push_task(cpool__pool_t *p, uint32_t w, const cpool__task_t *t) {
    cpool__worker_ctl_t *c = &p->region.ctl[w];
    const uint32_t cap = p->region.header->ring_slots;
    uint64_t pos = cpool__ring_reserve(&c->to_worker.task_head, &c->from_worker.task_tail, cap);
    cpool__task_ring(&p->region, w)[cpool__ring_index(pos, cap)] = *t;
    cpool__ring_publish(&c->to_worker.task_head, pos);
    return cpool__wake_if_sleeping(&c->from_worker.sleeping, &c->to_worker.wake_seq);
}

/* ------------------------------------------------------------ staging */

static void copy_items(unsigned char *dst, size_t dst_stride, const unsigned char *src,
                       size_t src_stride, size_t item_bytes, size_t n) {
    if (item_bytes == 0 || n == 0) return;
    if (dst_stride == item_bytes && src_stride == item_bytes) {
        memcpy(dst, src, n * item_bytes);
        return;
    }
    for (size_t i = 0; i < n; i++) memcpy(dst + i * dst_stride, src + i * src_stride, item_bytes);
}

static void free_extent(cpool__pool_t *p, uint64_t *off) {
    if (*off != NO_EXTENT) cpool__arena_free(&p->arena, *off);
    *off = NO_EXTENT;
}

/* Finds room in the arena for n items of the job (what is not in the caller's shared
 * buffers), halving n until it fits. Returns the items that fit, 0 when none do. */
static size_t reserve_staging(cpool__pool_t *p, cpool_job_t *job, cpool__chunk_t *ch, size_t n) {
    for (;;) {
        ch->in_off = ch->out_off = NO_EXTENT;
        if (!job->in_shared) ch->in_off = cpool__arena_alloc(&p->arena, n * job->in_item_bytes);
        if (!job->out_shared && (job->in_shared || ch->in_off != NO_EXTENT))
            ch->out_off = cpool__arena_alloc(&p->arena, n * job->out_item_bytes);
        if ((job->in_shared || ch->in_off != NO_EXTENT) &&
            (job->out_shared || ch->out_off != NO_EXTENT))
            return n;
        free_extent(p, &ch->in_off);
        free_extent(p, &ch->out_off);
        if (n == 1) return 0;
        n /= 2;
    }
}

void cpool__unstage_chunk(cpool__pool_t *p, cpool_job_t *job, cpool__chunk_t *ch) {
    if (!job->out_shared && ch->out_off != NO_EXTENT)
        copy_items(job->out + ch->first_item * job->out_stride, job->out_stride,
                   p->region.arena + ch->out_off, job->out_item_bytes, job->out_item_bytes,
                   ch->count);
    free_extent(p, &ch->in_off);
    free_extent(p, &ch->out_off);
}

/* The task that runs chunk ci (n items from the job's next item), its input staged. */
static cpool__task_t task_for(cpool__pool_t *p, cpool_job_t *job, uint32_t ci, size_t n) {
    const cpool__chunk_t *ch = &job->chunks[ci];
    const size_t first = job->next_item;
    cpool__task_t t;
    memset(&t, 0, sizeof t);
    t.job_slot = job->slot;
    t.job_gen = job->gen;
    t.fn = job->fn;
    t.chunk = ci;
    t.first = 0;
    t.count = (uint32_t)n;
    if (job->in_shared) {
        t.in_off = (uint64_t)(job->in - p->region.arena) + first * job->in_stride;
        t.in_stride = (uint32_t)job->in_stride;
    } else {
        t.in_off = ch->in_off;
        t.in_stride = (uint32_t)job->in_item_bytes;
        copy_items(p->region.arena + ch->in_off, job->in_item_bytes,
                   job->in + first * job->in_stride, job->in_stride, job->in_item_bytes, n);
    }
    if (job->out_shared) {
        t.out_off = (uint64_t)(job->out - p->region.arena) + first * job->out_stride;
        t.out_stride = (uint32_t)job->out_stride;
    } else {
        t.out_off = ch->out_off;
        t.out_stride = (uint32_t)job->out_item_bytes;
    }
    return t;
}

/* ------------------------------------------------------------ dispatching */

void cpool__dispatch(cpool__pool_t *p, cpool_job_t *job) {
    while (!job->cancelled && job->next_item < job->count && job->chunks_in_flight < job->window) {
        int w = pick_worker(p);
        if (w < 0) break;
        uint32_t ci = 0;
        while (job->chunks[ci].in_use) ci++;
        cpool__chunk_t *ch = &job->chunks[ci];
        size_t n = job->count - job->next_item;
        if (n > job->chunk_items) n = job->chunk_items;
        n = reserve_staging(p, job, ch, n);
        if (n == 0) break; /* wait for the arena to drain */

        const cpool__task_t t = task_for(p, job, ci, n);
        ch->in_use = 1;
        ch->worker = (uint32_t)w;
        ch->first_item = job->next_item;
        ch->count = (uint32_t)n;
        ch->reported = 0;
        ch->task_in_off = t.in_off;
        ch->task_out_off = t.out_off;
        job->chunks_in_flight++;
        job->next_item += n;
        p->w[w].inflight++;
        if (push_task(p, (uint32_t)w, &t)) job->woke_worker = 1;
    }
    if (!job->cancelled && job->next_item < job->count) enqueue(p, job); else cpool__unqueue(p, job);
}
