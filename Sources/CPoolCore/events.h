/* Pool events (cpool_event_t): noted where the supervisor sees them, under the pool's
 * lock, and handed to the user's on_event later on the supervisor thread with no lock
 * held, so that a handler may read statistics or log without deadlocking. */
#ifndef CPOOL_EVENTS_H
#define CPOOL_EVENTS_H

#include "pool.h"

/* Queues an event for slot w (-1: the pool). Locks held: p->lock. */
void cpool__note_event(cpool__pool_t *p, int kind, int32_t worker, int32_t pid, int32_t detail);

/* Hands the queued events to on_event, in order. Supervisor thread only. Locks held:
 * none. */
void cpool__deliver_events(cpool__pool_t *p);

#endif
