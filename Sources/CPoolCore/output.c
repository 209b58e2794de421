/* Items' outputs of any size (see output.h): the worker's side writes records into its
 * output ring, the parent's side drains them into the job's store. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "futex.h"
#include "output.h"

#define HEADER_BYTES ((uint64_t)sizeof(cpool__output_record_t))
/* A piece smaller than this is not worth a record while the parent can make room. */
#define MIN_PIECE_BYTES 4096u
/* Outputs of at least this size get a malloc of their own; smaller ones share blocks. */
#define OWN_ALLOCATION_BYTES (64u << 10)
#define BLOCK_BYTES (1u << 20)
/* A whole output larger than this is a scribbling worker's, not a real one. */
#define MAX_OUTPUT_BYTES (1ull << 40)
/* How long a worker waiting for room sleeps before it checks its parent still lives. */
#define ROOM_CHECK_NS 1000000000ull

_Thread_local cpool__output_writer_t cpool__writer;

static uint64_t align8(uint64_t v) { return (v + 7) & ~(uint64_t)7; }

/* ------------------------------------------------------------ worker side */

static int has_room(void *arg) {
    const cpool__output_writer_t *w = arg;
    const uint64_t head = atomic_load_explicit(&w->ctl->from_worker.out_head, memory_order_relaxed);
    const uint64_t tail = atomic_load_explicit(&w->ctl->to_worker.out_tail, memory_order_acquire);
    return w->capacity - (head - tail) >= w->capacity / 2 ||
           atomic_load_explicit(&w->ctl->to_worker.stop, memory_order_acquire) == STOP_NOW;
}

static int terminated(const cpool__output_writer_t *w) {
    return atomic_load_explicit(&w->ctl->to_worker.stop, memory_order_acquire) == STOP_NOW;
}

/* Waits until the parent has drained half of the ring. Only the parent frees room, so
 * it is woken first: it drains whenever one of its threads waits on a job. Returns 0,
 * or -ECANCELED on a worker thread of a terminated pool (a process just leaves). */
static int wait_for_room(cpool__output_writer_t *w) {
    cpool__wake_waiters(w->pool);
    cpool__backoff_t b;
    cpool__backoff_start(&b);
    while (!has_room(w) && !terminated(w)) {
        if (cpool__backoff(&b, w->pool->region.header->settings.spin_ns)) continue;
        if (cpool__sleep_unless(&w->ctl->from_worker.sleeping, &w->ctl->to_worker.wake_seq,
                                ROOM_CHECK_NS, has_room, w) == -ETIMEDOUT &&
            w->parent && getppid() != w->parent)
            _exit(0);
        cpool__backoff_start(&b);
    }
    /* Terminated: the parent drains nothing more (and kills a worker process). */
    if (terminated(w)) {
        if (w->parent) _exit(0);
        return -ECANCELED;
    }
    return 0;
}

/* Writes one record with as much of bytes[offset, total) as fits, waiting for room
 * when too little is free. Returns the bytes written (0 only for an empty output), or
 * UINT64_MAX when the pool was terminated meanwhile (worker threads). */
static uint64_t write_piece(cpool__output_writer_t *w, uint32_t item, const unsigned char *bytes,
                            uint64_t offset, uint64_t total) {
    cpool__worker_ctl_t *ctl = w->ctl;
    const uint64_t cap = w->capacity;
    const uint64_t left = total - offset;
    for (;;) {
        const uint64_t head = atomic_load_explicit(&ctl->from_worker.out_head, memory_order_relaxed);
        const uint64_t tail = atomic_load_explicit(&ctl->to_worker.out_tail, memory_order_acquire);
        const uint64_t free_bytes = cap - (head - tail);
        const uint64_t at = head % cap, to_end = cap - at;
        /* The smallest piece worth a record; at most a quarter of the ring, so that the
         * room wait_for_room waits for (half the ring) always holds it. */
        uint64_t want = left < MIN_PIECE_BYTES ? left : MIN_PIECE_BYTES;
        if (want > cap / 4 - HEADER_BYTES) want = cap / 4 - HEADER_BYTES;
        if (to_end < HEADER_BYTES + want) {
            if (free_bytes < to_end) {
                if (wait_for_room(w)) return UINT64_MAX;
                continue;
            }
            /* Too little before the end for this record: skip to the start. A gap too
             * small for a header is skipped by the reader by the same rule. */
            if (to_end >= HEADER_BYTES) {
                cpool__output_record_t pad = {.job_slot = OUTPUT_PAD, .bytes = (uint32_t)(to_end - HEADER_BYTES)};
                memcpy(w->ring + at, &pad, sizeof pad);
            }
            atomic_store_explicit(&ctl->from_worker.out_head, head + to_end, memory_order_release);
            continue;
        }
        const uint64_t room = free_bytes < to_end ? free_bytes : to_end;
        if (room < HEADER_BYTES + want) {
            if (wait_for_room(w)) return UINT64_MAX;
            continue;
        }
        uint64_t piece = room - HEADER_BYTES;
        if (piece > left) piece = left;
        if (piece > UINT32_MAX - 7) piece = UINT32_MAX - 7;
        const cpool__task_t *t = w->task;
        const cpool__output_record_t rec = {
            .job_slot = t->job_slot, .job_gen = t->job_gen, .chunk = t->chunk, .serial = t->serial,
            .item = item, .bytes = (uint32_t)piece, .offset = offset, .total = total,
        };
        memcpy(w->ring + at, &rec, sizeof rec);
        if (piece) memcpy(w->ring + at + HEADER_BYTES, bytes + offset, piece);
        const uint64_t next = head + align8(HEADER_BYTES + piece);
        atomic_store_explicit(&ctl->from_worker.out_head, next, memory_order_release);
        /* A ring filling up is something for the parent to do. */
        if (next - tail >= cap / 2) cpool__wake_waiters(w->pool);
        return piece;
    }
}

int cpool_task_output(const void *bytes, size_t count) {
    cpool__output_writer_t *w = &cpool__writer;
    if (!w->ctl || !w->task) return -EPERM;
    if (!bytes && count) return -EINVAL;
    /* The item the function is running: it stored its index in the slice in cur_item. */
    const uint64_t in_slice = atomic_load_explicit(&w->ctl->state.cur_item, memory_order_relaxed);
    const uint32_t item = w->slice_first + (uint32_t)in_slice;
    uint64_t offset = 0;
    do {
        const uint64_t n = write_piece(w, item, bytes, offset, count);
        if (n == UINT64_MAX) return -ECANCELED;
        offset += n;
    } while (offset < count);
    return 0;
}

/* ------------------------------------------------------------ parent side */

struct cpool__output_block {
    cpool__output_block_t *next;
    size_t used, capacity;
    _Alignas(16) unsigned char data[];
};

/* Room for an output of n bytes in the job's store, or NULL. */
static unsigned char *store_alloc(cpool_job_t *job, cpool__output_t *o, uint64_t n) {
    if (n >= OWN_ALLOCATION_BYTES) {
        o->owned = 1;
        return malloc(n);
    }
    o->owned = 0;
    cpool__output_block_t *b = job->output_blocks;
    const size_t need = (size_t)(n + 15) & ~(size_t)15;
    if (!b || b->capacity - b->used < need) {
        b = malloc(sizeof *b + BLOCK_BYTES);
        if (!b) return NULL;
        b->next = job->output_blocks;
        b->used = 0;
        b->capacity = BLOCK_BYTES;
        job->output_blocks = b;
    }
    unsigned char *at = b->data + b->used;
    b->used += need;
    return at;
}

void cpool__output_drop(cpool_job_t *job, size_t index) {
    if (!job->outputs || index >= job->count) return;
    cpool__output_t *o = &job->outputs[index];
    if (o->owned) free(o->bytes);
    *o = (cpool__output_t){0};
}

/* Places one piece into item `index`'s output: a piece at offset 0 starts the output
 * anew (a function that set it again, or an item run again). */
static void store_piece(cpool_job_t *job, size_t index, const cpool__output_record_t *rec,
                        const unsigned char *bytes) {
    if (!job->outputs) {
        job->outputs = calloc(job->count, sizeof *job->outputs);
        if (!job->outputs) {
            job->outputs_lost = 1;
            return;
        }
    }
    cpool__output_t *o = &job->outputs[index];
    if (rec->offset == 0) {
        cpool__output_drop(job, index);
        o->count = rec->total;
        o->bytes = rec->total ? store_alloc(job, o, rec->total) : NULL;
        if (rec->total && !o->bytes) o->lost = 1;
    }
    if (o->lost || o->count != rec->total || rec->offset > o->count ||
        rec->bytes > o->count - rec->offset)
        return; /* not the output this piece continues */
    if (rec->bytes) memcpy(o->bytes + rec->offset, bytes, rec->bytes);
}

int cpool__output_pending(const cpool__pool_t *p, uint32_t w) {
    const cpool__worker_ctl_t *c = &p->region.ctl[w];
    return atomic_load_explicit(&c->from_worker.out_head, memory_order_acquire) !=
           atomic_load_explicit(&c->to_worker.out_tail, memory_order_relaxed);
}

int cpool__output_drain(cpool__pool_t *p, uint32_t w) {
    cpool__worker_ctl_t *c = &p->region.ctl[w];
    unsigned char *ring = cpool__output_ring(&p->region, w);
    const uint64_t cap = p->region.output_bytes;
    const uint64_t head = atomic_load_explicit(&c->from_worker.out_head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&c->to_worker.out_tail, memory_order_relaxed);
    if (tail == head) return 0;
    while (tail < head) {
        const uint64_t at = tail % cap, to_end = cap - at;
        if (to_end < HEADER_BYTES) {
            tail += to_end;
            continue;
        }
        cpool__output_record_t rec;
        memcpy(&rec, ring + at, sizeof rec);
        /* A worker may have scribbled over its ring: never read past what it
         * published or past the ring's end; drop the rest. */
        const uint64_t span = align8(HEADER_BYTES + rec.bytes);
        if (span > to_end || span > head - tail) {
            tail = head;
            break;
        }
        if (rec.job_slot != OUTPUT_PAD && rec.total <= MAX_OUTPUT_BYTES) {
            cpool_job_t *job = cpool__job_at(p, rec.job_slot, rec.job_gen);
            const cpool__chunk_t *ch = job && rec.chunk < job->window ? &job->chunks[rec.chunk] : NULL;
            if (ch && ch->in_use && ch->serial == rec.serial && rec.item < ch->count)
                store_piece(job, ch->first_item + rec.item, &rec, ring + at + HEADER_BYTES);
        }
        tail += span;
    }
    atomic_store_explicit(&c->to_worker.out_tail, tail, memory_order_release);
    /* A worker may be waiting for this room. */
    cpool__wake_if_sleeping(&c->from_worker.sleeping, &c->to_worker.wake_seq);
    return 1;
}

void cpool__output_free(cpool_job_t *job) {
    if (job->outputs)
        for (size_t i = 0; i < job->count; i++)
            if (job->outputs[i].owned) free(job->outputs[i].bytes);
    free(job->outputs);
    job->outputs = NULL;
    while (job->output_blocks) {
        cpool__output_block_t *next = job->output_blocks->next;
        free(job->output_blocks);
        job->output_blocks = next;
    }
}

int cpool_job_output(cpool_job_t *job, size_t index, const void **bytes, size_t *count) {
    if (!job || !bytes || !count) return -EINVAL;
    if (!atomic_load_explicit(&job->ended, memory_order_acquire)) return -EBUSY;
    if (index >= job->count) return -ERANGE;
    *bytes = NULL;
    *count = 0;
    if (job->outputs_lost) return -ENOMEM;
    if (!job->outputs) return 0;
    const cpool__output_t *o = &job->outputs[index];
    if (o->lost) return -ENOMEM;
    *bytes = o->bytes;
    *count = (size_t)o->count;
    return 0;
}
