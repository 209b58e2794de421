/* How work is dispatched: chunk sizes, staging through the arena, the choice of a
 * worker, and the push onto its task ring; jobs that could not be sent whole wait on
 * the pool's queue. Locks held for everything here: p->lock. */
#ifndef CPOOL_DISPATCH_H
#define CPOOL_DISPATCH_H

#include "job.h"

/* The automatic chunk size for a map of count items. */
size_t cpool__auto_chunk(const cpool__pool_t *p, size_t count);

/* Sends as much of the job as its window, the rings and the arena allow; queues the
 * job for later when something is left. */
void cpool__dispatch(cpool__pool_t *p, cpool_job_t *job);

/* Gives every queued job its turn, oldest first. Returns 1 when any was sent. */
int cpool__dispatch_queued(cpool__pool_t *p);

/* A chunk has ended: copies its staged results to the caller and frees its arena
 * extents. */
void cpool__unstage_chunk(cpool__pool_t *p, cpool_job_t *job, cpool__chunk_t *ch);

/* Takes the job off the queue (it ended or was cancelled). */
void cpool__unqueue(cpool__pool_t *p, cpool_job_t *job);

#endif
