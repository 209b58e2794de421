/* Items' outputs of any size: each worker writes them into its own output ring (a
 * byte ring in the shared region, the worker the only producer, the parent the only
 * consumer); the parent drains the ring into the job's store, where the caller reads
 * them with cpool_job_output. Results of any size and error payloads take this one
 * path. Layout of a record: region.h. */
#ifndef CPOOL_OUTPUT_H
#define CPOOL_OUTPUT_H

#include "job.h"

/* What the worker is running now, for cpool_task_output. Set by the worker process
 * only (worker.c); in the parent it stays empty, and the call fails with -EPERM. */
typedef struct cpool__output_writer {
    cpool__pool_t *pool;
    cpool__worker_ctl_t *ctl;
    unsigned char *ring;
    uint64_t capacity;
    pid_t parent;
    const cpool__task_t *task;       /* the task being run, NULL between tasks */
    uint32_t slice_first;            /* chunk index of the slice's item 0 */
} cpool__output_writer_t;

extern _Thread_local cpool__output_writer_t cpool__writer;

/* Parent: applies the records worker w has published (up to its head now) to their
 * jobs' stores and frees their room. Returns 1 when it consumed any. Locks held:
 * p->lock. Call it before applying w's completions: a worker publishes an item's
 * output before the completion that ends the item. */
int cpool__output_drain(cpool__pool_t *p, uint32_t w);

/* 1 when worker w has published records the parent has not drained. */
int cpool__output_pending(const cpool__pool_t *p, uint32_t w);

/* Forgets item `index`'s output (it crashed, timed out, was cancelled, or runs
 * again). Locks held: p->lock. */
void cpool__output_drop(cpool_job_t *job, size_t index);

/* Frees the job's store. */
void cpool__output_free(cpool_job_t *job);

#endif
