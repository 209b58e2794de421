/* The supervisor: the thread that forks a pool's workers, settles their deaths,
 * forks replacements and enforces timeouts. */
#ifndef CPOOL_SUPERVISOR_H
#define CPOOL_SUPERVISOR_H

#include <signal.h>

#include "pool.h"

/* Forks the first workers; returns when they are forked (0) or could not be (-errno). */
int cpool__supervisor_start(cpool__pool_t *p);
/* Wakes the supervisor to look at the pool again. Locks held: any. */
void cpool__supervisor_poke(cpool__pool_t *p);
void cpool__supervisor_stop(cpool__pool_t *p);

/* Sends sig to worker w's process through its pidfd (never by pid). Locks held: p->lock. */
void cpool__signal_worker(cpool__pool_t *p, uint32_t w, int sig);

/* Stops worker w for `reason` while it runs the item at `at`: SIGTERM then SIGKILL
 * after the grace, or SIGKILL at once. Locks held: p->lock. */
void cpool__kill_worker(cpool__pool_t *p, uint32_t w, int reason, cpool__position_t at);

/* Settles the death of worker w's process: counts it, settles the task it was in, and
 * decides whether the slot gets a replacement. si is its status from waitid, or NULL
 * when the host collected it first. Locks held: p->lock. (death.c) */
void cpool__settle_death(cpool__pool_t *p, uint32_t w, const siginfo_t *si);

/* Worker process entry (worker.c); never returns. started_ns: when the parent started
 * it (monotonic), for the slot's start-up time. */
_Noreturn void cpool__worker_main(cpool__pool_t *p, uint32_t slot, uint64_t started_ns);

/* Worker thread entry (worker.c): serves until told to stop or its lifespan ends;
 * returns its exit status, also left in `leaving`. */
int cpool__worker_thread(cpool__pool_t *p, uint32_t slot, uint64_t started_ns);

#endif
