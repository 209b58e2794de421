/* The pool's shared region: one memfd mapping made before any worker starts. A forked
 * worker inherits it; a spawned one maps the same memfd at the same address
 * (spawned.c), so it sits at one address in the parent and in every worker. Its byte layout (see
 * docs/design.md) lives here and nowhere else; the public header never shows it. */
#ifndef CPOOL_REGION_H
#define CPOOL_REGION_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_LINE 64
#define REGION_MAGIC 0x4c4f4f50435f5350ull /* "PS_CPOOL" little-endian */
#define LAYOUT_VERSION 5u
#define MAX_WORKERS 256u
#define MAX_FUNCTIONS 256u
#define MAX_JOBS 4096u
#define MAX_ARGS 8u
#define ARENA_ALIGN 64u

#define CACHE_ALIGNED _Alignas(CACHE_LINE)

/* A task descriptor: a run of items of one job, in a task-ring slot.
 * Offsets are relative to the arena so that a worker can bound-check them. */
typedef struct cpool__task {
    uint32_t job_slot;   /* index in the parent's job table */
    uint32_t job_gen;    /* generation of that slot, to drop stale completions */
    uint32_t fn;         /* function id */
    uint32_t chunk;      /* chunk index within the job's window */
    uint64_t in_off;     /* arena offset of the first item's input */
    uint64_t out_off;    /* arena offset of the first item's output */
    uint32_t in_stride;  /* bytes between items' inputs */
    uint32_t out_stride; /* bytes between items' outputs */
    uint32_t serial;     /* the chunk's serial: a chunk record reused later has another */
    uint32_t first;      /* index within the chunk of the first item not yet run */
    uint32_t count;      /* items from first to the task's end when it was written; the
                            end is the split word's (the parent may lower it) */
    uint32_t flags;      /* TASK_* */
} cpool__task_t;
_Static_assert(sizeof(cpool__task_t) == 56, "task descriptor and split word fill a cache line");

/* The task is its job's only item: publishing it ends the job (no count to keep). */
#define TASK_WHOLE_JOB 1u

/* A task-ring slot: the descriptor and its split word (ring.h) in one cache line, so
 * that a worker taking a task touches one line. Only the descriptor is ever copied;
 * the split word changes only atomically. */
typedef struct cpool__task_slot {
    cpool__task_t task;
    _Atomic uint64_t split;
} cpool__task_slot_t;
_Static_assert(sizeof(cpool__task_slot_t) == CACHE_LINE, "one task per cache line");

/* A completion: items [first, first+count) of a chunk ended with code (0 = ok). */
typedef struct cpool__completion {
    uint32_t job_slot;
    uint32_t job_gen;
    uint32_t chunk;
    int32_t code;
    uint32_t first;
    uint32_t count;
    int32_t detail;
    uint32_t serial;     /* the task's chunk serial */
} cpool__completion_t;
_Static_assert(sizeof(cpool__completion_t) == 32, "completion is half a cache line");

/* An output record in a worker's output ring (output.c): one piece of the output of
 * item `item` of a chunk, `bytes` long, to be placed at `offset` in the item's whole
 * output of `total` bytes, followed by its bytes. Records start 8-byte aligned; a
 * record with job_slot OUTPUT_PAD only fills the ring up to its end. */
typedef struct cpool__output_record {
    uint32_t job_slot;
    uint32_t job_gen;
    uint32_t chunk;
    uint32_t serial;
    uint32_t item;       /* index within the chunk */
    uint32_t bytes;      /* bytes of this piece, after the header */
    uint64_t offset;
    uint64_t total;
} cpool__output_record_t;
_Static_assert(sizeof(cpool__output_record_t) == 40, "output record header");
#define OUTPUT_PAD UINT32_MAX

/* What a worker is doing, written by the worker only. */
enum {
    PHASE_IDLE = 0, PHASE_RUNNING = 1, PHASE_PUBLISHING = 2,
    PHASE_INIT = 3,    /* running the init hook */
    PHASE_EXITING = 4, /* running the exit hook */
    PHASE_STARTING = 5,/* set by the parent when it spawns the process: until it serves */
};

/* What the parent asks of a worker through `stop`. */
enum {
    STOP_NONE = 0,
    STOP_WHEN_DRAINED = 1, /* leave once the task ring is empty (close, join, lifespan) */
    STOP_NOW = 2,          /* leave at once, without the exit hook (terminate, broken) */
};

/* One of a worker slot's slowest items, written under a sequence lock: `seq` is odd
 * while the worker rewrites the entry, so a reader retries until it reads the same
 * even value before and after. */
#define SLOWEST_ITEMS 5
typedef struct cpool__slow_item {
    _Atomic uint32_t seq;
    uint32_t fn;
    uint64_t ns;         /* 0: the entry is unused */
    uint64_t id;         /* the slot's count of timed items when this one ran: unique */
    uint32_t job_slot, job_gen, chunk, serial;
    uint32_t item;       /* index within the chunk; the parent turns it into the job's */
    uint32_t pad;
} cpool__slow_item_t;
_Static_assert(sizeof(cpool__slow_item_t) == 48, "slow item entry");

/* Where a worker slot's time went, summed over all of its processes (the block is never
 * reset when a process is replaced). Written by the slot's worker only; the times are
 * kept only when the pool's insights are on (CPOOL_OPTION_INSIGHTS). */
typedef struct cpool__insights {
    CACHE_ALIGNED _Atomic uint64_t processes;  /* processes that reached their task loop */
    _Atomic uint64_t startup_ns;  /* fork to ready (init hook included), all processes */
    _Atomic uint64_t init_ns;     /* in the init hook */
    _Atomic uint64_t exit_ns;     /* in the exit hook */
    _Atomic uint64_t working_ns;  /* running items */
    _Atomic uint64_t waiting_ns;  /* waiting for a task */
    _Atomic uint64_t items_timed; /* items whose time is in working_ns */
    uint64_t pad;
    cpool__slow_item_t slowest[SLOWEST_ITEMS]; /* slowest first */
} cpool__insights_t;
_Static_assert(sizeof(cpool__insights_t) == 5 * CACHE_LINE, "insights block layout");

/* One worker's control block. Each line has a single writer: the parent writes
 * `to_worker`, the worker writes `from_worker` and `state`. */
typedef struct cpool__worker_ctl {
    struct {
        CACHE_ALIGNED _Atomic uint64_t task_head; /* task ring: next position the parent fills */
        _Atomic uint64_t res_tail;  /* result ring: next position the parent reads */
        _Atomic uint32_t wake_seq;  /* futex word the worker sleeps on */
        _Atomic uint32_t stop;      /* STOP_* */
        _Atomic uint64_t out_tail;  /* output ring: next byte position the parent reads */
    } to_worker;
    struct {
        CACHE_ALIGNED _Atomic uint64_t task_tail; /* task ring: next position the worker reads */
        _Atomic uint64_t res_head;  /* result ring: next position the worker fills */
        _Atomic uint32_t sleeping;  /* 1 while the worker sleeps (or is about to) */
        uint32_t pad;
        _Atomic uint64_t out_head;  /* output ring: next byte position the worker fills */
    } from_worker;
    struct {
        CACHE_ALIGNED _Atomic uint64_t cur_seq;   /* task position being run; valid while phase != IDLE */
        _Atomic uint64_t cur_item;  /* item within that task being run */
        _Atomic uint64_t items_done;/* items run by this process */
        _Atomic uint64_t phase_since_ns; /* when INIT or EXITING began (monotonic clock) */
        _Atomic uint32_t phase;
        _Atomic uint32_t init_ok;   /* set once the init hook returned 0 */
        _Atomic uint32_t leaving;   /* exit status + 1, written just before the worker's
                                       own _exit: the parent reads it when the host
                                       reaped the process before the parent could */
        uint32_t pad;
    } state;
    cpool__insights_t insights;
} cpool__worker_ctl_t;
_Static_assert(sizeof(cpool__worker_ctl_t) == 8 * CACHE_LINE, "control block layout");

/* A registered function as every process sees it. Written once by the parent before
 * `count` is raised; never changed afterwards. */
typedef struct cpool__fn_shared {
    char name[64];
    char signature[96];    /* defined functions: the start of their type, for messages */
    char library[192];     /* dlopen name for by-symbol registration, else "" */
    char symbol[64];       /* dlsym name, else "" */
    char object_path[192]; /* shared object holding fn_addr (dladdr), else "" */
    uint64_t fn_addr;      /* address in the registering process */
    uint64_t object_offset;/* fn_addr - object base, to find it after a fresh dlopen */
    uint64_t ctx;          /* batch functions: their context pointer */
    uint32_t kind;         /* FN_KIND_* (registry.h) */
    uint32_t flags;
    uint32_t in_bytes;     /* one item's argument record; 0 for the bytes form */
    uint32_t out_bytes;    /* one item's result; 0 for the bytes form */
    uint64_t object_dev;   /* the file holding fn_addr (st_dev, st_ino), so that a spawned */
    uint64_t object_ino;   /* worker uses object_offset only in that very file */
    uint64_t type_hash;    /* defined functions: hash of their type and sizes */
} cpool__fn_shared_t;

/* The worker hooks, as entries a process resolves like functions (registry.c): the
 * options' hooks by address, then the hooks defined by name. */
enum { HOOK_INIT = 0, HOOK_EXIT = 1, HOOK_INIT_NAMED = 2, HOOK_EXIT_NAMED = 3, HOOK_COUNT = 4 };

/* What a worker needs to know to run, written by the parent before the workers that
 * read it start (the named hooks: cpool_set_worker_hooks, while none runs). Forked and
 * spawned workers alike read it here. */
typedef struct cpool__worker_settings {
    uint32_t start_method;
    uint32_t flags;                /* CPOOL_OPTION_* */
    uint64_t spin_ns;
    uint64_t max_tasks_per_worker;
    uint64_t max_memory_growth_bytes;
    cpool__fn_shared_t hooks[HOOK_COUNT]; /* name[0] == 0 and fn_addr == 0: none */
} cpool__worker_settings_t;

/* A slot's room for exit hooks' values (cpool_hook_output): records of an 8-byte length
 * and the bytes (8-byte aligned) from `taken` to `used`. One writer at a time (the
 * slot's process); the parent takes what lies below `used`. */
typedef struct cpool__hook_outputs {
    _Atomic uint64_t used;
    _Atomic uint64_t taken;
    uint64_t pad[6];
} cpool__hook_outputs_t;
_Static_assert(sizeof(cpool__hook_outputs_t) == CACHE_LINE, "hook output header");

typedef struct cpool__header {
    uint64_t magic;
    uint32_t version;
    uint32_t workers;
    uint32_t ring_slots;
    uint32_t max_functions;
    uint64_t region_bytes;
    uint64_t ctl_off, task_slots_off, res_slots_off, functions_off, cancel_off, job_left_off,
             arena_off, outputs_off;
    uint64_t arena_bytes;
    uint64_t output_bytes;  /* each worker's output ring */
    uint64_t hook_outputs_off, hook_output_bytes; /* each slot: header + room */
    uint32_t parent_pid;
    uint32_t pad0;
    cpool__worker_settings_t settings;
    CACHE_ALIGNED _Atomic uint32_t fn_count;   /* functions published so far */
    CACHE_ALIGNED _Atomic uint32_t results_seq;/* futex word parent threads sleep on */
    _Atomic uint32_t parent_sleepers;      /* parent threads asleep on results_seq */
    _Atomic uint32_t jobs_waiting;         /* 1 while a job waits for room to dispatch:
                                              then every completion wakes the parent */
} cpool__header_t;

typedef struct cpool__region {
    void *base;
    size_t bytes;
    int fd;                            /* the memfd, kept for spawning; -1 in a worker */
    cpool__header_t *header;
    cpool__worker_ctl_t *ctl;          /* [workers] */
    cpool__task_slot_t *task_slots;    /* [workers][ring_slots] */
    cpool__completion_t *res_slots;    /* [workers][ring_slots] */
    cpool__fn_shared_t *functions;     /* [MAX_FUNCTIONS] */
    _Atomic uint32_t *cancelled;       /* [MAX_JOBS]: the generation cancelled */
    _Atomic uint64_t *job_left;        /* [MAX_JOBS]: generation << 32 | items not yet
                                          ended (a wake-up hint, see worker.c) */
    unsigned char *arena;
    uint64_t arena_bytes;
    unsigned char *outputs;            /* [workers][output_bytes]: output rings */
    uint64_t output_bytes;
    unsigned char *hook_outputs;       /* [workers][header + hook_output_bytes] */
    uint64_t hook_output_bytes;
} cpool__region_t;

/* Maps and lays out a region (nothing of it is ever visible in /dev/shm) and
 * pre-faults everything but the arena. Returns 0 or -errno. */
int cpool__region_create(cpool__region_t *r, uint32_t workers, uint32_t ring_slots,
                         uint64_t arena_bytes, uint64_t output_bytes, uint64_t hook_output_bytes);
/* A spawned worker: maps the memfd fd at base, exactly there, and finds its parts
 * from the header. Returns 0, -EEXIST (something else lives at base here), -EPROTO (not
 * a region of this layout) or -errno. */
int cpool__region_attach(cpool__region_t *r, int fd, void *base, uint64_t bytes);
void cpool__region_destroy(cpool__region_t *r);

/* Slot w's exit value room: its header, then its bytes. */
static inline cpool__hook_outputs_t *cpool__hook_outputs(const cpool__region_t *r, uint32_t w) {
    return (cpool__hook_outputs_t *)(r->hook_outputs +
                                     (size_t)w * (sizeof(cpool__hook_outputs_t) + r->hook_output_bytes));
}

/* Worker w's task-ring slot for position pos. */
static inline cpool__task_slot_t *cpool__task_slot(const cpool__region_t *r, uint32_t w, uint64_t pos) {
    const uint32_t cap = r->header->ring_slots;
    return r->task_slots + (size_t)w * cap + (pos & (cap - 1));
}
static inline unsigned char *cpool__output_ring(const cpool__region_t *r, uint32_t w) {
    return r->outputs + (size_t)w * r->output_bytes;
}
static inline cpool__completion_t *cpool__result_ring(const cpool__region_t *r, uint32_t w) {
    return r->res_slots + (size_t)w * r->header->ring_slots;
}

/* A job's count of items not yet ended, kept so that whoever ends its last items knows
 * to wake the parent; JOB_LEFT_UNCOUNTED for a job too large to count. */
#define JOB_LEFT_UNCOUNTED UINT32_MAX
static inline uint64_t cpool__job_left_make(uint32_t gen, uint64_t count) {
    return (uint64_t)gen << 32 | (count >= JOB_LEFT_UNCOUNTED ? JOB_LEFT_UNCOUNTED : count);
}

/* Subtracts n ended items from the count of the job of generation gen. Returns 1 when
 * this brought it to 0 (or the job is not counted), else 0 (also for a slot that a job
 * of another generation holds now). */
static inline int cpool__job_left_sub(_Atomic uint64_t *word, uint32_t gen, uint64_t n) {
    uint64_t v = atomic_load_explicit(word, memory_order_relaxed);
    for (;;) {
        if ((uint32_t)(v >> 32) != gen) return 0;
        const uint32_t left = (uint32_t)v;
        if (left == JOB_LEFT_UNCOUNTED) return 1;
        if (left == 0) return 0;
        const uint32_t rest = n >= left ? 0 : left - (uint32_t)n;
        if (atomic_compare_exchange_weak_explicit(word, &v, (uint64_t)gen << 32 | rest,
                                                  memory_order_acq_rel, memory_order_relaxed))
            return rest == 0;
    }
}

/* 1 when [off, off+bytes) lies inside the arena. */
static inline int cpool__arena_contains(const cpool__region_t *r, uint64_t off, uint64_t bytes) {
    return off <= r->arena_bytes && bytes <= r->arena_bytes - off;
}

#endif
