/* The supervisor: one long-lived thread per pool that starts every worker (so that
 * PR_SET_PDEATHSIG, which fires when the starting *thread* exits, fires only when
 * the pool or the process goes away), notices deaths through pidfds, settles the
 * dead worker's tasks, starts replacements, and kills tasks that pass their timeout. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture.h"
#include "completion.h"
#include "events.h"
#include "job.h"
#include "spawned.h"
#include "supervisor.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

void cpool__signal_worker(cpool__pool_t *p, uint32_t w, int sig) {
    /* Through the pidfd, never by pid: when the host reaps our children itself, the pid
     * of a dead worker may already belong to an unrelated process. A thread cannot be
     * stopped from outside. */
    if (p->w[w].pidfd >= 0 && !cpool__threads(p)) syscall(SYS_pidfd_send_signal, p->w[w].pidfd, sig, NULL, 0);
}

/* A worker thread's start: it runs the worker loop, then says on its eventfd that it
 * has ended (the supervisor polls it like a pidfd). */
typedef struct thread_start {
    cpool__pool_t *p;
    uint32_t w;
    int done_fd;
    uint64_t started_ns;
} thread_start_t;

static void *worker_thread(void *arg) {
    thread_start_t t = *(thread_start_t *)arg;
    free(arg);
    cpool__worker_thread(t.p, t.w, t.started_ns);
    uint64_t one = 1;
    if (write(t.done_fd, &one, sizeof one) < 0) { /* cannot fail: a fresh eventfd */ }
    return NULL;
}

/* Starts the thread for slot w: *fd becomes its eventfd. Returns 0 or -errno. */
static int start_thread(cpool__pool_t *p, uint32_t w, uint64_t started_ns, int *fd) {
    thread_start_t *t = malloc(sizeof *t);
    if (!t) return -ENOMEM;
    *t = (thread_start_t){p, w, eventfd(0, EFD_CLOEXEC), started_ns};
    if (t->done_fd < 0) {
        free(t);
        return -errno;
    }
    *fd = t->done_fd;
    int rc = pthread_create(&p->w[w].thread, NULL, worker_thread, t);
    if (rc) {
        close(t->done_fd);
        free(t);
    }
    return -rc;
}

/* Starts the process for slot w as the start method says (fork or spawn). Returns 0
 * and *pid and *pidfd, or -errno. Locks held: none (a forked child touches no lock). */
static int start_process(cpool__pool_t *p, uint32_t w, uint64_t started_ns, pid_t *pid_out,
                         int *pidfd) {
    cpool__capture_pipes_t pipes;
    int rc = cpool__capture_prepare(p, &pipes);
    if (rc) return rc;
    pid_t pid;
    if (p->opts.start_method == CPOOL_START_SPAWN) {
        /* Until the process serves, the start-up timeout watches it (see spawned.h). */
        cpool__worker_ctl_t *c = &p->region.ctl[w];
        atomic_store(&c->state.phase_since_ns, started_ns);
        atomic_store(&c->state.phase, PHASE_STARTING);
        rc = cpool__spawn_process(p, w, &pipes, started_ns, &pid);
        if (rc) atomic_store(&c->state.phase, PHASE_IDLE);
    } else {
        pid = fork();
        if (pid < 0) rc = -errno;
        if (pid == 0) {
            cpool__capture_enter_child(&pipes);
            cpool__worker_main(p, w, started_ns);
        }
    }
    if (rc) {
        cpool__capture_abandon(&pipes);
        return rc;
    }
    cpool__capture_adopt(p, w, &pipes);
    int fd = pidfd_open_(pid);
    if (fd < 0) {
        int e = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cpool__capture_finish(p, w);
        return -e;
    }
    *pid_out = pid;
    *pidfd = fd;
    return 0;
}

/* Starts slot w's worker; `replacing` says whether the slot had one before.
 * Locks held: none. */
static int spawn(cpool__pool_t *p, uint32_t w, int replacing) {
    const uint64_t started_ns = cpool__now_ns();
    pid_t pid = getpid();
    int fd = -1;
    int rc = cpool__threads(p) ? start_thread(p, w, started_ns, &fd)
                               : start_process(p, w, started_ns, &pid, &fd);
    if (rc) return rc;
    pthread_mutex_lock(&p->lock);
    p->w[w].pid = pid;
    p->w[w].pidfd = fd;
    p->w[w].respawn = 0;
    p->w[w].seen_valid = 0;
    cpool__note_event(p, CPOOL_EVENT_WORKER_STARTED, (int32_t)w, pid, replacing);
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void cpool__kill_worker(cpool__pool_t *p, uint32_t w, int reason, cpool__position_t at) {
    cpool__worker_t *ws = &p->w[w];
    if (!ws->pid || ws->kill_reason != KILL_NONE || cpool__threads(p)) return;
    ws->kill_reason = reason;
    ws->kill_at = at;
    if (p->opts.kill_grace_ns) {
        /* A worker whose init hook installed a SIGTERM handler may clean up; the
         * supervisor sends SIGKILL when the grace is over. */
        ws->kill_deadline_ns = cpool__now_ns() + p->opts.kill_grace_ns;
        cpool__signal_worker(p, w, SIGTERM);
        cpool__supervisor_poke(p);
    } else {
        cpool__signal_worker(p, w, SIGKILL);
    }
}

/* Kills workers whose current item has run past its timeout. Locks held: p->lock. */
static void watch_timeouts(cpool__pool_t *p, uint64_t now) {
    for (uint32_t w = 0; w < p->workers; w++) {
        cpool__worker_t *ws = &p->w[w];
        cpool__worker_ctl_t *c = &p->region.ctl[w];
        if (ws->pid && ws->kill_deadline_ns && now >= ws->kill_deadline_ns) {
            cpool__signal_worker(p, w, SIGKILL); /* the grace after SIGTERM is over */
            ws->kill_deadline_ns = 0;
        }
        const uint32_t phase = atomic_load(&c->state.phase);
        if (ws->pid && ws->kill_reason == KILL_NONE &&
            (phase == PHASE_INIT || phase == PHASE_EXITING || phase == PHASE_STARTING)) {
            uint64_t limit = phase == PHASE_EXITING ? p->opts.exit_timeout_ns : p->opts.init_timeout_ns;
            if (phase == PHASE_STARTING && !limit) limit = SPAWN_START_TIMEOUT_NS;
            if (limit && now - atomic_load(&c->state.phase_since_ns) >= limit)
                cpool__kill_worker(p, w, KILL_HOOK_TIMEOUT, (cpool__position_t){0, 0, 0});
        }
        if (!ws->pid || ws->kill_reason != KILL_NONE || phase != PHASE_RUNNING) {
            ws->seen_valid = 0;
            continue;
        }
        const cpool__position_t at = cpool__position_of(c);
        if (!ws->seen_valid || !cpool__same_position(ws->seen_at, at)) {
            ws->seen_valid = 1;
            ws->seen_at = at;
            ws->seen_ns = now;
            continue;
        }
        cpool__task_t t;
        cpool_job_t *job = cpool__job_of_task(p, w, at.seq, &t);
        if (!job || !job->timeout_ns || now - ws->seen_ns < job->timeout_ns) continue;
        ws->timeouts++;
        cpool__kill_worker(p, w, KILL_TIMEOUT, at);
    }
}

/* How often to look at running tasks and hooks: an eighth of the shortest timeout (or
 * kill grace) in force, within [1 ms, 100 ms]; -1 (never) when none is in force. */
static uint64_t shorter(uint64_t a, uint64_t b) { return !a ? b : !b ? a : a < b ? a : b; }

static int watch_period_ms(cpool__pool_t *p) {
    uint64_t t = p->opts.task_timeout_ns;
    if (p->custom_timeouts) t = shorter(t, p->min_custom_timeout_ns);
    t = shorter(t, p->opts.init_timeout_ns);
    t = shorter(t, p->opts.exit_timeout_ns);
    for (uint32_t w = 0; w < p->workers; w++) {
        if (p->w[w].kill_deadline_ns) t = shorter(t, p->opts.kill_grace_ns);
        if (p->w[w].pid && atomic_load(&p->region.ctl[w].state.phase) == PHASE_STARTING)
            t = shorter(t, SPAWN_START_TIMEOUT_NS);
    }
    if (!t) return -1;
    uint64_t ms = t / 8 / 1000000u;
    if (ms < 1) ms = 1;
    if (ms > 100) ms = 100;
    return (int)ms;
}

/* Settles every worker whose pidfd polled readable, marking it in died[]. Returns 1
 * when any died. Locks held: p->lock. */
static int collect_deaths(cpool__pool_t *p, const struct pollfd *fds, const uint32_t *slot_of,
                          nfds_t n, unsigned char *died) {
    int changed = 0;
    for (nfds_t i = 1; i < n; i++) {
        if (slot_of[i] == CAPTURE_ENTRY) continue;
        if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
        uint32_t w = slot_of[i];
        if (cpool__threads(p)) { /* its eventfd: the thread has returned */
            pthread_join(p->w[w].thread, NULL);
            cpool__settle_death(p, w, NULL);
            died[w] = 1;
            changed = 1;
            continue;
        }
        /* A readable pidfd means the process has exited. Collect its status; a host
         * that ignores SIGCHLD or reaps every child itself leaves none (ECHILD), and
         * the death is settled all the same. */
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int rc = waitid((idtype_t)P_PIDFD, (id_t)p->w[w].pidfd, &si, WEXITED | WNOHANG);
        if (rc == 0 && si.si_pid == 0) continue; /* not yet a zombie */
        cpool__settle_death(p, w, rc == 0 ? &si : NULL);
        died[w] = 1;
        changed = 1;
    }
    return changed;
}

/* The pool cannot run anything: stop every worker and fail what is left.
 * Locks held: p->lock. */
static void stop_broken_pool(cpool__pool_t *p) {
    for (uint32_t w = 0; w < p->workers; w++) {
        atomic_store(&p->region.ctl[w].to_worker.stop, STOP_NOW);
        if (p->w[w].pid) cpool__signal_worker(p, w, SIGKILL);
        else cpool__flush_ring(p, w, p->broken);
    }
    cpool__fail_all_jobs(p, p->broken);
}

/* The slots due a replacement process, into due[]; returns how many.
 * Locks held: p->lock. */
static uint32_t replacements_due(cpool__pool_t *p, uint32_t *due) {
    uint32_t n = 0;
    if (p->broken || p->state == POOL_TERMINATED) return 0;
    for (uint32_t w = 0; w < p->workers; w++) {
        if (!p->w[w].respawn || p->w[w].pid) continue;
        const cpool__worker_ctl_t *c = &p->region.ctl[w];
        if (p->state != POOL_OPEN &&
            atomic_load(&c->from_worker.task_tail) == atomic_load(&c->to_worker.task_head)) {
            /* Closed, and nothing queued for the slot: a replacement would only be
             * forked to leave (or, during a destroy, be killed). */
            p->w[w].respawn = 0;
            pthread_cond_broadcast(&p->changed); /* a join waits for this */
            continue;
        }
        if (!p->paused && p->state == POOL_OPEN)
            atomic_store(&p->region.ctl[w].to_worker.stop, STOP_NONE); /* after a stop */
        /* Counted before the fork: the new process may run tasks, and its caller see
         * them done, before this thread publishes its pid. */
        p->w[w].restarts++;
        due[n++] = w;
    }
    return n;
}

/* Forks a replacement for slot w. Locks held: none. */
static void replace(cpool__pool_t *p, uint32_t w) {
    int rc = spawn(p, w, 1);
    if (rc == 0) return;
    /* No process to be had (fork failed): the slot stays empty, and whoever waits for
     * it learns why. */
    pthread_mutex_lock(&p->lock);
    p->w[w].restarts--;
    p->w[w].respawn = 0;
    p->start_error = rc;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
}

/* Forks the first workers and tells cpool__supervisor_start how that went. */
static void start_workers(cpool__pool_t *p) {
    int err = 0;
    for (uint32_t w = 0; w < p->workers && !err; w++) err = spawn(p, w, 0);
    pthread_mutex_lock(&p->lock);
    p->start_error = err;
    p->started = 1;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
}

/* The pollfds to watch: the event fd, then each living worker's pidfd (slot_of maps
 * an entry back to its slot), then the pipes of captured output (CAPTURE_ENTRY).
 * Locks held: p->lock. */
static nfds_t watch_list(cpool__pool_t *p, struct pollfd *fds, uint32_t *slot_of) {
    nfds_t n = 0;
    fds[n++] = (struct pollfd){p->event_fd, POLLIN, 0};
    for (uint32_t w = 0; w < p->workers; w++) {
        if (p->w[w].pidfd < 0) continue;
        slot_of[n] = w;
        fds[n++] = (struct pollfd){p->w[w].pidfd, POLLIN, 0};
    }
    return n + cpool__capture_watch(p, fds + n, slot_of + n);
}

static void *supervise(void *arg) {
    cpool__pool_t *p = arg;
    /* Block the signals a host may route to any thread; this thread only polls. */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    start_workers(p);

    enum { WATCHED = 1 + MAX_WORKERS * (1 + CAPTURE_STREAMS) };
    struct pollfd fds[WATCHED];
    uint32_t slot_of[WATCHED];
    unsigned char died[MAX_WORKERS];
    for (;;) {
        cpool__deliver_events(p);
        pthread_mutex_lock(&p->lock);
        const nfds_t n = watch_list(p, fds, slot_of);
        const int period = watch_period_ms(p);
        const int quit = !p->supervisor_running;
        pthread_mutex_unlock(&p->lock);
        if (quit) break;

        if (poll(fds, n, period) < 0 && errno != EINTR) break;
        if (fds[0].revents & POLLIN) {
            uint64_t v;
            if (read(p->event_fd, &v, sizeof v) < 0) { /* nothing: it only wakes us */ }
        }
        /* Output first: what a worker wrote before it died comes before its death. */
        cpool__capture_read(p, fds, slot_of, n);
        memset(died, 0, p->workers);
        pthread_mutex_lock(&p->lock);
        const int changed = collect_deaths(p, fds, slot_of, n, died);
        if (changed && p->broken) stop_broken_pool(p);
        if (period >= 0) watch_timeouts(p, cpool__now_ns());
        if (changed) {
            cpool__progress(p);
            pthread_cond_broadcast(&p->changed);
        }
        uint32_t due[MAX_WORKERS];
        const uint32_t ndue = replacements_due(p, due);
        pthread_mutex_unlock(&p->lock);
        if (changed) cpool__wake_waiters(p);
        for (uint32_t w = 0; w < p->workers; w++)
            if (died[w]) cpool__capture_finish(p, w);
        for (uint32_t i = 0; i < ndue; i++) replace(p, due[i]);
    }
    for (uint32_t w = 0; w < p->workers; w++) cpool__capture_finish(p, w);
    cpool__deliver_events(p);
    return NULL;
}

void cpool__supervisor_poke(cpool__pool_t *p) {
    uint64_t one = 1;
    if (write(p->event_fd, &one, sizeof one) < 0) { /* the counter is saturated: awake anyway */ }
}

int cpool__supervisor_start(cpool__pool_t *p) {
    p->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->event_fd < 0) return -errno;
    p->supervisor_running = 1;
    int rc = pthread_create(&p->supervisor, NULL, supervise, p);
    if (rc) {
        p->supervisor_running = 0;
        close(p->event_fd);
        p->event_fd = -1;
        return -rc;
    }
    pthread_mutex_lock(&p->lock);
    while (!p->started) pthread_cond_wait(&p->changed, &p->lock);
    rc = p->start_error;
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void cpool__supervisor_stop(cpool__pool_t *p) {
    if (p->event_fd < 0) return;
    pthread_mutex_lock(&p->lock);
    int running = p->supervisor_running;
    p->supervisor_running = 0;
    pthread_mutex_unlock(&p->lock);
    if (running) {
        cpool__supervisor_poke(p);
        pthread_join(p->supervisor, NULL);
    }
    close(p->event_fd);
    p->event_fd = -1;
}
