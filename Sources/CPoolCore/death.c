/* A worker's death, settled once whoever collected its exit status: what ended it,
 * what becomes of the task it was in, and whether its slot gets a replacement. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "completion.h"
#include "events.h"
#include "spawned.h"
#include "supervisor.h"

/* How a process ended: from waitid when the parent collected it, else from what the
 * worker wrote before its own _exit, else unknown (the host reaped a process that
 * died without a word: a crash, or an exit inside a task). */
typedef struct ending {
    int signaled, status, known;
} ending_t;

static ending_t ending_of(const cpool__worker_ctl_t *c, const siginfo_t *si) {
    if (si) return (ending_t){si->si_code == CLD_KILLED || si->si_code == CLD_DUMPED, si->si_status, 1};
    uint32_t leaving = atomic_load(&c->state.leaving);
    if (leaving) return (ending_t){0, (int)leaving - 1, 1};
    return (ending_t){0, 0, 0};
}

static int is_graceful(ending_t how) { return how.known && !how.signaled && how.status == 0; }

/* A process that never began to serve: its spawned program could not become a worker
 * (or did not try: it exited, or ran past the start-up timeout). */
static int spawn_failure(ending_t how, uint32_t phase) {
    return phase == PHASE_STARTING ||
           (how.known && !how.signaled && (how.status == EXIT_SPAWN_FAILED || how.status == EXIT_EXEC_FAILED));
}

/* Counts the death in the slot's statistics and the pool's run of init failures
 * (which breaks the pool when too long). A process that left before it was ready, even
 * with status 0, failed its start. */
static void count_death(cpool__pool_t *p, uint32_t w, ending_t how, uint32_t phase) {
    cpool__worker_t *ws = &p->w[w];
    const cpool__worker_ctl_t *c = &p->region.ctl[w];
    const int init_ok = atomic_load(&c->state.init_ok);
    const int by_us = (ws->kill_reason != KILL_NONE && ws->kill_reason != KILL_HOOK_TIMEOUT) ||
                      p->state == POOL_TERMINATED || atomic_load(&c->to_worker.stop) == STOP_NOW;
    if (how.known && !how.signaled && how.status == EXIT_RECYCLED) {
        ws->recycles++;
    } else if ((!is_graceful(how) || !init_ok) && !by_us) {
        ws->crashes++;
        if (!init_ok && ++p->init_failures >= MAX_INIT_FAILURES && !p->broken)
            p->broken = spawn_failure(how, phase) ? CPOOL_E_SPAWN : CPOOL_E_WORKER_INIT;
    }
    if (init_ok) p->init_failures = 0;
}

/* Why the process left the item it was running at `at`, as the parent's kill records
 * say. */
static cpool__cause_t cause_of(const cpool__worker_t *ws, cpool__position_t at) {
    if (ws->kill_reason == KILL_NONE) return CAUSE_CRASH;
    const int targeted = cpool__same_position(ws->kill_at, at);
    if (targeted && ws->kill_reason == KILL_TIMEOUT) return CAUSE_TIMEOUT;
    if (targeted && ws->kill_reason == KILL_CANCEL) return CAUSE_CANCEL;
    return CAUSE_INNOCENT;
}

/* The exit status as a crash detail: the signal, 1000 + an exit status, or unknown. */
static int crash_detail(ending_t how) {
    if (!how.known) return CPOOL_DETAIL_UNKNOWN;
    return how.signaled ? how.status : 1000 + how.status;
}

/* Hands the task the process was in (at its ring's tail) to the job's accounting. */
static void settle_task(cpool__pool_t *p, uint32_t w, ending_t how) {
    cpool__worker_ctl_t *c = &p->region.ctl[w];
    const uint64_t tail = atomic_load(&c->from_worker.task_tail);
    const uint32_t phase = atomic_load(&c->state.phase);
    const cpool__position_t at = cpool__position_of(c);
    /* A process that died in its init or exit hook, or idle, was in no task. */
    const int in_task = phase == PHASE_RUNNING || phase == PHASE_PUBLISHING;
    if (tail == atomic_load(&c->to_worker.task_head) || !in_task || at.seq != tail) return;
    const cpool__interruption_t it = {
        .seq = tail,
        .done = at.item,
        .running = phase == PHASE_RUNNING,
        .cause = cause_of(&p->w[w], at),
        .detail = crash_detail(how),
    };
    cpool__settle_interrupted_task(p, w, &it);
}

/* Clears what the slot knew of the dead process. Items it ran in an unpublished run
 * are counted here: a process counts a run only when it publishes it (see worker.c). */
static void forget_process(cpool__pool_t *p, uint32_t w, uint32_t phase, uint64_t cur_item) {
    cpool__worker_t *ws = &p->w[w];
    cpool__worker_ctl_t *c = &p->region.ctl[w];
    ws->items_before += atomic_load(&c->state.items_done);
    if (phase == PHASE_RUNNING) ws->items_before += cur_item;
    atomic_store(&c->state.items_done, 0);
    atomic_store(&c->state.phase, PHASE_IDLE);
    atomic_store(&c->state.cur_item, 0);
    atomic_store(&c->state.init_ok, 0);
    atomic_store(&c->state.leaving, 0);
    atomic_store(&c->from_worker.sleeping, 0);
    ws->kill_reason = KILL_NONE;
    ws->kill_deadline_ns = 0;
    ws->pid = 0;
    close(ws->pidfd);
    ws->pidfd = -1;
}

/* What the slot does next: end what its ring holds (a broken or terminated pool),
 * stay empty (stopped, or closed with nothing left), or get a replacement. */
static void decide_replacement(cpool__pool_t *p, uint32_t w, ending_t how) {
    cpool__worker_ctl_t *c = &p->region.ctl[w];
    const int drained = atomic_load(&c->from_worker.task_tail) == atomic_load(&c->to_worker.task_head);
    if (p->broken) cpool__flush_ring(p, w, p->broken);
    else if (p->state == POOL_TERMINATED) cpool__flush_ring(p, w, CPOOL_E_CANCELLED);
    else if (p->paused && is_graceful(how)) { /* cpool_start_workers forks the next one */ }
    else if (atomic_load(&c->to_worker.stop) != STOP_NONE && drained) { /* closed, done */ }
    else p->w[w].respawn = 1;
}

/* The event that says how the process ended (before its record is forgotten). */
static void note_death(cpool__pool_t *p, uint32_t w, ending_t how, uint32_t phase) {
    const cpool__worker_t *ws = &p->w[w];
    const cpool__worker_ctl_t *c = &p->region.ctl[w];
    int kind, detail = 0;
    if (ws->kill_reason == KILL_TIMEOUT) kind = CPOOL_EVENT_TASK_TIMED_OUT;
    else if (ws->kill_reason == KILL_CANCEL) kind = CPOOL_EVENT_TASK_CANCELLED;
    else if (ws->kill_reason == KILL_HOOK_TIMEOUT)
        kind = phase == PHASE_EXITING ? CPOOL_EVENT_EXIT_TIMED_OUT : CPOOL_EVENT_INIT_FAILED;
    else if (p->state == POOL_TERMINATED || atomic_load(&c->to_worker.stop) == STOP_NOW)
        kind = CPOOL_EVENT_KILLED;
    else if (how.known && !how.signaled && how.status == EXIT_RECYCLED)
        kind = CPOOL_EVENT_WORKER_RECYCLED;
    else if (is_graceful(how) && atomic_load(&c->state.init_ok)) kind = CPOOL_EVENT_WORKER_EXITED;
    else if (!atomic_load(&c->state.init_ok)) {
        kind = CPOOL_EVENT_INIT_FAILED;
        detail = crash_detail(how);
    } else {
        kind = CPOOL_EVENT_WORKER_CRASHED;
        detail = crash_detail(how);
    }
    cpool__note_event(p, kind, (int32_t)w, ws->pid, detail);
}

void cpool__settle_death(cpool__pool_t *p, uint32_t w, const siginfo_t *si) {
    cpool__worker_ctl_t *c = &p->region.ctl[w];
    cpool__progress(p); /* everything it published before dying */
    const ending_t how = ending_of(c, si);
    const uint32_t phase = atomic_load(&c->state.phase);
    const uint64_t cur_item = atomic_load(&c->state.cur_item);
    const int was_broken = p->broken != 0;
    note_death(p, w, how, phase);
    count_death(p, w, how, phase);
    if (!was_broken && p->broken) cpool__note_event(p, CPOOL_EVENT_POOL_BROKEN, -1, 0, p->broken);
    settle_task(p, w, how);
    forget_process(p, w, phase, cur_item);
    decide_replacement(p, w, how);
}
