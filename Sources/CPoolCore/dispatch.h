/* How work is dispatched: chunk sizes, staging through the arena, the choice of a
 * worker, and the push onto its task ring; jobs that could not be sent whole wait on
 * the pool's queue. Locks held for everything here: p->lock. */
#ifndef CPOOL_DISPATCH_H
#define CPOOL_DISPATCH_H

#include "job.h"

/* How many chunk records a job of count items in chunks of chunk_items (0: guided)
 * gets: as many as the rings can hold, within a bound. */
uint32_t cpool__job_window(const cpool__pool_t *p, size_t count, size_t chunk_items);

/* Sends as much of the job as its window, the rings and the arena allow; queues the
 * job for later when something is left. */
void cpool__dispatch(cpool__pool_t *p, cpool_job_t *job);

/* Gives every queued job its turn, oldest first. Returns 1 when any was sent. */
int cpool__dispatch_queued(cpool__pool_t *p);

/* A chunk has ended: copies its staged results to the caller, frees its arena
 * extents and its record. */
void cpool__finish_chunk(cpool__pool_t *p, cpool_job_t *job, cpool__chunk_t *ch);

/* Takes back up to `want` unclaimed items from the end of the task at position pos
 * of worker w's ring; the task's chunk then ends where the take began (and is
 * finished at once when nothing of it is left). Returns how many were taken, with
 * their job and the job's index of the first. */
size_t cpool__take_back(cpool__pool_t *p, uint32_t w, uint64_t pos, size_t want,
                        cpool_job_t **job, size_t *first);

/* Moves unclaimed items from busy workers to idle ones (see dispatch.c). */
void cpool__rebalance(cpool__pool_t *p);

/* Takes the job off the queue (it ended or was cancelled). */
void cpool__unqueue(cpool__pool_t *p, cpool_job_t *job);

#endif
