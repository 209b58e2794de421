/* Dispatching: a job's items go out in chunks, each staged through the arena unless
 * the caller's buffers are already in it, onto the ring of the least loaded worker. */
#define _GNU_SOURCE
#include <string.h>

#include "dispatch.h"
#include "futex.h"
#include "ring.h"

/* Automatic chunks are guided: each takes a share of what is left undispatched,
 * 1 / (2 x workers) of it, so chunks start large (few descriptors for cheap items)
 * and shrink as the input drains (the last ones small enough to balance). A chunk
 * is never more than MAX_AUTO_CHUNK items, nor more than a worker's lifespan. */
#define MAX_AUTO_CHUNK 65536u
/* Chunk records a job may have at once: bounds its memory (64 bytes a record). */
#define MAX_WINDOW 1024u

static size_t chunk_size(const cpool__pool_t *p, const cpool_job_t *job) {
    const size_t left = job->count - job->next_item;
    size_t n = job->chunk_items;
    if (!n) {
        n = (left + 2 * (size_t)p->workers - 1) / (2 * (size_t)p->workers);
        if (n > MAX_AUTO_CHUNK) n = MAX_AUTO_CHUNK;
        if (p->opts.max_tasks_per_worker && n > p->opts.max_tasks_per_worker)
            n = (size_t)p->opts.max_tasks_per_worker;
    }
    if (n > UINT32_MAX / 2) n = UINT32_MAX / 2;
    return n < left ? n : left;
}

uint32_t cpool__job_window(const cpool__pool_t *p, size_t count, size_t chunk_items) {
    uint64_t w = (uint64_t)p->workers * p->region.header->ring_slots;
    if (w > MAX_WINDOW) w = MAX_WINDOW;
    const size_t chunks = chunk_items ? (count + chunk_items - 1) / chunk_items : count;
    if (chunks < w) w = chunks;
    return w ? (uint32_t)w : 1;
}

/* ------------------------------------------------------------ the queue of jobs */

static void enqueue(cpool__pool_t *p, cpool_job_t *job) {
    if (job->queued) return;
    job->queued = 1;
    job->next_queued = NULL;
    if (p->queue_tail) p->queue_tail->next_queued = job; else p->queue_head = job;
    p->queue_tail = job;
    atomic_store_explicit(&p->region.header->jobs_waiting, 1, memory_order_relaxed);
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
    if (!p->queue_head) atomic_store_explicit(&p->region.header->jobs_waiting, 0, memory_order_relaxed);
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
    cpool__task_slot_t *slot = cpool__task_slot(&p->region, w, pos);
    slot->task = *t;
    atomic_store_explicit(&slot->split, cpool__split_make(t->first, t->first + t->count),
                          memory_order_relaxed);
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

void cpool__finish_chunk(cpool__pool_t *p, cpool_job_t *job, cpool__chunk_t *ch) {
    if (!job->out_shared && ch->out_off != NO_EXTENT)
        copy_items(job->out + ch->first_item * job->out_stride, job->out_stride,
                   p->region.arena + ch->out_off, job->out_item_bytes, job->out_item_bytes,
                   ch->count);
    free_extent(p, &ch->in_off);
    free_extent(p, &ch->out_off);
    ch->in_use = 0;
    job->chunks_in_flight--;
    if (p->w[ch->worker].inflight) p->w[ch->worker].inflight--;
}

/* The task that runs chunk ci, its input staged. */
static cpool__task_t task_for(cpool__pool_t *p, cpool_job_t *job, uint32_t ci) {
    const cpool__chunk_t *ch = &job->chunks[ci];
    const size_t first = ch->first_item, n = ch->count;
    cpool__task_t t;
    memset(&t, 0, sizeof t);
    t.job_slot = job->slot;
    t.job_gen = job->gen;
    t.fn = job->fn;
    t.chunk = ci;
    t.serial = ch->serial;
    t.flags = job->count == 1 ? TASK_WHOLE_JOB : 0;
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

/* A free chunk record of the job, or -1 when all are in flight. */
static int free_chunk(cpool_job_t *job) {
    if (job->chunks_in_flight >= job->window) return -1;
    for (uint32_t k = 0; k < job->window; k++) {
        const uint32_t ci = (job->chunk_hint + k) % job->window;
        if (!job->chunks[ci].in_use) {
            job->chunk_hint = ci + 1;
            return (int)ci;
        }
    }
    return -1;
}

/* Fills chunk record ci (its staging reserved) for items [first, first + n) of the job
 * and pushes its task to worker w. */
static void start_chunk(cpool__pool_t *p, cpool_job_t *job, uint32_t ci, uint32_t w, size_t first,
                        size_t n) {
    cpool__chunk_t *ch = &job->chunks[ci];
    ch->in_use = 1;
    ch->serial = ++job->next_serial;
    ch->worker = w;
    ch->first_item = first;
    ch->count = (uint32_t)n;
    ch->reported = 0;
    ch->retry_item = ch->retries = 0;
    const cpool__task_t t = task_for(p, job, ci);
    job->chunks_in_flight++;
    p->w[w].inflight++;
    p->w[w].open_items += n;
    if (push_task(p, w, &t)) job->woke_worker = 1;
}

/* Sends items [first, first + n) of the job to worker w as a new chunk, or as many of
 * them as the arena has room for. Returns how many went (0: none, no room). */
static size_t send_chunk(cpool__pool_t *p, cpool_job_t *job, uint32_t w, size_t first, size_t n) {
    const int ci = free_chunk(job);
    if (ci < 0) return 0;
    n = reserve_staging(p, job, &job->chunks[ci], n);
    if (n) start_chunk(p, job, (uint32_t)ci, w, first, n);
    return n;
}

void cpool__dispatch(cpool__pool_t *p, cpool_job_t *job) {
    while (!job->cancelled && job->next_item < job->count) {
        int w = pick_worker(p);
        if (w < 0) break;
        const size_t sent = send_chunk(p, job, (uint32_t)w, job->next_item, chunk_size(p, job));
        if (sent == 0) break; /* wait for a chunk to end (window or arena full) */
        job->next_item += sent;
    }
    if (!job->cancelled && job->next_item < job->count) enqueue(p, job); else cpool__unqueue(p, job);
}

/* ------------------------------------------------------------ taking work back */

/* 1 when worker w has a process ready for work and nothing queued or running. */
static int idle(const cpool__pool_t *p, uint32_t w) {
    const cpool__worker_ctl_t *c = &p->region.ctl[w];
    return p->w[w].pid && p->w[w].inflight == 0 && p->w[w].kill_reason == KILL_NONE &&
           atomic_load_explicit(&c->to_worker.stop, memory_order_relaxed) == STOP_NONE &&
           atomic_load_explicit(&c->state.init_ok, memory_order_relaxed) &&
           atomic_load_explicit(&c->to_worker.task_head, memory_order_relaxed) ==
               atomic_load_explicit(&c->from_worker.task_tail, memory_order_acquire);
}

/* Items in worker w's ring that its process has not claimed yet. */
static uint64_t unclaimed(const cpool__pool_t *p, uint32_t w) {
    const cpool__worker_ctl_t *c = &p->region.ctl[w];
    const uint64_t head = atomic_load_explicit(&c->to_worker.task_head, memory_order_relaxed);
    uint64_t n = 0;
    for (uint64_t pos = atomic_load(&c->from_worker.task_tail); pos < head; pos++) {
        const uint64_t v = atomic_load(&cpool__task_slot(&p->region, w, pos)->split);
        n += cpool__split_end(v) - cpool__split_claimed(v);
    }
    return n;
}

size_t cpool__take_back(cpool__pool_t *p, uint32_t w, uint64_t pos, size_t want,
                        cpool_job_t **job_out, size_t *first) {
    cpool__task_t t;
    cpool_job_t *job = cpool__job_of_task(p, w, pos, &t);
    cpool__chunk_t *ch = cpool__chunk_of_task(job, &t);
    *job_out = job;
    if (!ch || want == 0) return 0;
    _Atomic uint64_t *split = &cpool__task_slot(&p->region, w, pos)->split;
    const uint32_t end = cpool__split_end(atomic_load(split));
    uint32_t from, to;
    cpool__split_take(split, end > want ? end - (uint32_t)want : 0, &from, &to);
    if (from == to) return 0;
    /* The chunk now ends where the take began. */
    ch->count = from;
    p->w[w].open_items -= to - from;
    *first = ch->first_item + from;
    if (ch->reported == ch->count) cpool__finish_chunk(p, job, ch);
    return to - from;
}

/* Moves up to `want` unclaimed items from the end of the task at position pos of
 * worker `from`'s ring to worker `to`, as a new chunk. Returns how many moved. The
 * staging is reserved before the take, so that a take never has to be undone. */
static size_t move_items(cpool__pool_t *p, uint32_t from, uint64_t pos, uint32_t to, size_t want) {
    cpool__task_t t;
    cpool_job_t *job = cpool__job_of_task(p, from, pos, &t);
    if (!cpool__chunk_of_task(job, &t) || job->cancelled) return 0;
    const int ci = free_chunk(job);
    if (ci < 0) return 0;
    cpool__chunk_t *spare = &job->chunks[ci];
    want = reserve_staging(p, job, spare, want);
    size_t first = 0;
    const size_t n = want ? cpool__take_back(p, from, pos, want, &job, &first) : 0;
    if (n == 0) {
        free_extent(p, &spare->in_off);
        free_extent(p, &spare->out_off);
        return 0;
    }
    start_chunk(p, job, (uint32_t)ci, to, first, n);
    return n;
}

/* Gives idle worker `to` half of the unclaimed items of the busiest other worker,
 * taken from the end of its ring (what it would run last). */
static void steal_for(cpool__pool_t *p, uint32_t to) {
    int victim = -1;
    uint64_t most = 0;
    for (uint32_t w = 0; w < p->workers; w++) {
        if (w == to) continue;
        const uint64_t u = unclaimed(p, w);
        if (u > most) {
            most = u;
            victim = (int)w;
        }
    }
    if (victim < 0) return;
    const cpool__worker_ctl_t *c = &p->region.ctl[victim];
    const uint64_t tail = atomic_load(&c->from_worker.task_tail);
    uint64_t want = (most + 1) / 2;
    for (uint64_t pos = atomic_load(&c->to_worker.task_head); pos-- > tail && want > 0;)
        want -= move_items(p, (uint32_t)victim, pos, to, want);
}

void cpool__rebalance(cpool__pool_t *p) {
    if (p->queue_head || p->state == POOL_TERMINATED || p->broken) return;
    /* First from the parent's own records (no shared line read): is there a worker
     * with nothing and one with an item beyond the one it may be running? */
    int empty = 0, loaded = 0;
    for (uint32_t w = 0; w < p->workers; w++) {
        empty |= p->w[w].pid && p->w[w].inflight == 0;
        loaded |= p->w[w].open_items >= 2;
    }
    if (!empty || !loaded) return;
    for (uint32_t w = 0; w < p->workers; w++)
        if (p->w[w].inflight == 0 && idle(p, w)) steal_for(p, w);
}
