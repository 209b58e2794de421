/* Pool events: a bounded queue in the parent, filled under the lock, emptied by the
 * supervisor thread. A handler that falls far behind loses the oldest events, never
 * blocks the supervisor. */
#include <string.h>

#include "events.h"
#include "statistics.h"

void cpool__note_event(cpool__pool_t *p, int kind, int32_t worker, int32_t pid, int32_t detail) {
    if (!p->opts.on_event) return;
    if (p->events_count == EVENT_QUEUE) { /* drop the oldest */
        p->events_head = (p->events_head + 1) % EVENT_QUEUE;
        p->events_count--;
    }
    const uint32_t at = (p->events_head + p->events_count) % EVENT_QUEUE;
    const uint64_t done = worker < 0 ? 0 : cpool__slot_tasks_done(p, (uint32_t)worker);
    p->events[at] = (cpool_event_t){kind, worker, pid, detail, done};
    p->events_count++;
}

void cpool__deliver_events(cpool__pool_t *p) {
    if (!p->opts.on_event) return;
    for (;;) {
        cpool_event_t batch[16];
        uint32_t n = 0;
        pthread_mutex_lock(&p->lock);
        while (n < 16 && p->events_count) {
            batch[n++] = p->events[p->events_head];
            p->events_head = (p->events_head + 1) % EVENT_QUEUE;
            p->events_count--;
        }
        pthread_mutex_unlock(&p->lock);
        if (n == 0) return;
        for (uint32_t i = 0; i < n; i++) p->opts.on_event(&batch[i], p->opts.event_ctx);
    }
}
