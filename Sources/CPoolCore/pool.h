/* What a pool is in the parent: its options, its shared region, its parent-private
 * state under one lock, and the parent's record of each worker slot. Every other part
 * of the core reads this; the table in docs/design.md says which file changes what. */
#ifndef CPOOL_POOL_H
#define CPOOL_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "arena.h"
#include "cpool.h"
#include "futex.h"
#include "region.h"
#include "registry.h"

typedef struct cpool__pool cpool__pool_t;

/* A function id is the pool's tag above the registry index, so that an id of one pool
 * never runs another pool's function of the same index. */
#define FN_INDEX_BITS 8
#define FN_TAG_LIMIT 0x7fffffu
_Static_assert((1u << FN_INDEX_BITS) == MAX_FUNCTIONS, "index bits hold every function");

/* cpool_close moves OPEN to CLOSED (no new work); cpool_terminate or a destroy to
 * TERMINATED (work cancelled, workers killed). */
enum { POOL_OPEN = 0, POOL_CLOSED = 1, POOL_TERMINATED = 2 };

/* Exit status a worker uses when its init hook failed. */
#define EXIT_INIT_FAILED 113
/* Exit status of a worker that left because its memory grew past the limit. */
#define EXIT_RECYCLED 114
/* Consecutive init failures (no worker initialised in between) that break the pool. */
#define MAX_INIT_FAILURES 3

/* Why the parent killed a worker; the task it was running is reported accordingly. */
enum {
    KILL_NONE = 0, KILL_TIMEOUT = 1, KILL_CANCEL = 2,
    KILL_HOOK_TIMEOUT = 3, /* its init or exit hook ran too long */
};

/* Where a worker's process is: the ring position of its task, the item within the
 * slot's current run, and the items it has published, which tells the first item of
 * one slice from the first item of the next. */
typedef struct cpool__position {
    uint64_t seq, item, done;
} cpool__position_t;

static inline cpool__position_t cpool__position_of(const cpool__worker_ctl_t *c) {
    return (cpool__position_t){atomic_load(&c->state.cur_seq), atomic_load(&c->state.cur_item),
                               atomic_load(&c->state.items_done)};
}

static inline int cpool__same_position(cpool__position_t a, cpool__position_t b) {
    return a.seq == b.seq && a.item == b.item && a.done == b.done;
}

typedef struct cpool__worker {
    pid_t pid;          /* 0 when no process runs in this slot (a thread: this process's) */
    int pidfd;          /* -1 when none; a thread's: an eventfd it signals when it ends */
    pthread_t thread;   /* CPOOL_START_THREADS: the slot's thread while pid != 0 */
    int respawn;        /* a replacement is due */
    uint32_t inflight;  /* chunks queued on this slot's ring and not yet ended */
    uint64_t open_items;/* items of those chunks not yet ended */
    int kill_reason;    /* KILL_* */
    cpool__position_t kill_at;    /* what it was running when killed */
    uint64_t kill_deadline_ns;    /* SIGKILL due then (after a SIGTERM), 0 when none */
    /* timeout watch: the item last seen running and when it was first seen */
    cpool__position_t seen_at;
    uint64_t seen_ns;
    int seen_valid;
    uint64_t items_before;      /* items done by earlier processes of this slot */
    uint64_t restarts, crashes, timeouts, recycles;
    /* insights: the job item index of slowest entries the parent has matched to their
     * completion, by entry id (see cpool__resolve_slowest) */
    struct { uint64_t id; int64_t item; } slow_items[SLOWEST_ITEMS];
} cpool__worker_t;

/* Events noted and not yet handed to on_event (events.c). */
#define EVENT_QUEUE 256u

struct cpool__pool {
    cpool_options_t opts;
    uint32_t workers;
    cpool__region_t region;
    cpool__registry_t registry;
    pid_t parent_pid;
    uint32_t fn_tag;                /* see FN_INDEX_BITS */

    /* Everything below is parent-private and guarded by lock. Workers never touch it,
     * so a worker dying can never leave it held. */
    pthread_mutex_t lock;
    pthread_cond_t changed;         /* state, workers or active calls changed */
    int state;                      /* POOL_OPEN, ... */
    int broken;                     /* 0, or the code every call now fails with */
    int init_failures;              /* consecutive */
    int active_calls;               /* API calls in progress (see handle.c) */
    int paused;                     /* cpool_stop_workers: no replacements until started */
    _Atomic int interrupt_pending;  /* cpool_interrupt_waits not yet seen by a wait_any */
    cpool__arena_t arena;
    cpool_job_t *jobs[MAX_JOBS];
    uint32_t job_gen[MAX_JOBS];
    uint32_t free_slots[MAX_JOBS];
    uint32_t free_count;
    cpool_job_t *queue_head, *queue_tail;
    int custom_timeouts;            /* live jobs with their own timeout */
    uint64_t min_custom_timeout_ns;
    cpool__worker_t *w;             /* [workers] */
    cpool_event_t events[EVENT_QUEUE]; /* a ring: events_count from events_head */
    struct cpool__capture *capture; /* captured output (capture.c), supervisor only; NULL
                                       when the pool does not capture */
    uint32_t events_head, events_count;

    /* supervisor */
    pthread_t supervisor;
    int supervisor_running;
    int event_fd;                   /* pokes the supervisor */
    int started;                    /* first workers forked */
    int start_error;

    /* spawn (spawned.c) */
    char *executable;
    char **spawn_env;               /* the environment, then the note and NULL */
    size_t spawn_env_count;
};

static inline int cpool__threads(const cpool__pool_t *p) {
    return p->opts.start_method == CPOOL_START_THREADS;
}


/* Handles (handle.c): every public call that takes a pool enters it (CPOOL_E_CLOSED for
 * a handle that names no live pool, -EINVAL for NULL) and leaves it when done, so that
 * cpool_destroy waits for calls in progress. */
int cpool__pool_enter(cpool_pool_t *h, cpool__pool_t **p);
void cpool__pool_leave(cpool__pool_t *p);
/* Enters p in the table of live pools; sets *h and p->fn_tag. */
int cpool__pool_publish(cpool__pool_t *p, cpool_pool_t **h);
/* Takes the pool out of the table; returns it, or NULL when the handle named none. */
cpool__pool_t *cpool__pool_withdraw(cpool_pool_t *h);
/* The pool a handle names, or NULL (tests and fuzzers reach internals through it). */
cpool__pool_t *cpool__pool_internal(cpool_pool_t *h);
/* The registry index of function id fn of pool p, or CPOOL_E_UNKNOWN_FUNCTION. */
int cpool__fn_index(const cpool__pool_t *p, cpool_fn_t fn);
/* The function id of registry index `index` (negative codes pass through). */
cpool_fn_t cpool__fn_id(const cpool__pool_t *p, int index);

/* Wakes the parent threads asleep on results_seq, if any. Locks held: any. */
static inline void cpool__wake_waiters(cpool__pool_t *p) {
    cpool__header_t *h = p->region.header;
    cpool__wake_if_sleeping(&h->parent_sleepers, &h->results_seq);
}

/* Waits on p->changed until deadline_ns (monotonic; 0 = no limit). Locks held: p->lock. */
void cpool__pool_wait_changed(cpool__pool_t *p, uint64_t deadline_ns);

#endif
