/* A pool's lifetime: options, create, close, terminate, join, destroy, and stopping
 * and starting its workers between calls. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "completion.h"
#include "futex.h"
#include "job.h"
#include "capture.h"
#include "spawned.h"
#include "supervisor.h"

#define DEFAULT_RING_SLOTS 256u
#define DEFAULT_ARENA_BYTES (64ull << 20)
#define DEFAULT_SPIN_NS 50000ull
#define MIN_ARENA_BYTES (64ull << 10)
#define DEFAULT_OUTPUT_BYTES (4ull << 20)
#define MIN_OUTPUT_BYTES (16ull << 10)
#define DEFAULT_HOOK_OUTPUT_BYTES (64ull << 10)

/* ------------------------------------------------------------ options and create */

int cpool_options_init(cpool_options_t *o) {
    if (!o) return -EINVAL;
    memset(o, 0, sizeof *o);
    o->struct_bytes = sizeof *o;
    o->workers = 0;
    o->ring_slots = DEFAULT_RING_SLOTS;
    o->arena_bytes = DEFAULT_ARENA_BYTES;
    o->spin_ns = DEFAULT_SPIN_NS;
    o->output_bytes = DEFAULT_OUTPUT_BYTES;
    o->hook_output_bytes = DEFAULT_HOOK_OUTPUT_BYTES;
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

void cpool__pool_wait_changed(cpool__pool_t *p, uint64_t deadline_ns) {
    if (!deadline_ns) {
        pthread_cond_wait(&p->changed, &p->lock);
        return;
    }
    struct timespec ts = {(time_t)(deadline_ns / 1000000000u), (long)(deadline_ns % 1000000000u)};
    pthread_cond_timedwait(&p->changed, &p->lock, &ts);
}

static void free_pool(cpool__pool_t *p) {
    for (uint32_t s = 0; s < MAX_JOBS; s++) cpool__job_destroy(p->jobs[s]);
    cpool__region_destroy(&p->region);
    cpool__arena_fini(&p->arena);
    cpool__capture_free(p);
    cpool__spawn_fini(p);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
    free(p->w);
    free(p);
}

/* 0 when the options suit their start method. Threads cannot be stopped from outside
 * or measured apart from the process: nothing that would need it is accepted. */
static int check_start_method(const cpool_options_t *o) {
    switch (o->start_method) {
    case CPOOL_START_FORK:
    case CPOOL_START_SPAWN:
        return 0;
    case CPOOL_START_THREADS:
        if (o->task_timeout_ns || o->init_timeout_ns || o->exit_timeout_ns || o->kill_grace_ns ||
            o->max_memory_growth_bytes || (o->flags & CPOOL_OPTION_CAPTURE_OUTPUT))
            return CPOOL_E_START_METHOD;
        return 0;
    default:
        return -EINVAL;
    }
}

/* Writes a named hook entry (empty for NULL or ""). Returns 0 or -ENAMETOOLONG. */
static int set_named_hook(cpool__fn_shared_t *s, const char *name) {
    memset(s, 0, sizeof *s);
    if (!name) return 0;
    if (strnlen(name, sizeof s->name) == sizeof s->name) return -ENAMETOOLONG;
    strcpy(s->name, name);
    s->kind = FN_KIND_DEFINED_HOOK;
    return 0;
}

/* What every worker reads when it starts (region.h). Returns 0 or -ENAMETOOLONG. */
static int write_settings(cpool__pool_t *p) {
    const cpool_options_t *o = &p->opts;
    cpool__worker_settings_t *s = &p->region.header->settings;
    s->start_method = o->start_method;
    s->flags = o->flags;
    s->spin_ns = o->spin_ns;
    s->max_tasks_per_worker = o->max_tasks_per_worker;
    s->max_memory_growth_bytes = o->max_memory_growth_bytes;
    const cpool_worker_hook_t hooks[2] = {o->worker_init, o->worker_exit};
    for (int i = HOOK_INIT; i <= HOOK_EXIT; i++) {
        if (!hooks[i]) continue;
        cpool__fn_shared_t *e = &s->hooks[i];
        e->kind = FN_KIND_HOOK;
        e->fn_addr = (uint64_t)(uintptr_t)hooks[i];
        e->ctx = (uint64_t)(uintptr_t)o->hook_ctx; /* passed as it is */
        cpool__locate(e, (void *)hooks[i]);
    }
    int rc = set_named_hook(&s->hooks[HOOK_INIT_NAMED], o->worker_init_name);
    return rc ? rc : set_named_hook(&s->hooks[HOOK_EXIT_NAMED], o->worker_exit_name);
}

int cpool_create(const cpool_options_t *options, cpool_pool_t **out) {
    if (cpool__spawn_pending()) {
        /* This process was spawned as a worker and its main() went on to make a pool:
         * stop here rather than start workers of its own, and again, and again. */
        fprintf(stderr, "cpool: this process was started as a pool's worker, but its main() "
                        "created a pool before calling cpool_serve_if_spawned()\n");
        _exit(EXIT_SPAWN_FAILED);
    }
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
    if (o.workers > MAX_WORKERS) return -EINVAL;
    if (o.flags & ~(uint32_t)(CPOOL_OPTION_INSIGHTS | CPOOL_OPTION_CAPTURE_OUTPUT)) return -EINVAL;
    if ((o.flags & CPOOL_OPTION_CAPTURE_OUTPUT) && !o.on_output) return -EINVAL;
    if (o.ring_slots < 2 || o.ring_slots > 65536 || (o.ring_slots & (o.ring_slots - 1))) return -EINVAL;
    if (o.arena_bytes < MIN_ARENA_BYTES || o.arena_bytes > (1ull << 40)) return -EINVAL;
    /* Options from an older caller (a smaller struct_bytes) have no output sizes. */
    if (o.output_bytes == 0) o.output_bytes = DEFAULT_OUTPUT_BYTES;
    if (o.output_bytes < MIN_OUTPUT_BYTES || o.output_bytes > (1ull << 32)) return -EINVAL;
    if (o.hook_output_bytes == 0) o.hook_output_bytes = DEFAULT_HOOK_OUTPUT_BYTES;
    if (o.hook_output_bytes > (1ull << 32)) return -EINVAL;
    int rc = check_start_method(&o);
    if (rc) return rc;

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
    rc = p->w ? 0 : -ENOMEM;
    if (!rc) rc = cpool__region_create(&p->region, o.workers, o.ring_slots, o.arena_bytes,
                                         o.output_bytes, o.hook_output_bytes);
    if (!rc) rc = write_settings(p);
    if (!rc) rc = cpool__arena_init(&p->arena, p->region.arena_bytes);
    if (!rc) rc = cpool__capture_init(p);
    if (!rc && o.start_method == CPOOL_START_SPAWN) rc = cpool__spawn_init(p, o.executable);
    if (rc) {
        free_pool(p);
        return rc;
    }
    cpool__registry_init(&p->registry, &p->region);
    for (uint32_t i = 0; i < MAX_JOBS; i++) p->free_slots[i] = MAX_JOBS - 1 - i;
    p->free_count = MAX_JOBS;
    for (uint32_t w = 0; w < o.workers; w++) p->w[w].pidfd = -1;
    cpool_pool_t *h;
    if ((rc = cpool__pool_publish(p, &h)) != 0) {
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
    if (p->state == POOL_OPEN) p->state = POOL_CLOSED;
    pthread_mutex_unlock(&p->lock);
    cpool__pool_leave(p);
    return 0;
}

/* Locks held: p->lock. */
static void terminate_locked(cpool__pool_t *p) {
    if (p->state == POOL_TERMINATED) return;
    p->state = POOL_TERMINATED;
    cpool__fail_all_jobs(p, CPOOL_E_CANCELLED);
    for (uint32_t w = 0; w < p->workers; w++) {
        atomic_store(&p->region.ctl[w].to_worker.stop, STOP_NOW);
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
    for (uint32_t s = 0; s < MAX_JOBS; s++)
        if (p->jobs[s] && !atomic_load(&p->jobs[s]->ended)) return 0;
    return 1;
}

static int workers_gone(const cpool__pool_t *p) {
    for (uint32_t w = 0; w < p->workers; w++)
        if (p->w[w].pid) return 0;
    return 1;
}

/* No process in any slot and none about to be forked: a replacement due or in flight
 * keeps `respawn` set until spawn publishes its pid (or the supervisor drops it), except
 * in a terminated or broken pool, which forks none. Locks held: p->lock. */
static int workers_settled(const cpool__pool_t *p) {
    const int forks = p->state != POOL_TERMINATED && !p->broken;
    for (uint32_t w = 0; w < p->workers; w++)
        if (p->w[w].pid || (forks && p->w[w].respawn)) return 0;
    return 1;
}

static int jobs_ended(void *arg) {
    cpool__pool_t *p = arg;
    pthread_mutex_lock(&p->lock);
    const int done = all_jobs_ended(p);
    pthread_mutex_unlock(&p->lock);
    return done;
}

/* Waits for every job to end, then for every worker to leave. Locks held: none. */
static int join_pool(cpool__pool_t *p, uint64_t timeout_ns) {
    const uint64_t deadline = timeout_ns ? cpool__now_ns() + timeout_ns : 0;
    cpool__header_t *h = p->region.header;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        if (p->state == POOL_OPEN) {
            pthread_mutex_unlock(&p->lock);
            return -EINVAL;
        }
        int changed = cpool__progress(p);
        int done = all_jobs_ended(p);
        pthread_mutex_unlock(&p->lock);
        if (changed) cpool__wake_waiters(p);
        if (done) break;
        if (deadline && cpool__now_ns() >= deadline) return -ETIMEDOUT;
        /* A completion wakes this thread only when it ends a job; look every ms too. */
        cpool__sleep_unless(&h->parent_sleepers, &h->results_seq, 1000000u, jobs_ended, p);
    }
    pthread_mutex_lock(&p->lock);
    for (uint32_t w = 0; w < p->workers; w++) {
        cpool__worker_ctl_t *c = &p->region.ctl[w];
        if (!atomic_load(&c->to_worker.stop)) atomic_store(&c->to_worker.stop, STOP_WHEN_DRAINED);
        cpool__wake(&c->to_worker.wake_seq);
    }
    pthread_mutex_unlock(&p->lock);
    cpool__supervisor_poke(p); /* to settle replacements that are due */
    pthread_mutex_lock(&p->lock);
    int rc = 0;
    while (!workers_settled(p) && rc == 0) {
        if (deadline && cpool__now_ns() >= deadline) rc = -ETIMEDOUT;
        else cpool__pool_wait_changed(p, deadline ? deadline : cpool__now_ns() + 100000000u);
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
    if (p->state != POOL_OPEN) rc = CPOOL_E_CLOSED;
    if (!rc) {
        p->paused = 1;
        for (uint32_t w = 0; w < p->workers; w++) {
            cpool__worker_ctl_t *c = &p->region.ctl[w];
            p->w[w].respawn = 0;
            atomic_store(&c->to_worker.stop, STOP_WHEN_DRAINED);
            cpool__wake(&c->to_worker.wake_seq);
        }
        while (!workers_gone(p) && rc == 0) {
            if (deadline && cpool__now_ns() >= deadline) rc = -ETIMEDOUT;
            else cpool__pool_wait_changed(p, deadline ? deadline : cpool__now_ns() + 100000000u);
        }
    }
    pthread_mutex_unlock(&p->lock);
    cpool__pool_leave(p);
    return rc;
}

/* 1 while a slot waits for its process, or its process for the end of its init hook.
 * Locks held: p->lock. */
static int starting(const cpool__pool_t *p) {
    for (uint32_t w = 0; w < p->workers; w++)
        if (p->w[w].respawn || (p->w[w].pid && !atomic_load(&p->region.ctl[w].state.init_ok)))
            return 1;
    return 0;
}

/* Sleeps until a worker says its init hook is done (it wakes the parent's waiters),
 * the supervisor reports a change, or 1 ms passed. Locks held: p->lock, released while
 * asleep. */
static int started_all(void *arg) {
    cpool__pool_t *p = arg;
    pthread_mutex_lock(&p->lock);
    const int done = !starting(p);
    pthread_mutex_unlock(&p->lock);
    return done;
}

static void wait_for_start(cpool__pool_t *p) {
    cpool__header_t *h = p->region.header;
    pthread_mutex_unlock(&p->lock);
    cpool__sleep_unless(&h->parent_sleepers, &h->results_seq, 1000000u, started_all, p);
    pthread_mutex_lock(&p->lock);
}

int cpool_start_workers(cpool_pool_t *h) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    pthread_mutex_lock(&p->lock);
    if (p->state != POOL_OPEN) rc = CPOOL_E_CLOSED;
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
         * supervisor then forks another or breaks the pool). */
        while (starting(p) && !p->broken && p->state == POOL_OPEN && !p->start_error)
            wait_for_start(p);
        rc = p->broken ? p->broken : p->state != POOL_OPEN ? CPOOL_E_CLOSED : p->start_error;
        pthread_mutex_unlock(&p->lock);
    }
    cpool__pool_leave(p);
    return rc;
}

void cpool_destroy(cpool_pool_t *h) {
    cpool__pool_t *p = h ? cpool__pool_withdraw(h) : NULL;
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    if (!(p->state != POOL_OPEN && workers_gone(p) && all_jobs_ended(p))) terminate_locked(p);
    pthread_mutex_unlock(&p->lock);
    cpool__wake_waiters(p);
    cpool__supervisor_poke(p);
    /* Calls in progress (a map waiting for its job) see their job end and leave. */
    pthread_mutex_lock(&p->lock);
    while (p->active_calls) cpool__pool_wait_changed(p, cpool__now_ns() + 10000000u);
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

/* ------------------------------------------------------------ per-call hooks */

int cpool_set_worker_hooks(cpool_pool_t *h, const char *init_name, const char *exit_name) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    pthread_mutex_lock(&p->lock);
    if (p->state != POOL_OPEN) rc = CPOOL_E_CLOSED;
    else if (!workers_settled(p)) rc = -EBUSY; /* a worker would read them half written */
    else {
        cpool__fn_shared_t *hooks = p->region.header->settings.hooks;
        cpool__fn_shared_t init, exit;
        rc = set_named_hook(&init, init_name && init_name[0] ? init_name : NULL);
        if (!rc) rc = set_named_hook(&exit, exit_name && exit_name[0] ? exit_name : NULL);
        if (!rc) {
            hooks[HOOK_INIT_NAMED] = init;
            hooks[HOOK_EXIT_NAMED] = exit;
        }
    }
    pthread_mutex_unlock(&p->lock);
    cpool__pool_leave(p);
    return rc;
}

int cpool_take_exit_outputs(cpool_pool_t *h, cpool_exit_output_fn_t fn, void *ctx) {
    if (!fn) return -EINVAL;
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    int taken = 0;
    pthread_mutex_lock(&p->lock);
    for (uint32_t w = 0; w < p->workers; w++) {
        cpool__hook_outputs_t *room = cpool__hook_outputs(&p->region, w);
        const unsigned char *bytes = (const unsigned char *)(room + 1);
        const uint64_t used = atomic_load_explicit(&room->used, memory_order_acquire);
        uint64_t at = atomic_load_explicit(&room->taken, memory_order_relaxed);
        while (at + sizeof(uint64_t) <= used) {
            uint64_t n;
            memcpy(&n, bytes + at, sizeof n);
            if (n > used - at - sizeof n) break; /* cannot be: a record is published whole */
            fn(w, bytes + at + sizeof n, (size_t)n, ctx);
            taken++;
            at += sizeof n + ((n + 7) & ~(uint64_t)7);
        }
        atomic_store_explicit(&room->taken, at, memory_order_relaxed);
        /* No process of the slot can be writing: start its room again. */
        if (!p->w[w].pid && !p->w[w].respawn) {
            atomic_store_explicit(&room->used, 0, memory_order_relaxed);
            atomic_store_explicit(&room->taken, 0, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&p->lock);
    cpool__pool_leave(p);
    return taken;
}
