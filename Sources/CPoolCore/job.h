/* What a job is: one map or one single task of a pool, its items cut into chunks, and
 * where each item stands. A job lives in a slot of the pool's job table from its
 * creation to cpool_job_free; the slot's generation tells a late completion from a
 * job that took the slot since. Everything here runs in the parent under p->lock,
 * except `ended`, which waiting callers read without it. */
#ifndef CPOOL_JOB_H
#define CPOOL_JOB_H

#include "pool.h"

/* No arena extent: the chunk reads or writes the caller's shared buffer in place. */
#define NO_EXTENT UINT64_MAX

typedef struct cpool__chunk {
    int in_use;
    uint32_t worker;
    size_t first_item;  /* index in the job of the chunk's first item */
    uint32_t count;
    uint32_t reported;  /* items [0, reported) have ended (completions come in order) */
    uint64_t in_off, out_off;       /* arena extents owned by the chunk, or NO_EXTENT */
    uint64_t task_in_off, task_out_off; /* where the task reads and writes its item 0 */
    uint32_t retry_item, retries;       /* crash retries spent on item retry_item */
    uint32_t serial;    /* tells this use of the record from a later one */
} cpool__chunk_t;

/* An item's output in the parent (output.c). */
typedef struct cpool__output {
    unsigned char *bytes;
    uint64_t count;
    uint32_t owned;     /* bytes is a malloc of its own (a large output), else in a block */
    uint32_t lost;      /* the parent had no memory for it */
} cpool__output_t;

typedef struct cpool__output_block cpool__output_block_t;

typedef struct cpool__failure {
    size_t index;
    cpool_status_t status;
} cpool__failure_t;

struct cpool_job {
    cpool__pool_t *pool;
    uint32_t slot, gen;
    uint32_t fn;
    const cpool__fn_local_t *f;
    size_t in_item_bytes, out_item_bytes;   /* what one item needs in the arena */
    const unsigned char *in;
    unsigned char *out;
    size_t in_stride, out_stride, count, chunk_items;
    int in_shared, out_shared;              /* caller buffers inside the arena */
    unsigned char *owned_args;              /* submit's private copy of the arguments */
    cpool_status_t *statuses;               /* per item, or NULL */
    cpool_status_t single;                  /* a single task's status */
    uint64_t timeout_ns;
    size_t next_item;        /* first item not dispatched yet */
    size_t ended_items;
    size_t failed_items;
    size_t first_failed;     /* lowest failed index, SIZE_MAX if none */
    int first_failed_code;
    int cancelled;
    _Atomic int ended;
    int woke_worker;                /* dispatching it woke a sleeping worker */
    int queued;                     /* on the pool's list of jobs waiting to dispatch */
    struct cpool_job *next_queued;
    cpool__failure_t *failures;     /* failed items, in the order they ended */
    size_t failures_count, failures_cap;
    uint32_t window;                /* chunk records */
    uint32_t chunks_in_flight;
    uint32_t chunk_hint;            /* where to look for a free record first */
    uint32_t next_serial;
    cpool__chunk_t *chunks;
    cpool__output_t *outputs;           /* [count], made at the first output */
    cpool__output_block_t *output_blocks; /* where small outputs are kept */
    int outputs_lost;                   /* no memory for the outputs table */
};

/* What a new job is asked to do; the public calls fill it from their arguments. */
typedef struct cpool__job_request {
    cpool_fn_t fn;
    const void *in;
    size_t in_stride;
    void *out;
    size_t out_stride;
    size_t count;
    size_t chunk_items;          /* 0: automatic */
    cpool_status_t *statuses;    /* per item, or NULL */
    uint64_t timeout_ns;         /* 0: the pool's */
    int single;                  /* a single task: sizes exact, arguments copied */
} cpool__job_request_t;

/* Checks the request, enters the job in p's table and dispatches what it can.
 * Returns 0 and *out, or a negative code (nothing was started). Locks held: none. */
int cpool__job_create(cpool__pool_t *p, const cpool__job_request_t *rq, cpool_job_t **out);

/* Takes the job out of p's table. Locks held: p->lock. */
void cpool__job_remove(cpool__pool_t *p, cpool_job_t *job);

/* Frees a job's memory (it is out of the table, or the table is going away). */
void cpool__job_destroy(cpool_job_t *job);

/* The live job in table slot `slot` with generation gen, or NULL. Locks held: p->lock. */
cpool_job_t *cpool__job_at(cpool__pool_t *p, uint32_t slot, uint32_t gen);

/* The job whose task sits at position seq of worker w's ring, with that task; NULL
 * when the job is gone. Locks held: p->lock. */
cpool_job_t *cpool__job_of_task(cpool__pool_t *p, uint32_t w, uint64_t seq, cpool__task_t *task);

/* The chunk record that task t runs, or NULL when the task's chunk has ended (its
 * record may serve another chunk since). */
static inline cpool__chunk_t *cpool__chunk_of_task(cpool_job_t *job, const cpool__task_t *t) {
    if (!job || t->chunk >= job->window) return NULL;
    cpool__chunk_t *ch = &job->chunks[t->chunk];
    return ch->in_use && ch->serial == t->serial ? ch : NULL;
}

/* Marks the job ended once every item has ended. Locks held: p->lock. */
void cpool__job_end_check(cpool__pool_t *p, cpool_job_t *job);

/* Records that a job is cancelled, so that workers skip its queued tasks. */
void cpool__job_mark_cancelled(cpool__pool_t *p, cpool_job_t *job);

#endif
