/* Jobs: checking a request, the job table, and a job's end. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "job.h"
#include "output.h"
#include "ring.h"
#include "supervisor.h"

/* 1 when items [0, count) at base with this stride span a range that neither
 * overflows size_t nor wraps the address space. */
static int span_fits(const void *base, size_t count, size_t stride, size_t item_bytes) {
    if (count == 0) return 1;
    if (stride && count - 1 > (SIZE_MAX - item_bytes) / stride) return 0;
    const size_t span = (count - 1) * stride + item_bytes;
    return (uintptr_t)base <= UINTPTR_MAX - span;
}

/* 1 when the items lie inside the pool's arena (a buffer from cpool_alloc). */
static int in_arena(const cpool__pool_t *p, const void *ptr, size_t stride, size_t count,
                    size_t item_bytes) {
    const unsigned char *b = ptr;
    if (b < p->region.arena || b >= p->region.arena + p->region.arena_bytes) return 0;
    uint64_t off = (uint64_t)(b - p->region.arena);
    uint64_t span = (uint64_t)(count - 1) * stride + item_bytes;
    return cpool__arena_contains(&p->region, off, span);
}

/* Checks the request against the function's signature; sets the bytes one item needs
 * in the arena. Returns 0 or the code the call fails with. */
static int check_request(cpool__pool_t *p, const cpool__job_request_t *rq,
                         const cpool__fn_local_t **fn_out, uint32_t *index_out,
                         size_t *in_item, size_t *out_item) {
    if (!rq->in && rq->count && rq->in_stride) return -EINVAL;
    if (!rq->out && rq->count && rq->out_stride) return -EINVAL;
    if (rq->timeout_ns && cpool__threads(p)) return CPOOL_E_START_METHOD; /* cannot stop it */
    int err = cpool__fn_index(p, rq->fn);
    if (err < 0) return err;
    const uint32_t index = (uint32_t)err;
    const cpool__fn_local_t *f = cpool__registry_get(&p->registry, index, &err);
    if (!f) return err;
    if (f->kind == FN_KIND_BYTES) {
        *in_item = rq->in_stride;
        *out_item = rq->out_stride;
    } else {
        *in_item = f->in_bytes;
        *out_item = f->out_bytes;
        /* A map's stride may exceed the record (records with gaps); a single task's
         * sizes are the record's, exactly. */
        if (rq->in_stride < *in_item || rq->out_stride < *out_item) return CPOOL_E_SIZE;
        if (rq->single && (rq->in_stride != *in_item || rq->out_stride != *out_item))
            return CPOOL_E_SIZE;
    }
    if (!span_fits(rq->in, rq->count, rq->in_stride, *in_item) ||
        !span_fits(rq->out, rq->count, rq->out_stride, *out_item))
        return -EOVERFLOW;
    if (rq->in_stride > UINT32_MAX || rq->out_stride > UINT32_MAX) return CPOOL_E_TOO_LARGE;
    /* One item must fit in the arena next to its result, or it never could run. */
    const uint64_t a = ARENA_ALIGN;
    if (((*in_item + a - 1) / a + (*out_item + a - 1) / a) * a > p->region.arena_bytes)
        return CPOOL_E_TOO_LARGE;
    *fn_out = f;
    *index_out = index;
    return 0;
}

/* A job for the request, not in the table yet; NULL when memory ran out. */
static cpool_job_t *job_new(cpool__pool_t *p, const cpool__job_request_t *rq,
                            const cpool__fn_local_t *f, uint32_t index, size_t in_item,
                            size_t out_item) {
    cpool_job_t *job = calloc(1, sizeof *job);
    if (!job) return NULL;
    job->pool = p;
    job->fn = index;
    job->f = f;
    job->in = rq->in;
    job->out = rq->out;
    job->in_stride = rq->in_stride;
    job->out_stride = rq->out_stride;
    job->in_item_bytes = in_item;
    job->out_item_bytes = out_item;
    job->count = rq->count;
    job->chunk_items = rq->chunk_items; /* 0: guided, see dispatch.c */
    job->statuses = rq->single ? &job->single : rq->statuses;
    job->single = (cpool_status_t){0, 0, -1, 0};
    job->timeout_ns = rq->timeout_ns ? rq->timeout_ns : p->opts.task_timeout_ns;
    job->first_failed = SIZE_MAX;
    job->window = cpool__job_window(p, rq->count, rq->chunk_items);
    job->chunks = calloc(job->window, sizeof *job->chunks);
    if (!job->chunks) {
        cpool__job_destroy(job);
        return NULL;
    }
    if (rq->single && rq->in_stride) {
        /* A submit returns before its task runs: the task reads a copy. */
        job->owned_args = malloc(rq->in_stride);
        if (!job->owned_args) {
            cpool__job_destroy(job);
            return NULL;
        }
        memcpy(job->owned_args, rq->in, rq->in_stride);
        job->in = job->owned_args;
    }
    if (rq->count && !rq->single) {
        job->in_shared = in_arena(p, rq->in, rq->in_stride, rq->count, in_item);
        job->out_shared = in_arena(p, rq->out, rq->out_stride, rq->count, out_item);
    }
    return job;
}

/* Jobs with a timeout of their own make the supervisor look more often. */
static int has_custom_timeout(const cpool__pool_t *p, const cpool_job_t *job) {
    return job->timeout_ns && job->timeout_ns != p->opts.task_timeout_ns;
}

int cpool__job_create(cpool__pool_t *p, const cpool__job_request_t *rq, cpool_job_t **out) {
    const cpool__fn_local_t *f = NULL;
    uint32_t index = 0;
    size_t in_item = 0, out_item = 0;
    int rc = check_request(p, rq, &f, &index, &in_item, &out_item);
    if (rc) return rc;
    cpool_job_t *job = job_new(p, rq, f, index, in_item, out_item);
    if (!job) return -ENOMEM;

    pthread_mutex_lock(&p->lock);
    if (p->broken) rc = p->broken;
    else if (p->state != POOL_OPEN) rc = CPOOL_E_CLOSED;
    else if (p->free_count == 0) rc = CPOOL_E_FULL;
    if (rc) {
        pthread_mutex_unlock(&p->lock);
        cpool__job_destroy(job);
        return rc;
    }
    uint32_t s = p->free_slots[--p->free_count];
    job->slot = s;
    job->gen = ++p->job_gen[s];
    if (job->gen == 0) job->gen = p->job_gen[s] = 1; /* 0 means "not cancelled" */
    p->jobs[s] = job;
    if (job->count > 1) /* a single item's task says so itself (TASK_WHOLE_JOB) */
        atomic_store(&p->region.job_left[s], cpool__job_left_make(job->gen, job->count));
    const int custom = has_custom_timeout(p, job);
    if (custom && (p->custom_timeouts++ == 0 || job->timeout_ns < p->min_custom_timeout_ns))
        p->min_custom_timeout_ns = job->timeout_ns;
    cpool__dispatch(p, job);
    cpool__job_end_check(p, job); /* count == 0 */
    pthread_mutex_unlock(&p->lock);
    if (custom) cpool__supervisor_poke(p);
    *out = job;
    return 0;
}

void cpool__job_remove(cpool__pool_t *p, cpool_job_t *job) {
    p->jobs[job->slot] = NULL;
    p->free_slots[p->free_count++] = job->slot;
    pthread_cond_broadcast(&p->changed);
}

void cpool__job_destroy(cpool_job_t *job) {
    if (!job) return;
    free(job->chunks);
    free(job->owned_args);
    free(job->failures);
    cpool__output_free(job);
    free(job);
}

cpool_job_t *cpool__job_at(cpool__pool_t *p, uint32_t slot, uint32_t gen) {
    if (slot >= MAX_JOBS) return NULL;
    cpool_job_t *job = p->jobs[slot];
    return (job && job->gen == gen) ? job : NULL;
}

cpool_job_t *cpool__job_of_task(cpool__pool_t *p, uint32_t w, uint64_t seq, cpool__task_t *task) {
    *task = cpool__task_slot(&p->region, w, seq)->task;
    return cpool__job_at(p, task->job_slot, task->job_gen);
}

void cpool__job_end_check(cpool__pool_t *p, cpool_job_t *job) {
    if (job->ended_items < job->count || atomic_load(&job->ended)) return;
    cpool__unqueue(p, job);
    if (has_custom_timeout(p, job)) p->custom_timeouts--;
    atomic_store_explicit(&job->ended, 1, memory_order_release);
}

void cpool__job_mark_cancelled(cpool__pool_t *p, cpool_job_t *job) {
    job->cancelled = 1;
    atomic_store_explicit(&p->region.cancelled[job->slot], job->gen, memory_order_release);
    cpool__unqueue(p, job);
}
