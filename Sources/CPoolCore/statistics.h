/* Statistics and insights of a pool's worker slots (statistics.c). */
#ifndef CPOOL_STATISTICS_H
#define CPOOL_STATISTICS_H

#include "job.h"

/* Items completed by slot w, over all its processes. Locks held: p->lock. */
uint64_t cpool__slot_tasks_done(const cpool__pool_t *p, uint32_t w);

/* Items [first, first+count) of chunk `chunk` of the job, run by worker w, have ended:
 * any of them among the slot's slowest items gets its index in the job, which the
 * worker cannot know (insights only). Locks held: p->lock. */
void cpool__resolve_slowest(cpool__pool_t *p, uint32_t w, const cpool_job_t *job,
                            const cpool__chunk_t *ch, uint32_t chunk, uint32_t first,
                            uint32_t count);

#endif
