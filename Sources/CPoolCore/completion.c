/* Completions: each item of a job ends exactly once, whoever ends it: the worker that
 * ran it (through its result ring), the parent settling a dead worker's task, or a
 * cancellation. A job ends when all of its items have. */
#define _GNU_SOURCE
#include <stdlib.h>

#include "completion.h"
#include "dispatch.h"
#include "output.h"
#include "ring.h"
#include "statistics.h"

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

/* Ends items of a chunk (see cpool__end_items). Items the parent ends itself come off
 * the job's shared count too, which a worker's own completions took off already. */
static void end_items(cpool__pool_t *p, cpool_job_t *job, uint32_t chunk, uint32_t first,
                      uint32_t count, int code, int detail, uint32_t worker, int by_worker) {
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
    if (by_worker && (p->opts.flags & CPOOL_OPTION_INSIGHTS))
        cpool__resolve_slowest(p, worker, job, ch, chunk, first, count);
    if (job->statuses) {
        for (uint32_t i = 0; i < count; i++)
            job->statuses[ch->first_item + first + i] =
                (cpool_status_t){code, code ? detail : 0, (int32_t)worker, 0};
    }
    if (code) record_failures(job, ch->first_item + first, count, code, detail, (int32_t)worker);
    /* A function's error keeps its output (the error's description); an item
     * stopped from outside has none, whatever it had written. */
    if (code && code != CPOOL_E_FUNCTION_ERROR)
        for (uint32_t i = 0; i < count; i++) cpool__output_drop(job, ch->first_item + first + i);
    if (!by_worker) cpool__job_left_sub(&p->region.job_left[job->slot], job->gen, count);
    ch->reported = (uint32_t)end;
    job->ended_items += count;
    p->w[ch->worker].open_items -= count;
    if (ch->reported == ch->count) {
        cpool__finish_chunk(p, job, ch);
        cpool__dispatch(p, job);
    }
    cpool__job_end_check(p, job);
}

void cpool__end_items(cpool__pool_t *p, cpool_job_t *job, uint32_t chunk, uint32_t first,
                      uint32_t count, int code, int detail, uint32_t worker) {
    end_items(p, job, chunk, first, count, code, detail, worker, 0);
}

void cpool__apply_completion(cpool__pool_t *p, uint32_t w, const cpool__completion_t *c) {
    cpool_job_t *job = cpool__job_at(p, c->job_slot, c->job_gen);
    if (job && c->chunk < job->window && job->chunks[c->chunk].serial == c->serial)
        end_items(p, job, c->chunk, c->first, c->count, c->code, c->detail, w, 1);
}

int cpool__progress(cpool__pool_t *p) {
    int changed = 0;
    const uint32_t cap = p->region.header->ring_slots;
    for (uint32_t w = 0; w < p->workers; w++) {
        cpool__worker_ctl_t *c = &p->region.ctl[w];
        cpool__completion_t *ring = cpool__result_ring(&p->region, w);
        /* The completions published by now, then the outputs: a worker publishes an
         * item's output before the completion that ends the item. */
        const uint64_t head = atomic_load_explicit(&c->from_worker.res_head, memory_order_acquire);
        if (cpool__output_drain(p, w)) changed = 1;
        uint64_t pos;
        while ((pos = atomic_load_explicit(&c->to_worker.res_tail, memory_order_relaxed)) != head) {
            cpool__completion_t rec = ring[cpool__ring_index(pos, cap)];
            cpool__ring_release(&c->to_worker.res_tail, pos);
            cpool__apply_completion(p, w, &rec);
            changed = 1;
        }
    }
    /* Ring space may have freed up: give queued jobs their turn; then give idle
     * workers work that busy ones have not started. */
    if (cpool__dispatch_queued(p)) changed = 1;
    if (changed) cpool__rebalance(p);
    return changed;
}

/* Ends items [first, first + n) of the job, which no worker will run, with code. */
static void end_unrun(cpool__pool_t *p, cpool_job_t *job, size_t first, size_t n, int code) {
    if (n == 0) return;
    if (job->statuses)
        for (size_t i = first; i < first + n; i++) job->statuses[i] = (cpool_status_t){code, 0, -1, 0};
    record_failures(job, first, n, code, 0, -1);
    cpool__job_left_sub(&p->region.job_left[job->slot], job->gen, n);
    job->ended_items += n;
}

void cpool__end_undispatched(cpool__pool_t *p, cpool_job_t *job, int code) {
    if (job->next_item < job->count) {
        end_unrun(p, job, job->next_item, job->count - job->next_item, code);
        job->next_item = job->count;
    }
    cpool__unqueue(p, job);
}

void cpool__withdraw(cpool__pool_t *p, cpool_job_t *job, int code) {
    for (uint32_t w = 0; w < p->workers; w++) {
        const cpool__worker_ctl_t *c = &p->region.ctl[w];
        const uint64_t head = atomic_load(&c->to_worker.task_head);
        for (uint64_t pos = atomic_load(&c->from_worker.task_tail); pos < head; pos++) {
            cpool__task_t t;
            if (cpool__job_of_task(p, w, pos, &t) != job) continue;
            cpool_job_t *owner;
            size_t first = 0;
            const size_t n = cpool__take_back(p, w, pos, SIZE_MAX, &owner, &first);
            end_unrun(p, job, first, n, code);
        }
    }
}

void cpool__fail_all_jobs(cpool__pool_t *p, int code) {
    for (uint32_t s = 0; s < MAX_JOBS; s++) {
        cpool_job_t *job = p->jobs[s];
        if (!job || atomic_load(&job->ended)) continue;
        cpool__job_mark_cancelled(p, job);
        /* Items never dispatched end here; dispatched ones end with their worker. */
        cpool__end_undispatched(p, job, code);
        cpool__job_end_check(p, job);
    }
}

/* Where the task at position seq of worker w's ring ends now (its split word's end). */
static uint32_t task_end(cpool__pool_t *p, uint32_t w, uint64_t seq) {
    return cpool__split_end(atomic_load(&cpool__task_slot(&p->region, w, seq)->split));
}

void cpool__flush_ring(cpool__pool_t *p, uint32_t w, int code) {
    cpool__worker_ctl_t *c = &p->region.ctl[w];
    uint64_t tail = atomic_load(&c->from_worker.task_tail);
    const uint64_t head = atomic_load(&c->to_worker.task_head);
    for (; tail != head; tail++) {
        cpool__task_t t;
        cpool_job_t *job = cpool__job_of_task(p, w, tail, &t);
        const uint32_t end = task_end(p, w, tail);
        atomic_store(&c->from_worker.task_tail, tail + 1);
        if (cpool__chunk_of_task(job, &t) && end > t.first) cpool__end_items(p, job, t.chunk, t.first, end - t.first, code, 0, w);
    }
}

/* ------------------------------------------------------------ a dead worker's task */

/* The code the interrupted item ends with, or 0 to run it again (a crash retry, or a
 * kill meant for another task). */
static int interrupted_item_code(cpool__pool_t *p, cpool_job_t *job, cpool__chunk_t *ch,
                                 uint32_t item, const cpool__interruption_t *it) {
    if (job->cancelled) return CPOOL_E_CANCELLED;
    switch (it->cause) {
    case CAUSE_TIMEOUT: return CPOOL_E_TASK_TIMEOUT;
    case CAUSE_CANCEL: return CPOOL_E_CANCELLED;
    case CAUSE_INNOCENT: return 0;
    case CAUSE_CRASH:
        /* The retry policy: the same item crashing again spends a retry. */
        if (ch->retry_item != item) {
            ch->retry_item = item;
            ch->retries = 0;
        }
        if (ch->retries < p->opts.crash_retries) {
            ch->retries++;
            return 0;
        }
        return CPOOL_E_CRASHED;
    }
    return CPOOL_E_CRASHED;
}

void cpool__settle_interrupted_task(cpool__pool_t *p, uint32_t w, const cpool__interruption_t *it) {
    cpool__worker_ctl_t *c = &p->region.ctl[w];
    cpool__task_t t;
    cpool_job_t *job = cpool__job_of_task(p, w, it->seq, &t);
    cpool__chunk_t *ch = cpool__chunk_of_task(job, &t);
    if (!ch) {
        atomic_store(&c->from_worker.task_tail, it->seq + 1);
        return;
    }
    const uint64_t end = task_end(p, w, it->seq);
    const uint64_t done_end = t.first + (it->done < end - t.first ? it->done : end - t.first);
    /* What it ran but did not live to publish ended well. */
    if (ch->reported < done_end)
        cpool__end_items(p, job, t.chunk, ch->reported, (uint32_t)(done_end - ch->reported), 0, 0, w);
    uint64_t rest = done_end;
    if (it->running && done_end < end && done_end >= ch->reported) {
        const int code = interrupted_item_code(p, job, ch, (uint32_t)done_end, it);
        if (code) {
            cpool__end_items(p, job, t.chunk, (uint32_t)done_end, 1, code,
                             code == CPOOL_E_CRASHED ? it->detail : 0, w);
            rest = done_end + 1;
        } else {
            cpool__output_drop(job, ch->first_item + done_end); /* it runs again */
        }
    }
    if (ch->in_use && ch->reported > rest) rest = ch->reported;
    if (!ch->in_use || rest >= end) {
        atomic_store(&c->from_worker.task_tail, it->seq + 1);
        return;
    }
    /* The replacement goes on with the rest of this task. */
    cpool__task_slot_t *slot = cpool__task_slot(&p->region, w, it->seq);
    const uint64_t skip = rest - t.first;
    t.in_off += skip * t.in_stride;
    t.out_off += skip * t.out_stride;
    t.first = (uint32_t)rest;
    t.count = (uint32_t)(end - rest);
    slot->task = t;
    atomic_store(&slot->split, cpool__split_make(t.first, (uint32_t)end));
}
