/* The worker: wait for a task, run it, publish its completion; repeat until told to
 * stop or the lifespan is reached. One loop for every start method: a forked or
 * spawned process (cpool__worker_main) or a thread of the parent (cpool__worker_thread).
 * It is plain synchronous code with no locks shared with the parent; everything it
 * knows comes from the shared region (its settings: region.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "futex.h"
#include "output.h"
#include "ring.h"
#include "supervisor.h"

_Thread_local int cpool__worker_slot = -1;

int cpool_worker_id(void) { return cpool__worker_slot; }

/* Where cpool_hook_output writes: set while this thread runs an exit hook. */
static _Thread_local struct {
    cpool__hook_outputs_t *room;
    unsigned char *bytes;
    uint64_t capacity;
    uint64_t mark; /* where this hook's value starts */
} hook_writer;

/* How long a sleeping worker waits before it checks that its parent still lives.
 * PR_SET_PDEATHSIG does the real work; this only backs it up. */
#define PARENT_CHECK_NS 1000000000ull

/* A slice (the items claimed at once from a task) is about this long by the last
 * measure of its function, so that the parent can take back the rest of a task
 * that turns out slow, while claiming costs one compare-and-swap per slice. */
#define SLICE_NS 100000.0

typedef struct worker_ctx {
    cpool__pool_t *pool;
    cpool__region_t *r;
    const cpool__worker_settings_t *settings;
    cpool__worker_ctl_t *ctl;
    cpool__task_slot_t *tasks;
    cpool__completion_t *results;
    uint32_t slot, capacity;
    pid_t parent;                      /* 0 on a thread: no parent to outlive */
    int insights;                      /* CPOOL_OPTION_INSIGHTS: time every item */
    double ns_per_item[MAX_FUNCTIONS]; /* last measure, per function; 0: none yet */
} worker_ctx_t;

/* A process leaves with status, saying so first in shared memory (see `leaving`).
 * What the tasks printed and did not end with a newline goes out first. */
static _Noreturn void leave(cpool__worker_ctl_t *ctl, int status) {
    fflush(stdout);
    fflush(stderr);
    atomic_store_explicit(&ctl->state.leaving, (uint32_t)status + 1, memory_order_release);
    _exit(status);
}

/* (The streams' locks need no care: glibc's fork resets them in the child.)
 * The child has a copy of whatever the parent had buffered in stdout and not yet
 * written: drop it (the parent writes it), or the first flush here would write it a
 * second time. Then make stdout line-buffered whatever it is (a pipe or a file would
 * otherwise buffer until exit, and a worker that is killed never exits cleanly): a
 * task's line reaches the parent's stream when it ends, in one write. */
static void prepare_stdio(void) {
    __fpurge(stdout);
    __fpurge(stderr);
    setvbuf(stdout, NULL, _IOLBF, BUFSIZ);
}

static void add_time(_Atomic uint64_t *total, uint64_t ns) {
    atomic_store_explicit(total, atomic_load_explicit(total, memory_order_relaxed) + ns,
                          memory_order_relaxed);
}

/* Enters an item among the slot's slowest when it is (insights). Each entry changes
 * under its sequence lock (region.h), slowest first; the parent later finds out which
 * item of its job it was (cpool__resolve_slowest). */
static void note_item_time(const worker_ctx_t *w, const cpool__task_t *t, uint32_t item,
                           uint64_t ns) {
    cpool__insights_t *in = &w->ctl->insights;
    const uint64_t id = atomic_load_explicit(&in->items_timed, memory_order_relaxed);
    if (ns <= in->slowest[SLOWEST_ITEMS - 1].ns) return;
    int at = SLOWEST_ITEMS - 1;
    while (at > 0 && ns > in->slowest[at - 1].ns) at--;
    for (int i = SLOWEST_ITEMS - 1; i >= at; i--) {
        cpool__slow_item_t *e = &in->slowest[i];
        const uint32_t seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
        atomic_store_explicit(&e->seq, seq + 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
        if (i > at) {
            const cpool__slow_item_t *above = &in->slowest[i - 1];
            e->fn = above->fn; e->ns = above->ns; e->id = above->id;
            e->job_slot = above->job_slot; e->job_gen = above->job_gen;
            e->chunk = above->chunk; e->serial = above->serial; e->item = above->item;
        } else {
            e->fn = t->fn; e->ns = ns; e->id = id;
            e->job_slot = t->job_slot; e->job_gen = t->job_gen;
            e->chunk = t->chunk; e->serial = t->serial; e->item = item;
        }
        atomic_store_explicit(&e->seq, seq + 2, memory_order_release);
    }
}

static void check_parent(const worker_ctx_t *w) {
    if (w->parent && getppid() != w->parent) leave(w->ctl, 0);
}

/* 1 when this worker's task ring holds half its capacity or less: room the parent can
 * fill in one go. */
static int refill_due(const worker_ctx_t *w) {
    const uint64_t queued = atomic_load_explicit(&w->ctl->to_worker.task_head, memory_order_relaxed) -
                            atomic_load_explicit(&w->ctl->from_worker.task_tail, memory_order_relaxed);
    return queued <= w->capacity / 2;
}

/* Reports items [first, first+count) of task t. Waits while the result ring is full:
 * the parent drains it whenever it waits, so this is rare and short. */
static void publish(const worker_ctx_t *w, const cpool__task_t *t, uint32_t first,
                    uint32_t count, int code, int detail) {
    if (count == 0) return;
    uint64_t pos;
    while ((pos = cpool__ring_reserve(&w->ctl->from_worker.res_head,
                                      &w->ctl->to_worker.res_tail, w->capacity)) == UINT64_MAX) {
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
        check_parent(w);
    }
    cpool__completion_t *c = &w->results[cpool__ring_index(pos, w->capacity)];
    c->job_slot = t->job_slot;
    c->job_gen = t->job_gen;
    c->chunk = t->chunk;
    c->code = code;
    c->first = first;
    c->count = count;
    c->detail = detail;
    c->serial = t->serial;
    cpool__ring_publish(&w->ctl->from_worker.res_head, pos);
    /* Wake a sleeping parent only when it has something to do: the job has ended, a
     * job waits for room to dispatch and this worker's ring has drained to half, or
     * the result ring is filling up. (And when this worker runs out of tasks: see
     * cpool__worker_main.) Waking it for every completion would let its spin compete
     * with the workers for the cores. */
    const int job_ended = (t->flags & TASK_WHOLE_JOB) ||
                          cpool__job_left_sub(&w->r->job_left[t->job_slot % MAX_JOBS], t->job_gen, count);
    const uint64_t unread = pos + 1 - atomic_load_explicit(&w->ctl->to_worker.res_tail, memory_order_relaxed);
    if (job_ended || unread >= w->capacity / 2 ||
        (atomic_load_explicit(&w->r->header->jobs_waiting, memory_order_relaxed) && refill_due(w)))
        cpool__wake_waiters(w->pool);
}

/* A task is queued, or the worker is told to stop. */
static int has_work(void *arg) {
    cpool__worker_ctl_t *ctl = arg;
    return cpool__ring_peek(&ctl->to_worker.task_head, &ctl->from_worker.task_tail) != UINT64_MAX ||
           atomic_load_explicit(&ctl->to_worker.stop, memory_order_acquire);
}

/* Waits until the task ring holds a task (returns its position) or the worker is
 * told to stop (returns UINT64_MAX). */
static uint64_t wait_for_task(const worker_ctx_t *w) {
    cpool__worker_ctl_t *ctl = w->ctl;
    cpool__backoff_t b;
    int started = 0;
    for (;;) {
        uint64_t pos = cpool__ring_peek(&ctl->to_worker.task_head, &ctl->from_worker.task_tail);
        uint32_t stop = atomic_load_explicit(&ctl->to_worker.stop, memory_order_acquire);
        if (stop == STOP_NOW) return UINT64_MAX;
        if (pos != UINT64_MAX) return pos;
        if (stop) return UINT64_MAX;
        if (!started) {
            cpool__backoff_start(&b);
            started = 1;
        }
        if (cpool__backoff(&b, w->settings->spin_ns)) continue;
        if (cpool__sleep_unless(&ctl->from_worker.sleeping, &ctl->to_worker.wake_seq, PARENT_CHECK_NS,
                                has_work, ctl) == -ETIMEDOUT)
            check_parent(w);
        started = 0;
    }
}

/* wait_for_task, timed for the insights. */
static uint64_t next_task(const worker_ctx_t *w) {
    if (!w->insights) return wait_for_task(w);
    const uint64_t t0 = cpool__now_ns();
    const uint64_t pos = wait_for_task(w);
    add_time(&w->ctl->insights.waiting_ns, cpool__now_ns() - t0);
    return pos;
}

/* Bytes that items [0, count) with this stride and item size cover. */
static int extent_ok(const cpool__region_t *r, uint64_t off, uint32_t stride, uint32_t count,
                     uint32_t item_bytes) {
    if (count == 0) return 1;
    if (stride < item_bytes) return 0;
    uint64_t span = (uint64_t)(count - 1) * stride + item_bytes;
    return cpool__arena_contains(r, off, span);
}

static int job_cancelled(const worker_ctx_t *w, const cpool__task_t *t) {
    return atomic_load_explicit(&w->r->cancelled[t->job_slot % MAX_JOBS], memory_order_acquire) == t->job_gen;
}

/* Why the task cannot run here (its job cancelled, its function unknown, its extents
 * outside the arena), or 0. */
static int task_error(const worker_ctx_t *w, const cpool__task_t *t, const cpool__fn_local_t **f) {
    int err = 0;
    if (job_cancelled(w, t)) return CPOOL_E_CANCELLED;
    if ((*f = cpool__registry_get(&w->pool->registry, t->fn, &err)) == NULL) return err;
    const int bytes = (*f)->kind == FN_KIND_BYTES;
    if (!extent_ok(w->r, t->in_off, t->in_stride, t->count, bytes ? t->in_stride : (*f)->in_bytes) ||
        !extent_ok(w->r, t->out_off, t->out_stride, t->count, bytes ? t->out_stride : (*f)->out_bytes))
        return -EFAULT;
    return 0;
}

/* Moves the slot's start past n items that have been published, so that it keeps
 * describing exactly what is left. cur_item goes to 0 first: a death in between then
 * counts no item twice (see cpool__settle_interrupted_task). */
static void advance(const worker_ctx_t *w, cpool__task_slot_t *slot, cpool__task_t *t, uint32_t n) {
    atomic_store_explicit(&w->ctl->state.cur_item, 0, memory_order_release);
    t->first += n;
    t->count -= n;
    t->in_off += (uint64_t)n * t->in_stride;
    t->out_off += (uint64_t)n * t->out_stride;
    slot->task = *t;
    atomic_thread_fence(memory_order_release);
}

/* Runs n claimed items from the slot's start and publishes them; an item that fails
 * is published alone and the run goes on after it. */
static void run_slice(const worker_ctx_t *w, cpool__task_slot_t *slot, cpool__task_t *t,
                      const cpool__fn_local_t *f, uint32_t n) {
    cpool__worker_ctl_t *ctl = w->ctl;
    while (n > 0) {
        atomic_store_explicit(&ctl->state.phase, PHASE_RUNNING, memory_order_release);
        cpool__writer.task = t;
        cpool__writer.slice_first = t->first;
        int64_t detail = 0;
        const uint64_t t0 = w->insights ? cpool__now_ns() : 0;
        int rc = cpool__fn_run(f, w->r->arena + t->in_off, t->in_stride, w->r->arena + t->out_off,
                               t->out_stride, n, &ctl->state.cur_item, &detail);
        cpool__writer.task = NULL;
        if (w->insights) { /* before publishing: the parent matches the entry then */
            const uint64_t ns = cpool__now_ns() - t0;
            note_item_time(w, t, t->first, ns);
            add_time(&ctl->insights.working_ns, ns);
            add_time(&ctl->insights.items_timed, n);
        }
        /* Items [0, k) ran well; item k failed (k == n: none did). */
        uint32_t k = n;
        if (rc != 0) {
            k = (uint32_t)atomic_load_explicit(&ctl->state.cur_item, memory_order_relaxed);
            if (k >= n) k = n - 1; /* a batch function that misreported */
        }
        atomic_store_explicit(&ctl->state.cur_item, k, memory_order_relaxed);
        atomic_store_explicit(&ctl->state.phase, PHASE_PUBLISHING, memory_order_release);
        /* Count before publishing, so a caller that sees its results also sees them
         * counted in the statistics. */
        atomic_fetch_add_explicit(&ctl->state.items_done, k + (rc != 0), memory_order_relaxed);
        publish(w, t, t->first, k, 0, 0);
        if (rc != 0) publish(w, t, t->first + k, 1, rc, (int)detail);
        const uint32_t ran = k + (rc != 0);
        advance(w, slot, t, ran);
        n -= ran;
    }
}

/* Items to claim next: about SLICE_NS of work, one when the function is not measured. */
static uint32_t slice_items(const worker_ctx_t *w, uint32_t fn) {
    if (w->insights) return 1; /* every item timed alone */
    const double per = w->ns_per_item[fn % MAX_FUNCTIONS];
    if (per <= 0) return 1;
    const double n = SLICE_NS / per;
    return n >= (double)UINT32_MAX ? UINT32_MAX : n < 1 ? 1 : (uint32_t)n;
}

static void measure(worker_ctx_t *w, uint32_t fn, uint64_t ns, uint32_t n) {
    const double per = (double)ns / n + 0.01; /* never 0: 0 means "not measured" */
    double *m = &w->ns_per_item[fn % MAX_FUNCTIONS];
    *m = *m > 0 ? (*m + per) / 2 : per;
}

/* A forked process has none of the shared arena in its page tables (the kernel does
 * not copy them for shared mappings), so its first write to each page faults. A read
 * fault maps up to 16 pages at once (fault-around), so reading one byte per 64 KiB of
 * a task's extents first costs 1/16 of the faults: the first 1M-item map on fresh
 * workers went from ~4 ms to ~1.5 ms. On pages already mapped it is a few loads. */
#define MAP_IN_STEP (64u << 10)

static void map_in(const worker_ctx_t *w, uint64_t off, uint64_t bytes) {
    if (bytes < MAP_IN_STEP) return;
    const volatile unsigned char *a = w->r->arena + off;
    unsigned char sink = 0;
    for (uint64_t o = 0; o < bytes; o += MAP_IN_STEP) sink ^= a[o];
    (void)sink;
}

/* Runs the task at position pos of the ring, a slice at a time. The slot keeps
 * describing what is left to run, and cur_item/phase say where in it the worker is,
 * so that the supervisor can tell exactly which items ended if this process dies at
 * any instruction. The parent may take back the unclaimed part at any time. */
static void run_task(worker_ctx_t *w, uint64_t pos) {
    cpool__worker_ctl_t *ctl = w->ctl;
    const uint32_t index = cpool__ring_index(pos, w->capacity);
    cpool__task_slot_t *slot = &w->tasks[index];
    _Atomic uint64_t *split = &slot->split;
    atomic_store_explicit(&ctl->state.cur_item, 0, memory_order_relaxed);
    atomic_store_explicit(&ctl->state.cur_seq, pos, memory_order_relaxed);
    atomic_store_explicit(&ctl->state.phase, PHASE_PUBLISHING, memory_order_release);

    cpool__task_t t = slot->task;
    const cpool__fn_local_t *f = NULL;
    int err = task_error(w, &t, &f);
    if (!err) { /* extents checked; later slices only shrink them */
        map_in(w, t.in_off, (uint64_t)t.in_stride * t.count);
        map_in(w, t.out_off, (uint64_t)t.out_stride * t.count);
    }
    for (;;) {
        if (!err && job_cancelled(w, &t)) err = CPOOL_E_CANCELLED;
        uint32_t from, to;
        cpool__split_claim(split, err ? UINT32_MAX : slice_items(w, t.fn), &from, &to);
        if (from == to) return;
        if (err) {
            publish(w, &t, from, to - from, err, 0);
            return;
        }
        /* Only tasks of several items are measured: slices of a one-item task are
         * one item whatever the measure, and its round trip is what apply costs. */
        const int timed = t.count > 1;
        const uint64_t t0 = timed ? cpool__now_ns() : 0;
        run_slice(w, slot, &t, f, to - from);
        if (timed) measure(w, t.fn, cpool__now_ns() - t0, to - from);
        if (t.count == 0) return; /* the end can only have come closer */
    }
}

/* Marks the start of a hook, so that the supervisor can time it. */
static void enter_hook_phase(const worker_ctx_t *w, uint32_t phase) {
    atomic_store_explicit(&w->ctl->state.phase_since_ns, cpool__now_ns(), memory_order_relaxed);
    atomic_store_explicit(&w->ctl->state.phase, phase, memory_order_release);
}

/* Resident memory of this process, from /proc/self/statm (read only when a growth
 * limit is set: it costs a few microseconds). 0 when it cannot be read. */
static uint64_t resident_bytes(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    unsigned long long size = 0, resident = 0;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2) return 0;
    return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void reset_signals(void) {
    /* The host (the Swift runtime's crash handler, a test runner) may have installed
     * handlers: a crash in a task must kill the worker at once, not run them. */
    static const int to_default[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTERM,
                                     SIGTRAP, SIGSYS, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof to_default / sizeof to_default[0]; i++)
        sigaction(to_default[i], &sa, NULL);
    /* Ctrl-C reaches the whole process group; the parent decides what it means, and
     * if it dies the workers die with it (PR_SET_PDEATHSIG). */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Runs hook entry `which` of the settings, when set. Returns its result, or 1 when it
 * cannot be found in this process (said on stderr: the user must hear why). */
static int run_hook(const worker_ctx_t *w, int which) {
    const cpool__fn_shared_t *s = &w->settings->hooks[which];
    if (!s->name[0] && !s->fn_addr) return 0;
    cpool__fn_local_t h;
    int rc = cpool__resolve(&h, s, !cpool__spawned_worker);
    if (rc) {
        fprintf(stderr, "cpool worker %u: hook %s: %s\n", w->slot, s->name[0] ? s->name : "(by address)",
                cpool_strerror(rc));
        return 1;
    }
    return ((cpool_worker_hook_t)h.fn)(w->slot, h.ctx);
}

/* The init hooks: the options' one, then the named one. Returns 0 when both succeeded. */
static int run_init_hooks(worker_ctx_t *w) {
    const cpool__fn_shared_t *hooks = w->settings->hooks;
    if (!hooks[HOOK_INIT].fn_addr && !hooks[HOOK_INIT_NAMED].name[0]) return 0;
    cpool__insights_t *in = &w->ctl->insights;
    enter_hook_phase(w, PHASE_INIT);
    const uint64_t t0 = cpool__now_ns();
    if (run_hook(w, HOOK_INIT) != 0 || run_hook(w, HOOK_INIT_NAMED) != 0) return 1;
    add_time(&in->init_ns, cpool__now_ns() - t0);
    atomic_store_explicit(&w->ctl->state.phase, PHASE_IDLE, memory_order_release);
    return 0;
}

/* The exit hooks, in the reverse order, each able to hand the parent a value. */
static void run_exit_hooks(worker_ctx_t *w) {
    const cpool__fn_shared_t *hooks = w->settings->hooks;
    if (!hooks[HOOK_EXIT].fn_addr && !hooks[HOOK_EXIT_NAMED].name[0]) return;
    enter_hook_phase(w, PHASE_EXITING);
    const uint64_t t0 = cpool__now_ns();
    cpool__hook_outputs_t *room = cpool__hook_outputs(w->r, w->slot);
    hook_writer.room = room;
    hook_writer.bytes = (unsigned char *)(room + 1);
    hook_writer.capacity = w->r->hook_output_bytes;
    static const int order[] = {HOOK_EXIT_NAMED, HOOK_EXIT};
    for (int i = 0; i < 2; i++) {
        hook_writer.mark = atomic_load_explicit(&room->used, memory_order_relaxed);
        run_hook(w, order[i]);
    }
    hook_writer.room = NULL;
    add_time(&w->ctl->insights.exit_ns, cpool__now_ns() - t0);
}

int cpool_hook_output(const void *bytes, size_t count) {
    if (!hook_writer.room) return -EPERM;
    if (!bytes && count) return -EINVAL;
    const uint64_t need = sizeof(uint64_t) + ((count + 7) & ~(uint64_t)7);
    if (count > hook_writer.capacity || hook_writer.mark + need > hook_writer.capacity) return -ENOSPC;
    unsigned char *at = hook_writer.bytes + hook_writer.mark;
    const uint64_t n = count;
    memcpy(at, &n, sizeof n);
    if (count) memcpy(at + sizeof n, bytes, count);
    atomic_store_explicit(&hook_writer.room->used, hook_writer.mark + need, memory_order_release);
    return 0;
}

/* The worker's life from its init hooks to its exit hooks; returns its exit status. */
static int serve(worker_ctx_t *w, uint64_t started_ns) {
    cpool__worker_slot = (int)w->slot;
    cpool__writer = (cpool__output_writer_t){
        .pool = w->pool, .ctl = w->ctl, .ring = cpool__output_ring(w->r, w->slot),
        .capacity = w->r->output_bytes, .parent = w->parent,
    };
    cpool__insights_t *in = &w->ctl->insights;
    if (run_init_hooks(w) != 0) return EXIT_INIT_FAILED;
    add_time(&in->startup_ns, cpool__now_ns() - started_ns);
    add_time(&in->processes, 1);
    atomic_store_explicit(&w->ctl->state.phase, PHASE_IDLE, memory_order_release);
    atomic_store_explicit(&w->ctl->state.init_ok, 1, memory_order_release);
    cpool__wake_waiters(w->pool); /* cpool_start_workers waits for this */

    const uint64_t lifespan = w->settings->max_tasks_per_worker;
    const uint64_t growth = w->settings->max_memory_growth_bytes;
    const uint64_t baseline = growth ? resident_bytes() : 0;
    int status = 0;
    for (;;) {
        uint64_t pos = next_task(w);
        if (pos == UINT64_MAX) break;
        run_task(w, pos);
        cpool__ring_release(&w->ctl->from_worker.task_tail, pos);
        atomic_store_explicit(&w->ctl->state.phase, PHASE_IDLE, memory_order_release);
        /* Out of tasks: the parent may have work to give this worker (another's). */
        if (cpool__ring_peek(&w->ctl->to_worker.task_head, &w->ctl->from_worker.task_tail) == UINT64_MAX)
            cpool__wake_waiters(w->pool);
        if (lifespan &&
            atomic_load_explicit(&w->ctl->state.items_done, memory_order_relaxed) >= lifespan)
            break;
        if (growth && resident_bytes() > baseline + growth) {
            status = EXIT_RECYCLED;
            break;
        }
    }
    if (atomic_load_explicit(&w->ctl->to_worker.stop, memory_order_acquire) != STOP_NOW) run_exit_hooks(w);
    return status;
}

static worker_ctx_t context_for(cpool__pool_t *p, uint32_t slot, pid_t parent) {
    const cpool__worker_settings_t *settings = &p->region.header->settings;
    return (worker_ctx_t){
        .pool = p,
        .r = &p->region,
        .settings = settings,
        .ctl = &p->region.ctl[slot],
        .tasks = cpool__task_slot(&p->region, slot, 0),
        .results = cpool__result_ring(&p->region, slot),
        .slot = slot,
        .capacity = p->region.header->ring_slots,
        .parent = parent,
        .insights = (settings->flags & CPOOL_OPTION_INSIGHTS) != 0,
    };
}

_Noreturn void cpool__worker_main(cpool__pool_t *p, uint32_t slot, uint64_t started_ns) {
    worker_ctx_t w = context_for(p, slot, p->parent_pid);
    /* SIGKILL when the starting thread (the supervisor, which lives as long as the
     * pool) or the whole parent dies; then check that the parent did not die before
     * the request took effect. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    check_parent(&w);
    reset_signals();
    prepare_stdio();
    leave(w.ctl, serve(&w, started_ns));
}

int cpool__worker_thread(cpool__pool_t *p, uint32_t slot, uint64_t started_ns) {
    worker_ctx_t w = context_for(p, slot, 0);
    const int status = serve(&w, started_ns);
    atomic_store_explicit(&w.ctl->state.leaving, (uint32_t)status + 1, memory_order_release);
    cpool__worker_slot = -1;
    return status;
}
