/* The pool's parent-side state, shared by pool.c (lifetime), job.c (submitting and
 * completing work), supervisor.c (workers' births and deaths) and worker.c. */
#ifndef CPOOL_POOL_H
#define CPOOL_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "arena.h"
#include "cpool.h"
#include "region.h"
#include "registry.h"

typedef struct cpool__pool cpool__pool_t;

/* A function id is the pool's tag above the registry index, so that an id of one pool
 * never runs another pool's function of the same index. */
#define CPOOL_FN_INDEX_BITS 8
#define CPOOL_FN_TAG_LIMIT 0x7fffffu
_Static_assert((1u << CPOOL_FN_INDEX_BITS) == CPOOL_MAX_FUNCTIONS, "index bits hold every function");

enum { CPOOL_OPEN = 0, CPOOL_CLOSED = 1, CPOOL_TERMINATED = 2 };

/* Why the parent killed a worker; the task it was running is reported accordingly. */
enum {
    CPOOL_KILL_NONE = 0, CPOOL_KILL_TIMEOUT = 1, CPOOL_KILL_CANCEL = 2,
    CPOOL_KILL_HOOK_TIMEOUT = 3, /* its init or exit hook ran too long */
};

/* Exit status a worker uses when its init hook failed. */
#define CPOOL_EXIT_INIT_FAILED 113
/* Exit status of a worker that left because its memory grew past the limit. */
#define CPOOL_EXIT_RECYCLED 114
/* Consecutive init failures (no worker initialised in between) that break the pool. */
#define CPOOL_MAX_INIT_FAILURES 3

typedef struct cpool__worker {
    pid_t pid;          /* 0 when no process runs in this slot */
    int pidfd;          /* -1 when none */
    int respawn;        /* a replacement is due */
    uint32_t inflight;  /* chunks queued on this slot's ring and not yet ended */
    int kill_reason;    /* CPOOL_KILL_* */
    uint64_t kill_seq, kill_item; /* what it was running when killed */
    uint64_t kill_deadline_ns;    /* SIGKILL due then (after a SIGTERM), 0 when none */
    /* timeout watch: the (task, item) last seen running and when it was first seen */
    uint64_t seen_seq, seen_item, seen_ns;
    int seen_valid;
    uint64_t items_before;      /* items done by earlier processes of this slot */
    uint64_t restarts, crashes, timeouts, recycles;
} cpool__worker_t;

typedef struct cpool__chunk {
    int in_use;
    uint32_t worker;
    size_t first_item;  /* index in the job of the chunk's first item */
    uint32_t count;
    uint32_t reported;  /* items [0, reported) have ended (completions come in order) */
    uint64_t in_off, out_off;       /* arena extents owned by the chunk, or UINT64_MAX */
    uint64_t task_in_off, task_out_off; /* where the task reads and writes its item 0 */
    uint32_t retry_item, retries;       /* crash retries spent on item retry_item */
} cpool__chunk_t;

typedef struct cpool__failure {
    size_t index;
    cpool_status_t status;
} cpool__failure_t;

struct cpool_job {
    cpool__pool_t *pool;
    uint32_t slot, gen;
    uint32_t fn;
    const cpool__fn_local_t *f;
    size_t in_item_bytes, out_item_bytes;   /* what one item needs in the arena */
    const unsigned char *in;
    unsigned char *out;
    size_t in_stride, out_stride, count, chunk_items;
    int in_shared, out_shared;              /* caller buffers inside the arena */
    unsigned char *owned_args;              /* submit's private copy of the arguments */
    cpool_status_t *statuses;               /* per item, or NULL */
    cpool_status_t single;                  /* a single task's status */
    uint64_t timeout_ns;
    size_t next_item;        /* first item not dispatched yet */
    size_t ended_items;
    size_t failed_items;
    size_t first_failed;     /* lowest failed index, SIZE_MAX if none */
    int first_failed_code;
    int cancelled;
    _Atomic int ended;
    int woke_worker;                /* dispatching it woke a sleeping worker */
    int queued;                     /* on the pool's list of jobs waiting to dispatch */
    struct cpool_job *next_queued;
    cpool__failure_t *failures;     /* failed items, in the order they ended */
    size_t failures_count, failures_cap;
    uint32_t window;
    uint32_t chunks_in_flight;
    cpool__chunk_t *chunks;
};

struct cpool__pool {
    cpool_options_t opts;
    uint32_t workers;
    cpool__region_t region;
    cpool__registry_t registry;
    pid_t parent_pid;
    uint32_t fn_tag;                /* see CPOOL_FN_INDEX_BITS */

    /* Everything below is parent-private and guarded by lock. Workers never touch it,
     * so a worker dying can never leave it held. */
    pthread_mutex_t lock;
    pthread_cond_t changed;         /* state, workers or active calls changed */
    int state;                      /* CPOOL_OPEN, ... */
    int broken;                     /* 0, or the code every call now fails with */
    int init_failures;              /* consecutive */
    int active_calls;               /* API calls in progress (see pool.c) */
    int paused;                     /* cpool_stop_workers: no replacements until started */
    int live_jobs;
    cpool__arena_t arena;
    cpool_job_t *jobs[CPOOL_MAX_JOBS];
    uint32_t job_gen[CPOOL_MAX_JOBS];
    uint32_t free_slots[CPOOL_MAX_JOBS];
    uint32_t free_count;
    cpool_job_t *queue_head, *queue_tail;
    int custom_timeouts;            /* live jobs with their own timeout */
    uint64_t min_custom_timeout_ns;
    cpool__worker_t *w;             /* [workers] */

    /* supervisor */
    pthread_t supervisor;
    int supervisor_running;
    int event_fd;                   /* pokes the supervisor */
    int started;                    /* first workers forked */
    int start_error;
};

/* Locks held: none. Wakes the parent threads sleeping on results_seq. */
void cpool__wake_waiters(cpool__pool_t *p);

/* Locks held: p->lock. Drains every result ring and applies the completions, then
 * dispatches queued work. Returns 1 when anything changed. */
int cpool__progress(cpool__pool_t *p);

/* Locks held: p->lock. Sends as much of the job as its window, the rings and the
 * arena allow; queues the job for later when something is left. */
void cpool__dispatch(cpool__pool_t *p, cpool_job_t *job);

/* Locks held: p->lock. Applies one completion from worker w. */
void cpool__apply_completion(cpool__pool_t *p, uint32_t w, const cpool__completion_t *c);

/* Locks held: p->lock. Ends every unfinished item of every job with code. */
void cpool__fail_all_jobs(cpool__pool_t *p, int code);

/* Locks held: p->lock. The job whose task sits at position seq of worker w's ring,
 * with that task; NULL when the job is gone. */
cpool_job_t *cpool__job_of_task(cpool__pool_t *p, uint32_t w, uint64_t seq, cpool__task_t *task);

/* Locks held: p->lock. Ends items [first, first+count) of a job's chunk with code. */
void cpool__end_items(cpool__pool_t *p, cpool_job_t *job, uint32_t chunk, uint32_t first,
                      uint32_t count, int code, int detail, uint32_t worker);

/* Locks held: p->lock. Stops worker w for `reason` while it runs item `item` of the
 * task at ring position `seq`: SIGTERM then SIGKILL after the grace, or SIGKILL at once. */
void cpool__kill_worker(cpool__pool_t *p, uint32_t w, int reason, uint64_t seq, uint64_t item);

/* Handles (pool.c): every public call that takes a pool enters it (CPOOL_E_CLOSED for
 * a handle that names no live pool, -EINVAL for NULL) and leaves it when done, so that
 * cpool_destroy waits for calls in progress. */
int cpool__pool_enter(cpool_pool_t *h, cpool__pool_t **p);
void cpool__pool_leave(cpool__pool_t *p);
/* The pool a handle names, or NULL (tests and fuzzers reach internals through it). */
cpool__pool_t *cpool__pool_internal(cpool_pool_t *h);
/* The registry index of function id fn of pool p, or CPOOL_E_UNKNOWN_FUNCTION. */
int cpool__fn_index(const cpool__pool_t *p, cpool_fn_t fn);

/* Supervisor (supervisor.c). */
/* Sends sig to worker w's process through its pidfd (never by pid). Locks held: p->lock. */
void cpool__signal_worker(cpool__pool_t *p, uint32_t w, int sig);
int cpool__supervisor_start(cpool__pool_t *p);
void cpool__supervisor_poke(cpool__pool_t *p);
void cpool__supervisor_stop(cpool__pool_t *p);

/* Worker process entry (worker.c); never returns. */
_Noreturn void cpool__worker_main(cpool__pool_t *p, uint32_t slot);

#endif
