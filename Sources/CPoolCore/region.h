/* The pool's shared region: one memfd mapping made before any worker is forked, so it
 * sits at the same address in the parent and in every worker. Its byte layout (see
 * docs/design.md) lives here and nowhere else; the public header never shows it. */
#ifndef CPOOL_REGION_H
#define CPOOL_REGION_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_LINE 64
#define REGION_MAGIC 0x4c4f4f50435f5350ull /* "PS_CPOOL" little-endian */
#define LAYOUT_VERSION 1u
#define MAX_WORKERS 256u
#define MAX_FUNCTIONS 256u
#define MAX_JOBS 4096u
#define MAX_ARGS 8u
#define ARENA_ALIGN 64u

#define CACHE_ALIGNED _Alignas(CACHE_LINE)

/* A task descriptor: a run of items of one job, 64 bytes, one per task-ring slot.
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
    uint32_t first;      /* index of the first item within the chunk */
    uint32_t count;      /* items in this run */
    uint64_t reserved[2];
} cpool__task_t;
_Static_assert(sizeof(cpool__task_t) == 64, "task descriptor is one cache line");

/* A completion: items [first, first+count) of a chunk ended with code (0 = ok). */
typedef struct cpool__completion {
    uint32_t job_slot;
    uint32_t job_gen;
    uint32_t chunk;
    int32_t code;
    uint32_t first;
    uint32_t count;
    int32_t detail;
    uint32_t reserved;
} cpool__completion_t;
_Static_assert(sizeof(cpool__completion_t) == 32, "completion is half a cache line");

/* What a worker is doing, written by the worker only. */
enum {
    PHASE_IDLE = 0, PHASE_RUNNING = 1, PHASE_PUBLISHING = 2,
    PHASE_INIT = 3,    /* running the init hook */
    PHASE_EXITING = 4, /* running the exit hook */
};

/* What the parent asks of a worker through `stop`. */
enum {
    STOP_NONE = 0,
    STOP_WHEN_DRAINED = 1, /* leave once the task ring is empty (close, join, lifespan) */
    STOP_NOW = 2,          /* leave at once, without the exit hook (terminate, broken) */
};

/* One worker's control block. Each line has a single writer: the parent writes
 * `to_worker`, the worker writes `from_worker` and `state`. */
typedef struct cpool__worker_ctl {
    struct {
        CACHE_ALIGNED _Atomic uint64_t task_head; /* task ring: next position the parent fills */
        _Atomic uint64_t res_tail;  /* result ring: next position the parent reads */
        _Atomic uint32_t wake_seq;  /* futex word the worker sleeps on */
        _Atomic uint32_t stop;      /* STOP_* */
    } to_worker;
    struct {
        CACHE_ALIGNED _Atomic uint64_t task_tail; /* task ring: next position the worker reads */
        _Atomic uint64_t res_head;  /* result ring: next position the worker fills */
        _Atomic uint32_t sleeping;  /* 1 while the worker sleeps (or is about to) */
        uint32_t pad;
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
} cpool__worker_ctl_t;
_Static_assert(sizeof(cpool__worker_ctl_t) == 3 * CACHE_LINE, "control block layout");

/* A registered function as every process sees it. Written once by the parent before
 * `count` is raised; never changed afterwards. */
typedef struct cpool__fn_shared {
    char name[64];
    char signature[96];
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
    uint64_t generation;   /* fork generation when registered, see worker.c */
} cpool__fn_shared_t;

typedef struct cpool__header {
    uint64_t magic;
    uint32_t version;
    uint32_t workers;
    uint32_t ring_slots;
    uint32_t max_functions;
    uint64_t region_bytes;
    uint64_t ctl_off, task_slots_off, res_slots_off, functions_off, cancel_off, arena_off;
    uint64_t arena_bytes;
    uint32_t parent_pid;
    uint32_t pad0;
    CACHE_ALIGNED _Atomic uint32_t fn_count;   /* functions published so far */
    CACHE_ALIGNED _Atomic uint32_t results_seq;/* futex word parent threads sleep on */
    _Atomic uint32_t parent_sleepers;      /* parent threads asleep on results_seq */
} cpool__header_t;

typedef struct cpool__region {
    void *base;
    size_t bytes;
    cpool__header_t *header;
    cpool__worker_ctl_t *ctl;          /* [workers] */
    cpool__task_t *task_slots;         /* [workers][ring_slots] */
    cpool__completion_t *res_slots;    /* [workers][ring_slots] */
    cpool__fn_shared_t *functions;     /* [MAX_FUNCTIONS] */
    _Atomic uint32_t *cancelled;       /* [MAX_JOBS]: the generation cancelled */
    unsigned char *arena;
    uint64_t arena_bytes;
} cpool__region_t;

/* Maps and lays out a region (nothing of it is ever visible in /dev/shm) and
 * pre-faults everything but the arena. Returns 0 or -errno. */
int cpool__region_create(cpool__region_t *r, uint32_t workers, uint32_t ring_slots,
                         uint64_t arena_bytes);
void cpool__region_destroy(cpool__region_t *r);

static inline cpool__task_t *cpool__task_ring(const cpool__region_t *r, uint32_t w) {
    return r->task_slots + (size_t)w * r->header->ring_slots;
}
static inline cpool__completion_t *cpool__result_ring(const cpool__region_t *r, uint32_t w) {
    return r->res_slots + (size_t)w * r->header->ring_slots;
}

/* 1 when [off, off+bytes) lies inside the arena. */
static inline int cpool__arena_contains(const cpool__region_t *r, uint64_t off, uint64_t bytes) {
    return off <= r->arena_bytes && bytes <= r->arena_bytes - off;
}

#endif
