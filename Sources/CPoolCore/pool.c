/* The pool's lifetime: options, create, close/terminate/join/destroy, registration,
 * shared buffers, statistics, and the table of live pools that turns a call on a
 * destroyed pool into CPOOL_E_CLOSED instead of a use-after-free. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "futex.h"
#include "pool.h"

#define DEFAULT_RING_SLOTS 256u
#define DEFAULT_ARENA_BYTES (64ull << 20)
#define DEFAULT_SPIN_NS 50000ull
#define MIN_ARENA_BYTES (64ull << 10)

/* ------------------------------------------------------------ handles */

/* A handle is not the pool's address: it names a slot of the table of live pools and
 * the generation of that slot, so that a handle kept after cpool_destroy never reaches
 * a pool created later at the same address (it gets CPOOL_E_CLOSED). */
_Static_assert(sizeof(void *) == 8, "handles pack a slot and a generation into a pointer");

typedef struct live_slot {
    cpool__pool_t *pool; /* NULL when free */
    uint32_t gen;
} live_slot_t;

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static live_slot_t *live;
static size_t live_cap;
static uint32_t pools_created;

static cpool_pool_t *handle_of(size_t slot, uint32_t gen) {
    return (cpool_pool_t *)(uintptr_t)(((uint64_t)gen << 32) | (uint64_t)(slot + 1));
}

/* Locks held: live_lock. The pool a handle names, or NULL. */
static cpool__pool_t *resolve_locked(const cpool_pool_t *h, size_t *slot_out) {
    const uint64_t v = (uint64_t)(uintptr_t)h;
    const uint64_t slot = (v & 0xffffffffu) - 1;
    if ((v & 0xffffffffu) == 0 || slot >= live_cap) return NULL;
    if (!live[slot].pool || live[slot].gen != (uint32_t)(v >> 32)) return NULL;
    if (slot_out) *slot_out = (size_t)slot;
    return live[slot].pool;
}

/* Enters p in the table; sets *h and the pool's function-id tag. */
static int live_add(cpool__pool_t *p, cpool_pool_t **h) {
    pthread_mutex_lock(&live_lock);
    size_t slot = 0;
    while (slot < live_cap && live[slot].pool) slot++;
    if (slot == live_cap) {
        size_t n = live_cap ? live_cap * 2 : 8;
        live_slot_t *v = realloc(live, n * sizeof *v);
        if (!v) {
            pthread_mutex_unlock(&live_lock);
            return -ENOMEM;
        }
        memset(v + live_cap, 0, (n - live_cap) * sizeof *v);
        live = v;
        live_cap = n;
    }
    if (++live[slot].gen == 0) live[slot].gen = 1;
    live[slot].pool = p;
    p->fn_tag = (++pools_created % CPOOL_FN_TAG_LIMIT) + 1;
    *h = handle_of(slot, live[slot].gen);
    pthread_mutex_unlock(&live_lock);
    return 0;
}

/* Takes the pool out of the table; returns it, or NULL when the handle named none. */
static cpool__pool_t *live_remove(cpool_pool_t *h) {
    pthread_mutex_lock(&live_lock);
    size_t slot;
    cpool__pool_t *p = resolve_locked(h, &slot);
    if (p) live[slot].pool = NULL;
    pthread_mutex_unlock(&live_lock);
    return p;
}

int cpool__pool_enter(cpool_pool_t *h, cpool__pool_t **out) {
    if (!h) return -EINVAL;
    pthread_mutex_lock(&live_lock);
    cpool__pool_t *p = resolve_locked(h, NULL);
    if (p) {
        pthread_mutex_lock(&p->lock);
        p->active_calls++;
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_unlock(&live_lock);
    *out = p;
    return p ? 0 : CPOOL_E_CLOSED;
}

void cpool__pool_leave(cpool__pool_t *p) {
    pthread_mutex_lock(&p->lock);
    if (--p->active_calls == 0) pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
}

cpool__pool_t *cpool__pool_internal(cpool_pool_t *h) {
    pthread_mutex_lock(&live_lock);
    cpool__pool_t *p = resolve_locked(h, NULL);
    pthread_mutex_unlock(&live_lock);
    return p;
}

int cpool__fn_index(const cpool__pool_t *p, cpool_fn_t fn) {
    if (fn < 0 || (uint32_t)fn >> CPOOL_FN_INDEX_BITS != p->fn_tag) return CPOOL_E_UNKNOWN_FUNCTION;
    return (int)((uint32_t)fn & (CPOOL_MAX_FUNCTIONS - 1));
}

static cpool_fn_t fn_id(const cpool__pool_t *p, int index) {
    return index < 0 ? index : (cpool_fn_t)((p->fn_tag << CPOOL_FN_INDEX_BITS) | (uint32_t)index);
}

/* ------------------------------------------------------------ options and create */

int cpool_options_init(cpool_options_t *o) {
    if (!o) return -EINVAL;
    memset(o, 0, sizeof *o);
    o->struct_bytes = sizeof *o;
    o->workers = 0;
    o->ring_slots = DEFAULT_RING_SLOTS;
    o->arena_bytes = DEFAULT_ARENA_BYTES;
    o->spin_ns = DEFAULT_SPIN_NS;
    return 0;
}

static uint32_t usable_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return (uint32_t)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (uint32_t)n : 1;
}

int cpool_cpu_count(void) { return (int)usable_cpus(); }

static void timed_wait(cpool__pool_t *p, uint64_t deadline_ns) {
    if (!deadline_ns) {
        pthread_cond_wait(&p->changed, &p->lock);
        return;
    }
    struct timespec ts = {(time_t)(deadline_ns / 1000000000u), (long)(deadline_ns % 1000000000u)};
    pthread_cond_timedwait(&p->changed, &p->lock, &ts);
}

static void free_pool(cpool__pool_t *p) {
    for (uint32_t s = 0; s < CPOOL_MAX_JOBS; s++) {
        cpool_job_t *job = p->jobs[s];
        if (!job) continue;
        free(job->chunks);
        free(job->owned_args);
        free(job->failures);
        free(job);
    }
    cpool__region_destroy(&p->region);
    cpool__arena_fini(&p->arena);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
    free(p->w);
    free(p);
}

int cpool_create(const cpool_options_t *options, cpool_pool_t **out) {
    if (!out) return -EINVAL;
    *out = NULL;
    cpool_options_t o;
    cpool_options_init(&o);
    if (options) {
        if (options->struct_bytes == 0 || options->struct_bytes > sizeof o) return -EINVAL;
        memcpy(&o, options, options->struct_bytes);
        o.struct_bytes = sizeof o;
    }
    if (o.workers == 0) o.workers = usable_cpus();
    if (o.workers > CPOOL_MAX_WORKERS) return -EINVAL;
    if (o.ring_slots < 2 || o.ring_slots > 65536 || (o.ring_slots & (o.ring_slots - 1))) return -EINVAL;
    if (o.arena_bytes < MIN_ARENA_BYTES || o.arena_bytes > (1ull << 40)) return -EINVAL;

    cpool__pool_t *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    p->opts = o;
    p->workers = o.workers;
    p->parent_pid = getpid();
    p->event_fd = -1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->changed, &ca);
    pthread_condattr_destroy(&ca);
    p->w = calloc(o.workers, sizeof *p->w);
    int rc = p->w ? 0 : -ENOMEM;
    if (!rc) rc = cpool__region_create(&p->region, o.workers, o.ring_slots, o.arena_bytes);
    if (!rc) rc = cpool__arena_init(&p->arena, p->region.arena_bytes);
    if (rc) {
        free_pool(p);
        return rc;
    }
    cpool__registry_init(&p->registry, &p->region);
    for (uint32_t i = 0; i < CPOOL_MAX_JOBS; i++) p->free_slots[i] = CPOOL_MAX_JOBS - 1 - i;
    p->free_count = CPOOL_MAX_JOBS;
    for (uint32_t w = 0; w < o.workers; w++) p->w[w].pidfd = -1;
    cpool_pool_t *h;
    if ((rc = live_add(p, &h)) != 0) {
        free_pool(p);
        return rc;
    }
    rc = cpool__supervisor_start(p);
    if (rc) {
        cpool_destroy(h);
        return rc;
    }
    *out = h;
    return 0;
}

/* ------------------------------------------------------------ close, terminate, join */

int cpool_close(cpool_pool_t *h) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    pthread_mutex_lock(&p->lock);
    if (p->state == CPOOL_OPEN) p->state = CPOOL_CLOSED;
    pthread_mutex_unlock(&p->lock);
    cpool__pool_leave(p);
    return 0;
}

/* Locks held: p->lock. */
static void terminate_locked(cpool__pool_t *p) {
    if (p->state == CPOOL_TERMINATED) return;
    p->state = CPOOL_TERMINATED;
    cpool__fail_all_jobs(p, CPOOL_E_CANCELLED);
    for (uint32_t w = 0; w < p->workers; w++) {
        atomic_store(&p->region.ctl[w].to_worker.stop, 2);
        if (p->w[w].pid) cpool__signal_worker(p, w, SIGKILL);
    }
}

int cpool_terminate(cpool_pool_t *h) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    pthread_mutex_lock(&p->lock);
    terminate_locked(p);
    pthread_mutex_unlock(&p->lock);
    cpool__wake_waiters(p);
    cpool__supervisor_poke(p);
    cpool__pool_leave(p);
    return 0;
}

static int all_jobs_ended(const cpool__pool_t *p) {
    for (uint32_t s = 0; s < CPOOL_MAX_JOBS; s++)
        if (p->jobs[s] && !atomic_load(&p->jobs[s]->ended)) return 0;
    return 1;
}

static int workers_gone(const cpool__pool_t *p) {
    for (uint32_t w = 0; w < p->workers; w++)
        if (p->w[w].pid) return 0;
    return 1;
}

/* Waits for every job to end, then for every worker to leave. Locks held: none. */
static int join_pool(cpool__pool_t *p, uint64_t timeout_ns) {
    const uint64_t deadline = timeout_ns ? cpool__now_ns() + timeout_ns : 0;
    cpool__header_t *h = p->region.header;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        if (p->state == CPOOL_OPEN) {
            pthread_mutex_unlock(&p->lock);
            return -EINVAL;
        }
        int changed = cpool__progress(p);
        int done = all_jobs_ended(p);
        pthread_mutex_unlock(&p->lock);
        if (changed) cpool__wake_waiters(p);
        if (done) break;
        if (deadline && cpool__now_ns() >= deadline) return -ETIMEDOUT;
        atomic_fetch_add(&h->parent_sleepers, 1);
        uint32_t seq = atomic_load(&h->results_seq);
        cpool__futex_wait(&h->results_seq, seq, 1000000u);
        atomic_fetch_sub(&h->parent_sleepers, 1);
    }
    pthread_mutex_lock(&p->lock);
    for (uint32_t w = 0; w < p->workers; w++) {
        cpool__worker_ctl_t *c = &p->region.ctl[w];
        if (!atomic_load(&c->to_worker.stop)) atomic_store(&c->to_worker.stop, 1);
        atomic_fetch_add(&c->to_worker.wake_seq, 1);
        cpool__futex_wake_all(&c->to_worker.wake_seq);
    }
    int rc = 0;
    while (!workers_gone(p) && rc == 0) {
        if (deadline && cpool__now_ns() >= deadline) rc = -ETIMEDOUT;
        else timed_wait(p, deadline ? deadline : cpool__now_ns() + 100000000u);
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int cpool_join(cpool_pool_t *h, uint64_t timeout_ns) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    rc = join_pool(p, timeout_ns);
    cpool__pool_leave(p);
    return rc;
}

int cpool_stop_workers(cpool_pool_t *h, uint64_t timeout_ns) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    const uint64_t deadline = timeout_ns ? cpool__now_ns() + timeout_ns : 0;
    pthread_mutex_lock(&p->lock);
    if (p->state != CPOOL_OPEN) rc = CPOOL_E_CLOSED;
    if (!rc) {
        p->paused = 1;
        for (uint32_t w = 0; w < p->workers; w++) {
            cpool__worker_ctl_t *c = &p->region.ctl[w];
            p->w[w].respawn = 0;
            atomic_store(&c->to_worker.stop, 1);
            atomic_fetch_add(&c->to_worker.wake_seq, 1);
            cpool__futex_wake_all(&c->to_worker.wake_seq);
        }
        while (!workers_gone(p) && rc == 0) {
            if (deadline && cpool__now_ns() >= deadline) rc = -ETIMEDOUT;
            else timed_wait(p, deadline ? deadline : cpool__now_ns() + 100000000u);
        }
    }
    pthread_mutex_unlock(&p->lock);
    cpool__pool_leave(p);
    return rc;
}

int cpool_start_workers(cpool_pool_t *h) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    pthread_mutex_lock(&p->lock);
    if (p->state != CPOOL_OPEN) rc = CPOOL_E_CLOSED;
    else if (p->broken) rc = p->broken;
    if (!rc) {
        p->paused = 0;
        p->start_error = 0;
        for (uint32_t w = 0; w < p->workers; w++)
            if (!p->w[w].pid) p->w[w].respawn = 1;
    }
    pthread_mutex_unlock(&p->lock);
    if (!rc) {
        cpool__supervisor_poke(p);
        pthread_mutex_lock(&p->lock);
        /* Until every slot has a process that finished its init hook (or died: the
         * supervisor then forks another or breaks the pool). Init completion is not
         * signalled, so look every millisecond. */
        for (;;) {
            int pending = 0;
            for (uint32_t w = 0; w < p->workers; w++)
                pending |= p->w[w].respawn ||
                           (p->w[w].pid && !atomic_load(&p->region.ctl[w].state.init_ok));
            if (!pending || p->broken || p->state != CPOOL_OPEN || p->start_error) break;
            timed_wait(p, cpool__now_ns() + 1000000u);
        }
        rc = p->broken ? p->broken : p->state != CPOOL_OPEN ? CPOOL_E_CLOSED : p->start_error;
        pthread_mutex_unlock(&p->lock);
    }
    cpool__pool_leave(p);
    return rc;
}

void cpool_destroy(cpool_pool_t *h) {
    cpool__pool_t *p = h ? live_remove(h) : NULL;
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    if (!(p->state != CPOOL_OPEN && workers_gone(p) && all_jobs_ended(p))) terminate_locked(p);
    pthread_mutex_unlock(&p->lock);
    cpool__wake_waiters(p);
    cpool__supervisor_poke(p);
    /* Calls in progress (a map waiting for its job) see their job end and leave. */
    pthread_mutex_lock(&p->lock);
    while (p->active_calls) timed_wait(p, cpool__now_ns() + 10000000u);
    pthread_mutex_unlock(&p->lock);
    if (p->started) join_pool(p, 0);
    cpool__supervisor_stop(p);
    /* Any worker left (the supervisor failed to start) cannot outlive the pool. */
    for (uint32_t w = 0; w < p->workers; w++) {
        if (p->w[w].pid) cpool__signal_worker(p, w, SIGKILL);
        if (p->w[w].pidfd >= 0) close(p->w[w].pidfd);
    }
    free_pool(p);
}

/* ------------------------------------------------------------ functions */

static cpool_fn_t add_function(cpool_pool_t *h, const char *name, const char *signature,
                               void *fn, const char *library, const char *symbol, void *ctx,
                               uint32_t kind, uint32_t in_bytes, uint32_t out_bytes,
                               uint32_t flags) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    pthread_mutex_lock(&p->lock);
    if (p->state != CPOOL_OPEN) rc = CPOOL_E_CLOSED;
    else rc = fn_id(p, cpool__registry_add(&p->registry, name, signature, fn, library, symbol,
                                           ctx, kind, in_bytes, out_bytes, flags));
    pthread_mutex_unlock(&p->lock);
    cpool__pool_leave(p);
    return rc;
}

cpool_fn_t cpool_register(cpool_pool_t *h, const char *name, const char *signature, void *fn,
                          uint32_t flags) {
    if (!fn || !signature) return -EINVAL;
    return add_function(h, name, signature, fn, NULL, NULL, NULL, 0, 0, 0, flags);
}

cpool_fn_t cpool_register_symbol(cpool_pool_t *h, const char *name, const char *library,
                                 const char *symbol, const char *signature, uint32_t flags) {
    if (!symbol || !symbol[0] || !signature) return -EINVAL;
    return add_function(h, name, signature, NULL, library, symbol, NULL, 0, 0, 0, flags);
}

cpool_fn_t cpool_register_batch(cpool_pool_t *h, const char *name, cpool_batch_fn_t fn,
                                void *ctx, size_t in_bytes, size_t out_bytes) {
    if (!fn || in_bytes > UINT32_MAX || out_bytes > UINT32_MAX) return -EINVAL;
    return add_function(h, name, NULL, (void *)fn, NULL, NULL, ctx, CPOOL_KIND_BATCH,
                        (uint32_t)in_bytes, (uint32_t)out_bytes, 0);
}

cpool_fn_t cpool_lookup(cpool_pool_t *h, const char *name) {
    if (!name) return -EINVAL;
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    rc = fn_id(p, cpool__registry_find(&p->registry, name));
    cpool__pool_leave(p);
    return rc;
}

int cpool_function_sizes(cpool_pool_t *h, cpool_fn_t fn, size_t *args_bytes,
                         size_t *result_bytes) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    int err = cpool__fn_index(p, fn);
    const cpool__fn_local_t *f = err >= 0 ? cpool__registry_get(&p->registry, (uint32_t)err, &err) : NULL;
    if (f) {
        if (args_bytes) *args_bytes = f->in_bytes;
        if (result_bytes) *result_bytes = f->out_bytes;
        err = 0;
    }
    cpool__pool_leave(p);
    return err;
}

/* ------------------------------------------------------------ shared buffers */

void *cpool_alloc(cpool_pool_t *h, size_t bytes) {
    cpool__pool_t *p;
    if (cpool__pool_enter(h, &p) != 0) return NULL;
    void *ptr = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->state == CPOOL_OPEN) {
        uint64_t off = cpool__arena_alloc(&p->arena, bytes);
        if (off != UINT64_MAX) ptr = p->region.arena + off;
    }
    pthread_mutex_unlock(&p->lock);
    cpool__pool_leave(p);
    return ptr;
}

void cpool_free(cpool_pool_t *h, void *buffer) {
    cpool__pool_t *p;
    if (!buffer || cpool__pool_enter(h, &p) != 0) return;
    unsigned char *b = buffer;
    pthread_mutex_lock(&p->lock);
    if (b >= p->region.arena && b < p->region.arena + p->region.arena_bytes)
        cpool__arena_free(&p->arena, (uint64_t)(b - p->region.arena));
    pthread_mutex_unlock(&p->lock);
    cpool__pool_leave(p);
}

/* ------------------------------------------------------------ statistics */

int cpool_arena_usage(cpool_pool_t *h, uint64_t *in_use_bytes, uint64_t *capacity_bytes) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    pthread_mutex_lock(&p->lock);
    if (in_use_bytes) *in_use_bytes = p->arena.in_use;
    if (capacity_bytes) *capacity_bytes = p->arena.capacity;
    pthread_mutex_unlock(&p->lock);
    cpool__pool_leave(p);
    return 0;
}

int cpool_worker_count(cpool_pool_t *h) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    rc = (int)p->workers;
    cpool__pool_leave(p);
    return rc;
}

int cpool_worker_stats(cpool_pool_t *h, uint32_t worker, cpool_worker_stats_t *out) {
    if (!out) return -EINVAL;
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    if (worker >= p->workers) {
        cpool__pool_leave(p);
        return -ERANGE;
    }
    pthread_mutex_lock(&p->lock);
    const cpool__worker_t *w = &p->w[worker];
    memset(out, 0, sizeof *out);
    out->pid = w->pid;
    out->tasks_done = w->items_before + atomic_load(&p->region.ctl[worker].state.items_done);
    out->restarts = w->restarts;
    out->crashes = w->crashes;
    out->timeouts = w->timeouts;
    out->recycles = w->recycles;
    pthread_mutex_unlock(&p->lock);
    cpool__pool_leave(p);
    return 0;
}
