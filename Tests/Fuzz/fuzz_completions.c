/* libFuzzer target: completion records are what a worker writes into shared memory,
 * so the parent must survive any bytes there. A job of 64 items in chunks of 8 is
 * dispatched to a pool whose workers never run (nothing consumes its ring); the input
 * is a sequence of 32-byte completion records applied as if a worker had published
 * them. Invariants: no item ends twice, counts never pass the job's size, and the
 * arena's bytes are all back once every item has ended. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "completion.h"
#include "dispatch.h"

enum { ITEMS = 64, CHUNK = 8 };

static cpool__pool_t *make_fake_pool(void) {
    cpool__pool_t *p = calloc(1, sizeof *p);
    cpool_options_init(&p->opts);
    p->workers = 1;
    p->opts.workers = 1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    p->w = calloc(1, sizeof *p->w);
    p->w[0].pidfd = -1;
    if (cpool__region_create(&p->region, 1, 256, 1 << 20, 1 << 16, 1 << 12) != 0) abort();
    cpool__arena_init(&p->arena, p->region.arena_bytes);
    cpool__registry_init(&p->registry, &p->region);
    for (uint32_t i = 0; i < MAX_JOBS; i++) p->free_slots[i] = MAX_JOBS - 1 - i;
    p->free_count = MAX_JOBS;
    return p;
}

static int64_t square(int64_t x) { return x * x; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static cpool__pool_t *p;
    static cpool_fn_t fn;
    if (!p) {
        p = make_fake_pool();
        fn = cpool__registry_add(&p->registry, "square", "i64(i64)", (void *)square, NULL, NULL,
                                 NULL, 0, 0, 0, 0);
    }
    /* A fresh job each input; the rings are emptied first (nothing runs them). */
    cpool__worker_ctl_t *c = &p->region.ctl[0];
    atomic_store(&c->from_worker.task_tail, atomic_load(&c->to_worker.task_head));
    static int64_t in[ITEMS], out[ITEMS];
    static cpool_status_t st[ITEMS];
    /* The pool writes reserved = 0 with every status: a sentinel there tells which
     * statuses were written (a sentinel in `code` could be a code the input chose). */
    for (int i = 0; i < ITEMS; i++) st[i].reserved = 0x5a5a5a5a;

    cpool_job_t *job = calloc(1, sizeof *job);
    job->pool = p;
    job->fn = (uint32_t)fn;
    job->in = (const unsigned char *)in;
    job->out = (unsigned char *)out;
    job->in_stride = job->out_stride = job->in_item_bytes = job->out_item_bytes = 8;
    job->count = ITEMS;
    job->chunk_items = CHUNK;
    job->statuses = st;
    job->first_failed = SIZE_MAX;
    job->window = 4;
    job->chunks = calloc(job->window, sizeof *job->chunks);
    pthread_mutex_lock(&p->lock);
    uint32_t slot = p->free_slots[--p->free_count];
    job->slot = slot;
    job->gen = ++p->job_gen[slot];
    p->jobs[slot] = job;
    cpool_job_t *keep = job;
    cpool__dispatch(p, job); /* the first window of chunks goes into the (idle) ring */

    for (size_t off = 0; off + sizeof(cpool__completion_t) <= size; off += sizeof(cpool__completion_t)) {
        cpool__completion_t rec;
        memcpy(&rec, data + off, sizeof rec);
        /* Half of the records aim at this job, so that the checks past the slot and
         * generation get exercised too. */
        if (rec.detail & 1) {
            rec.job_slot = slot;
            rec.job_gen = job->gen;
            rec.chunk %= job->window;
            rec.serial = job->chunks[rec.chunk].serial;
        }
        cpool__apply_completion(p, 0, &rec);
        if (job->ended_items > job->count || job->failed_items > job->ended_items) {
            fprintf(stderr, "counts: ended %zu failed %zu of %zu\n", job->ended_items, job->failed_items, job->count);
            abort();
        }
    }
    size_t ended = 0;
    for (int i = 0; i < ITEMS; i++) ended += st[i].reserved != 0x5a5a5a5a;
    if (ended != job->ended_items) { /* every item ended exactly once */
        fprintf(stderr, "statuses written %zu, items ended %zu\n", ended, job->ended_items);
        abort();
    }

    /* End whatever is left, as a cancel would, and check that the arena is whole. */
    cpool__fail_all_jobs(p, CPOOL_E_CANCELLED);
    for (uint32_t ch = 0; ch < job->window; ch++)
        if (job->chunks[ch].in_use)
            cpool__end_items(p, job, ch, job->chunks[ch].reported,
                             job->chunks[ch].count - job->chunks[ch].reported, CPOOL_E_CANCELLED, 0, 0);
    if (job->ended_items != job->count || !atomic_load(&job->ended)) {
        fprintf(stderr, "after the cancel: ended %zu of %zu, job ended %d\n", job->ended_items, job->count,
                (int)atomic_load(&job->ended));
        abort();
    }
    if (p->arena.in_use != 0) {
        fprintf(stderr, "arena bytes still in use: %llu\n", (unsigned long long)p->arena.in_use);
        abort();
    }
    cpool__job_remove(p, keep);
    pthread_mutex_unlock(&p->lock);
    cpool__job_destroy(keep);
    return 0;
}
