/* Jobs: a map or a single task, cut into chunks, dispatched to the workers' task
 * rings, completed from their result rings. All of it runs in the parent under the
 * pool lock, except the waiting itself. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "futex.h"
#include "pool.h"
#include "ring.h"

#define NO_EXTENT UINT64_MAX
/* How long a waiting thread sleeps at most before it looks again on its own. */
#define WAIT_SLICE_NS 100000000ull

void cpool__wake_waiters(cpool__pool_t *p) {
    cpool__header_t *h = p->region.header;
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&h->parent_sleepers, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&h->results_seq, 1, memory_order_release);
        cpool__futex_wake_all(&h->results_seq);
    }
}

/* ------------------------------------------------------------ dispatching */

static void enqueue(cpool__pool_t *p, cpool_job_t *job) {
    if (job->queued) return;
    job->queued = 1;
    job->next_queued = NULL;
    if (p->queue_tail) p->queue_tail->next_queued = job; else p->queue_head = job;
    p->queue_tail = job;
}

static void dequeue(cpool__pool_t *p, cpool_job_t *job) {
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
    /* Dekker with the worker's sleep: our head store against its sleeping flag. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&c->from_worker.sleeping, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&c->to_worker.wake_seq, 1, memory_order_release);
        cpool__futex_wake_all(&c->to_worker.wake_seq);
        return 1;
    }
    return 0;
}

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

void cpool__dispatch(cpool__pool_t *p, cpool_job_t *job) {
    while (!job->cancelled && job->next_item < job->count && job->chunks_in_flight < job->window) {
        int w = pick_worker(p);
        if (w < 0) break;
        uint32_t ci = 0;
        while (job->chunks[ci].in_use) ci++;
        cpool__chunk_t *ch = &job->chunks[ci];
        size_t n = job->count - job->next_item;
        if (n > job->chunk_items) n = job->chunk_items;
        ch->in_off = ch->out_off = NO_EXTENT;
        /* Find room in the arena, halving the chunk until it fits. */
        for (;;) {
            if (!job->in_shared) ch->in_off = cpool__arena_alloc(&p->arena, n * job->in_item_bytes);
            if (!job->out_shared && ch->in_off != NO_EXTENT)
                ch->out_off = cpool__arena_alloc(&p->arena, n * job->out_item_bytes);
            int ok = (job->in_shared || ch->in_off != NO_EXTENT) &&
                     (job->out_shared || ch->out_off != NO_EXTENT);
            if (ok) break;
            free_extent(p, &ch->in_off);
            free_extent(p, &ch->out_off);
            if (n == 1) break;
            n /= 2;
        }
        if ((!job->in_shared && ch->in_off == NO_EXTENT) ||
            (!job->out_shared && ch->out_off == NO_EXTENT))
            break; /* wait for the arena to drain */

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
        ch->in_use = 1;
        ch->worker = (uint32_t)w;
        ch->first_item = first;
        ch->count = (uint32_t)n;
        ch->reported = 0;
        ch->task_in_off = t.in_off;
        ch->task_out_off = t.out_off;
        job->chunks_in_flight++;
        job->next_item += n;
        p->w[w].inflight++;
        if (push_task(p, (uint32_t)w, &t)) job->woke_worker = 1;
    }
    if (!job->cancelled && job->next_item < job->count) enqueue(p, job); else dequeue(p, job);
}

/* ------------------------------------------------------------ completing */

static void job_end_check(cpool__pool_t *p, cpool_job_t *job) {
    if (job->ended_items < job->count || atomic_load(&job->ended)) return;
    dequeue(p, job);
    if (job->timeout_ns && job->timeout_ns != p->opts.task_timeout_ns) p->custom_timeouts--;
    atomic_store_explicit(&job->ended, 1, memory_order_release);
}

static void finish_chunk(cpool__pool_t *p, cpool_job_t *job, cpool__chunk_t *ch) {
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

/* Records items [first, first+count) of the job as failed with code. */
static void record_failures(cpool_job_t *job, size_t first, size_t count, int code, int detail,
                            int32_t worker) {
    job->failed_items += count;
    if (first < job->first_failed) {
        job->first_failed = first;
        job->first_failed_code = code;
    }
    for (size_t i = 0; i < count; i++) {
        if (job->failures_count == job->failures_cap) {
            size_t n = job->failures_cap ? job->failures_cap * 2 : 16;
            cpool__failure_t *v = realloc(job->failures, n * sizeof *v);
            if (!v) return; /* the count stays right; the list is best effort */
            job->failures = v;
            job->failures_cap = n;
        }
        job->failures[job->failures_count++] =
            (cpool__failure_t){first + i, {code, code ? detail : 0, worker, 0}};
    }
}

void cpool__end_items(cpool__pool_t *p, cpool_job_t *job, uint32_t chunk, uint32_t first,
                      uint32_t count, int code, int detail, uint32_t worker) {
    if (chunk >= job->window) return;
    cpool__chunk_t *ch = &job->chunks[chunk];
    if (!ch->in_use) return;
    /* Completions of a chunk come in order; drop any part already ended so that each
     * item ends exactly once, whatever a worker (or a dying one) wrote. */
    uint64_t end = (uint64_t)first + count;
    if (end > ch->count) end = ch->count;
    if (first < ch->reported) first = ch->reported;
    if (first >= end) return;
    if (first > ch->reported) return; /* a gap: not from this chunk's sequence */
    count = (uint32_t)(end - first);
    if (job->statuses) {
        for (uint32_t i = 0; i < count; i++) {
            cpool_status_t *s = &job->statuses[ch->first_item + first + i];
            s->code = code;
            s->detail = code ? detail : 0;
            s->worker = (int32_t)worker;
            s->reserved = 0;
        }
    }
    if (code) record_failures(job, ch->first_item + first, count, code, detail, (int32_t)worker);
    ch->reported = (uint32_t)end;
    job->ended_items += count;
    if (ch->reported == ch->count) {
        finish_chunk(p, job, ch);
        cpool__dispatch(p, job);
    }
    job_end_check(p, job);
}

static cpool_job_t *job_at(cpool__pool_t *p, uint32_t slot, uint32_t gen) {
    if (slot >= CPOOL_MAX_JOBS) return NULL;
    cpool_job_t *job = p->jobs[slot];
    return (job && job->gen == gen) ? job : NULL;
}

void cpool__apply_completion(cpool__pool_t *p, uint32_t w, const cpool__completion_t *c) {
    cpool_job_t *job = job_at(p, c->job_slot, c->job_gen);
    if (job) cpool__end_items(p, job, c->chunk, c->first, c->count, c->code, c->detail, w);
}

cpool_job_t *cpool__job_of_task(cpool__pool_t *p, uint32_t w, uint64_t seq, cpool__task_t *task) {
    const uint32_t cap = p->region.header->ring_slots;
    *task = cpool__task_ring(&p->region, w)[cpool__ring_index(seq, cap)];
    return job_at(p, task->job_slot, task->job_gen);
}

int cpool__progress(cpool__pool_t *p) {
    int changed = 0;
    const uint32_t cap = p->region.header->ring_slots;
    for (uint32_t w = 0; w < p->workers; w++) {
        cpool__worker_ctl_t *c = &p->region.ctl[w];
        cpool__completion_t *ring = cpool__result_ring(&p->region, w);
        uint64_t pos;
        while ((pos = cpool__ring_peek(&c->from_worker.res_head, &c->to_worker.res_tail)) != UINT64_MAX) {
            cpool__completion_t rec = ring[cpool__ring_index(pos, cap)];
            cpool__ring_release(&c->to_worker.res_tail, pos);
            cpool__apply_completion(p, w, &rec);
            changed = 1;
        }
    }
    /* Ring space may have freed up: give queued jobs their turn, oldest first. */
    cpool_job_t *job = p->queue_head;
    while (job) {
        cpool_job_t *next = job->next_queued;
        size_t before = job->next_item;
        cpool__dispatch(p, job);
        if (job->next_item != before) changed = 1;
        job = next;
    }
    return changed;
}

/* Ends the items never dispatched with code. */
static void end_undispatched(cpool_job_t *job, int code) {
    if (job->next_item >= job->count) return;
    size_t n = job->count - job->next_item;
    if (job->statuses)
        for (size_t i = job->next_item; i < job->count; i++)
            job->statuses[i] = (cpool_status_t){code, 0, -1, 0};
    record_failures(job, job->next_item, n, code, 0, -1);
    job->ended_items += n;
    job->next_item = job->count;
}

void cpool__fail_all_jobs(cpool__pool_t *p, int code) {
    for (uint32_t s = 0; s < CPOOL_MAX_JOBS; s++) {
        cpool_job_t *job = p->jobs[s];
        if (!job || atomic_load(&job->ended)) continue;
        job->cancelled = 1;
        atomic_store_explicit(&p->region.cancelled[s], job->gen, memory_order_release);
        /* Items never dispatched end here; dispatched ones end with their worker. */
        end_undispatched(job, code);
        dequeue(p, job);
        job_end_check(p, job);
    }
}

/* ------------------------------------------------------------ creating jobs */

static size_t auto_chunk(const cpool__pool_t *p, size_t count) {
    /* About four chunks a worker, as multiprocessing and mpire choose: big enough to
     * amortize the ~0.1-1 us a chunk costs, small enough to balance uneven tasks. */
    size_t c = count / ((size_t)p->workers * 4);
    if (c < 1) c = 1;
    if (c > 65536) c = 65536;
    if (p->opts.max_tasks_per_worker && c > p->opts.max_tasks_per_worker)
        c = (size_t)p->opts.max_tasks_per_worker;
    return c;
}

/* 1 when items [0, count) at base with this stride span a range that neither
 * overflows size_t nor wraps the address space. */
static int span_fits(const void *base, size_t count, size_t stride, size_t item_bytes) {
    if (count == 0) return 1;
    if (stride && count - 1 > (SIZE_MAX - item_bytes) / stride) return 0;
    const size_t span = (count - 1) * stride + item_bytes;
    return (uintptr_t)base <= UINTPTR_MAX - span;
}

static int in_arena(const cpool__pool_t *p, const void *ptr, size_t stride, size_t count,
                    size_t item_bytes) {
    const unsigned char *b = ptr;
    if (b < p->region.arena || b >= p->region.arena + p->region.arena_bytes) return 0;
    uint64_t off = (uint64_t)(b - p->region.arena);
    uint64_t span = (uint64_t)(count - 1) * stride + item_bytes;
    return cpool__arena_contains(&p->region, off, span);
}

static int job_create(cpool__pool_t *p, cpool_fn_t fn, const void *in, size_t in_stride,
                      void *out, size_t out_stride, size_t count, size_t chunk_items,
                      cpool_status_t *statuses, uint64_t timeout_ns, int single,
                      cpool_job_t **out_job) {
    if (!in && count && in_stride) return -EINVAL;
    if (!out && count && out_stride) return -EINVAL;
    int err = cpool__fn_index(p, fn);
    if (err < 0) return err;
    const uint32_t index = (uint32_t)err;
    const cpool__fn_local_t *f = cpool__registry_get(&p->registry, index, &err);
    if (!f) return err;
    size_t in_item, out_item;
    if (f->kind == CPOOL_KIND_BYTES) {
        in_item = in_stride;
        out_item = out_stride;
    } else {
        in_item = f->in_bytes;
        out_item = f->out_bytes;
        /* A map's stride may exceed the record (records with gaps); a single task's
         * sizes are the record's, exactly. */
        if (in_stride < in_item || out_stride < out_item) return CPOOL_E_SIZE;
        if (single && (in_stride != in_item || out_stride != out_item)) return CPOOL_E_SIZE;
    }
    if (!span_fits(in, count, in_stride, in_item) || !span_fits(out, count, out_stride, out_item))
        return -EOVERFLOW;
    if (in_stride > UINT32_MAX || out_stride > UINT32_MAX) return CPOOL_E_TOO_LARGE;
    /* One item must fit in the arena next to its result, or it never could run. */
    const uint64_t a = CPOOL_ARENA_ALIGN;
    if (((in_item + a - 1) / a + (out_item + a - 1) / a) * a > p->region.arena_bytes)
        return CPOOL_E_TOO_LARGE;

    cpool_job_t *job = calloc(1, sizeof *job);
    if (!job) return -ENOMEM;
    job->pool = p;
    job->fn = index;
    job->f = f;
    job->in = in;
    job->out = out;
    job->in_stride = in_stride;
    job->out_stride = out_stride;
    job->in_item_bytes = in_item;
    job->out_item_bytes = out_item;
    job->count = count;
    job->chunk_items = chunk_items ? chunk_items : auto_chunk(p, count);
    if (job->chunk_items > UINT32_MAX / 2) job->chunk_items = UINT32_MAX / 2;
    job->statuses = single ? &job->single : statuses;
    job->single = (cpool_status_t){0, 0, -1, 0};
    job->timeout_ns = timeout_ns ? timeout_ns : p->opts.task_timeout_ns;
    job->first_failed = SIZE_MAX;
    job->window = p->workers * 4;
    if (count && job->window > (count + job->chunk_items - 1) / job->chunk_items)
        job->window = (uint32_t)((count + job->chunk_items - 1) / job->chunk_items);
    if (job->window == 0) job->window = 1;
    job->chunks = calloc(job->window, sizeof *job->chunks);
    if (single && in_stride) {
        job->owned_args = malloc(in_stride);
        if (job->owned_args) memcpy(job->owned_args, in, in_stride);
        job->in = job->owned_args;
    }
    if (!job->chunks || (single && in_stride && !job->owned_args)) {
        free(job->chunks);
        free(job->owned_args);
        free(job);
        return -ENOMEM;
    }
    if (count) {
        job->in_shared = !single && in_arena(p, in, in_stride, count, in_item);
        job->out_shared = !single && in_arena(p, out, out_stride, count, out_item);
    }

    pthread_mutex_lock(&p->lock);
    int rc = 0;
    if (p->broken) rc = p->broken;
    else if (p->state != CPOOL_OPEN) rc = CPOOL_E_CLOSED;
    else if (p->free_count == 0) rc = CPOOL_E_FULL;
    if (rc) {
        pthread_mutex_unlock(&p->lock);
        free(job->chunks);
        free(job->owned_args);
        free(job);
        return rc;
    }
    uint32_t s = p->free_slots[--p->free_count];
    job->slot = s;
    job->gen = ++p->job_gen[s];
    if (job->gen == 0) job->gen = p->job_gen[s] = 1; /* 0 means "not cancelled" */
    p->jobs[s] = job;
    p->live_jobs++;
    int poke = 0;
    if (job->timeout_ns && job->timeout_ns != p->opts.task_timeout_ns) {
        if (p->custom_timeouts++ == 0 || job->timeout_ns < p->min_custom_timeout_ns)
            p->min_custom_timeout_ns = job->timeout_ns;
        poke = 1;
    }
    cpool__dispatch(p, job);
    job_end_check(p, job); /* count == 0 */
    pthread_mutex_unlock(&p->lock);
    if (poke) cpool__supervisor_poke(p);
    *out_job = job;
    return 0;
}

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
            atomic_load_explicit(&c->to_worker.res_tail, memory_order_relaxed))
            return 1;
    }
    return 0;
}

/* Drains and dispatches for everybody when there is something to drain. */
static void make_progress(cpool__pool_t *p, int force) {
    if (!force && !results_pending(p) && !p->queue_head) return;
    pthread_mutex_lock(&p->lock);
    int changed = cpool__progress(p);
    pthread_mutex_unlock(&p->lock);
    if (changed) cpool__wake_waiters(p);
}

int cpool_job_wait(cpool_job_t *job, uint64_t timeout_ns) {
    if (!job) return -EINVAL;
    cpool__pool_t *p = job->pool;
    cpool__header_t *h = p->region.header;
    const uint64_t start = cpool__now_ns();
    cpool__backoff_t b;
    cpool__backoff_start(&b);
    /* A worker just woken from its futex is often placed on the waking CPU: spinning
     * here would keep it off that CPU for the whole spin window (idle-latency p50 was
     * 108 us that way), yielding lets it run at once. */
    if (job->woke_worker) b.yielding = 1;
    make_progress(p, 1);
    for (;;) {
        if (atomic_load_explicit(&job->ended, memory_order_acquire)) return job_result(job);
        make_progress(p, 0);
        if (atomic_load_explicit(&job->ended, memory_order_acquire)) return job_result(job);
        uint64_t now = 0;
        if (timeout_ns && (b.rounds & 63u) == 0 && (now = cpool__now_ns()) - start >= timeout_ns)
            return -ETIMEDOUT;
        if (cpool__backoff(&b, p->opts.spin_ns)) continue;

        atomic_fetch_add_explicit(&h->parent_sleepers, 1, memory_order_relaxed);
        uint32_t seq = atomic_load_explicit(&h->results_seq, memory_order_acquire);
        atomic_thread_fence(memory_order_seq_cst);
        if (!results_pending(p) && !atomic_load_explicit(&job->ended, memory_order_acquire)) {
            uint64_t slice = WAIT_SLICE_NS;
            if (timeout_ns) {
                now = cpool__now_ns();
                if (now - start >= timeout_ns) {
                    atomic_fetch_sub_explicit(&h->parent_sleepers, 1, memory_order_relaxed);
                    return -ETIMEDOUT;
                }
                if (timeout_ns - (now - start) < slice) slice = timeout_ns - (now - start);
            }
            cpool__futex_wait(&h->results_seq, seq, slice);
        }
        atomic_fetch_sub_explicit(&h->parent_sleepers, 1, memory_order_relaxed);
        cpool__backoff_start(&b);
    }
}

int cpool_job_done(cpool_job_t *job) {
    if (!job) return -EINVAL;
    make_progress(job->pool, 0);
    return atomic_load_explicit(&job->ended, memory_order_acquire) ? 1 : 0;
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
    job->cancelled = 1;
    atomic_store_explicit(&p->region.cancelled[job->slot], job->gen, memory_order_release);
    end_undispatched(job, CPOOL_E_CANCELLED);
    dequeue(p, job);
    /* Stop the workers running this job now; queued tasks of it are skipped by the
     * workers, which see the cancelled generation. */
    for (uint32_t w = 0; w < p->workers; w++) {
        cpool__worker_ctl_t *c = &p->region.ctl[w];
        if (!p->w[w].pid || atomic_load(&c->state.phase) != CPOOL_PHASE_RUNNING) continue;
        uint64_t seq = atomic_load(&c->state.cur_seq);
        cpool__task_t t;
        if (cpool__job_of_task(p, w, seq, &t) != job) continue;
        if (p->w[w].kill_reason == CPOOL_KILL_NONE)
            cpool__kill_worker(p, w, CPOOL_KILL_CANCEL, seq, atomic_load(&c->state.cur_item));
    }
    job_end_check(p, job);
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
    p->jobs[job->slot] = NULL;
    p->free_slots[p->free_count++] = job->slot;
    p->live_jobs--;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    free(job->chunks);
    free(job->owned_args);
    free(job->failures);
    free(job);
}

/* ------------------------------------------------------------ public entry points */

int cpool_map_start(cpool_pool_t *h, cpool_fn_t fn, const void *in, size_t in_stride_bytes,
                    void *out, size_t out_stride_bytes, size_t count, size_t chunk_items,
                    cpool_status_t *statuses, cpool_job_t **job) {
    if (!job) return -EINVAL;
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    rc = job_create(p, fn, in, in_stride_bytes, out, out_stride_bytes, count, chunk_items,
                    statuses, 0, 0, job);
    cpool__pool_leave(p);
    return rc;
}

/* The blocking calls stay "in" the pool while they wait, so that cpool_destroy on
 * another thread ends their job and waits for them instead of freeing under them. */
int cpool_map(cpool_pool_t *h, cpool_fn_t fn, const void *in, size_t in_stride_bytes,
              void *out, size_t out_stride_bytes, size_t count, size_t chunk_items,
              cpool_status_t *statuses) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    cpool_job_t *job;
    rc = job_create(p, fn, in, in_stride_bytes, out, out_stride_bytes, count, chunk_items,
                    statuses, 0, 0, &job);
    if (rc == 0) {
        rc = cpool_job_wait(job, 0);
        cpool_job_free(job);
    }
    cpool__pool_leave(p);
    return rc;
}

int cpool_submit(cpool_pool_t *h, cpool_fn_t fn, const void *args, size_t args_bytes,
                 void *result, size_t result_bytes, uint64_t timeout_ns, cpool_job_t **job) {
    if (!job) return -EINVAL;
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    rc = job_create(p, fn, args, args_bytes, result, result_bytes, 1, 1, NULL, timeout_ns, 1, job);
    cpool__pool_leave(p);
    return rc;
}

int cpool_apply(cpool_pool_t *h, cpool_fn_t fn, const void *args, size_t args_bytes,
                void *result, size_t result_bytes, uint64_t timeout_ns, cpool_status_t *status) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    cpool_job_t *job;
    rc = job_create(p, fn, args, args_bytes, result, result_bytes, 1, 1, NULL, timeout_ns, 1, &job);
    if (rc == 0) {
        rc = cpool_job_wait(job, 0);
        if (status) cpool_job_status(job, status);
        cpool_job_free(job);
    }
    cpool__pool_leave(p);
    return rc;
}
