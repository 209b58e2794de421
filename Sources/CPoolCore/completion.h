/* How completions are applied: items end exactly once, with a status, whoever ends
 * them (a worker's completion, the parent settling a dead worker, a cancellation).
 * Locks held for everything here: p->lock. */
#ifndef CPOOL_COMPLETION_H
#define CPOOL_COMPLETION_H

#include "job.h"

/* Drains every result ring and applies the completions, then dispatches queued work.
 * Returns 1 when anything changed. */
int cpool__progress(cpool__pool_t *p);

/* Applies one completion from worker w. */
void cpool__apply_completion(cpool__pool_t *p, uint32_t w, const cpool__completion_t *c);

/* Ends items [first, first+count) of a job's chunk with code; parts already ended are
 * skipped. */
void cpool__end_items(cpool__pool_t *p, cpool_job_t *job, uint32_t chunk, uint32_t first,
                      uint32_t count, int code, int detail, uint32_t worker);

/* Ends a job's items that were never dispatched with code. */
void cpool__end_undispatched(cpool__pool_t *p, cpool_job_t *job, int code);

/* Takes back every item of the job that no worker has claimed yet, from every ring,
 * and ends them with code, as never run (worker -1). */
void cpool__withdraw(cpool__pool_t *p, cpool_job_t *job, int code);

/* Ends every unfinished item of every job with code. */
void cpool__fail_all_jobs(cpool__pool_t *p, int code);

/* Ends every task left in worker w's ring with code (nobody will run them). */
void cpool__flush_ring(cpool__pool_t *p, uint32_t w, int code);

/* Why a worker's process stopped in the middle of a task. */
typedef enum cpool__cause {
    CAUSE_CRASH,    /* died on its own: the item crashed (or spends a crash retry) */
    CAUSE_TIMEOUT,  /* killed because this item ran past its timeout */
    CAUSE_CANCEL,   /* killed because its job was cancelled */
    CAUSE_INNOCENT, /* killed for another task's sake: the item runs again */
} cpool__cause_t;

/* What a dead worker's process was doing when it died: the task at position `seq` of
 * its ring (its tail), `done` of its items run, and whether it was running the next
 * one (else it was publishing). */
typedef struct cpool__interruption {
    uint64_t seq;
    uint64_t done;
    int running;
    cpool__cause_t cause;
    int detail;        /* the crash detail (CPOOL_DETAIL_UNKNOWN when not known) */
} cpool__interruption_t;

/* Settles the task a dead worker w was in: the items it ran end well, the item it was
 * running ends by the cause (or is run again), and the rest of the task stays at the
 * ring's tail for the replacement; the tail moves past a task with nothing left. The
 * process is dead, so the parent acts as the ring's consumer. */
void cpool__settle_interrupted_task(cpool__pool_t *p, uint32_t w, const cpool__interruption_t *it);

#endif
