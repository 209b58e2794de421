/* The supervisor: one long-lived thread per pool that forks every worker (so that
 * PR_SET_PDEATHSIG, which fires when the forking *thread* exits, fires only when
 * the pool or the process goes away), notices deaths through pidfds, settles the
 * dead worker's tasks, forks replacements, and kills tasks that pass their timeout. */
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

#include "futex.h"
#include "pool.h"
#include "ring.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

void cpool__signal_worker(cpool__pool_t *p, uint32_t w, int sig) {
    /* Through the pidfd, never by pid: when the host reaps our children itself, the pid
     * of a dead worker may already belong to an unrelated process. */
    if (p->w[w].pidfd >= 0) syscall(SYS_pidfd_send_signal, p->w[w].pidfd, sig, NULL, 0);
}

/* Forks the process for slot w. Locks held: none (the child touches no lock). */
static int spawn(cpool__pool_t *p, uint32_t w) {
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid == 0) cpool__worker_main(p, w);
    int fd = pidfd_open_(pid);
    if (fd < 0) {
        int e = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -e;
    }
    pthread_mutex_lock(&p->lock);
    p->w[w].pid = pid;
    p->w[w].pidfd = fd;
    p->w[w].respawn = 0;
    p->w[w].seen_valid = 0;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

/* Ends every task left in w's ring with code (nobody will run them). */
static void flush_ring(cpool__pool_t *p, uint32_t w, int code) {
    cpool__worker_ctl_t *c = &p->region.ctl[w];
    uint64_t tail = atomic_load(&c->from_worker.task_tail);
    const uint64_t head = atomic_load(&c->to_worker.task_head);
    for (; tail != head; tail++) {
        cpool__task_t t;
        cpool_job_t *job = cpool__job_of_task(p, w, tail, &t);
        atomic_store(&c->from_worker.task_tail, tail + 1);
        if (job) cpool__end_items(p, job, t.chunk, t.first, t.count, code, 0, w);
    }
}

/* Settles what the dead process of slot w was doing. Locks held: p->lock.
 * The process is dead, so the parent may act as the consumer of its task ring and
 * rewrite the slot at the tail: each index keeps a single writer at any time. */
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

static void settle_death(cpool__pool_t *p, uint32_t w, const siginfo_t *si) {
    cpool__worker_t *ws = &p->w[w];
    cpool__worker_ctl_t *c = &p->region.ctl[w];
    cpool__progress(p); /* everything it published before dying */

    const ending_t how = ending_of(c, si);
    const int signaled = how.signaled;
    const int status = how.status;
    const int init_ok = atomic_load(&c->state.init_ok);
    const int graceful = how.known && !signaled && status == 0;
    const int recycled = how.known && !signaled && status == CPOOL_EXIT_RECYCLED;
    const int hook_timeout = ws->kill_reason == CPOOL_KILL_HOOK_TIMEOUT;
    const int by_us = (ws->kill_reason != CPOOL_KILL_NONE && !hook_timeout) ||
                      p->state == CPOOL_TERMINATED || atomic_load(&c->to_worker.stop) == 2;
    if (recycled) {
        ws->recycles++;
    } else if (!graceful && !by_us) {
        ws->crashes++;
        if (!init_ok && ++p->init_failures >= CPOOL_MAX_INIT_FAILURES && !p->broken)
            p->broken = CPOOL_E_WORKER_INIT;
    }
    if (init_ok) p->init_failures = 0;

    const uint64_t tail = atomic_load(&c->from_worker.task_tail);
    const uint64_t head = atomic_load(&c->to_worker.task_head);
    const uint32_t phase = atomic_load(&c->state.phase);
    const uint64_t cur_seq = atomic_load(&c->state.cur_seq);
    const uint64_t cur_item = atomic_load(&c->state.cur_item);
    /* A process that died in its init or exit hook was running no task. */
    const int in_task = phase == CPOOL_PHASE_RUNNING || phase == CPOOL_PHASE_PUBLISHING;
    if (tail != head && in_task && cur_seq == tail) {
        cpool__task_t t;
        cpool_job_t *job = cpool__job_of_task(p, w, tail, &t);
        cpool__chunk_t *ch = (job && t.chunk < job->window) ? &job->chunks[t.chunk] : NULL;
        if (ch && ch->in_use) {
            const uint64_t end = (uint64_t)t.first + t.count;
            uint64_t done_end = t.first + (cur_item < t.count ? cur_item : t.count);
            if (ch->reported < done_end)
                cpool__end_items(p, job, t.chunk, ch->reported, (uint32_t)(done_end - ch->reported), 0, 0, w);
            uint64_t rest = done_end;
            if (phase == CPOOL_PHASE_RUNNING && done_end < end && done_end >= ch->reported) {
                const int targeted = ws->kill_reason != CPOOL_KILL_NONE &&
                                     ws->kill_seq == cur_seq && ws->kill_item == cur_item;
                int code = 0, detail = 0;
                if (job->cancelled) {
                    code = CPOOL_E_CANCELLED;
                } else if (targeted && ws->kill_reason == CPOOL_KILL_TIMEOUT) {
                    code = CPOOL_E_TASK_TIMEOUT;
                } else if (ws->kill_reason == CPOOL_KILL_NONE) {
                    code = CPOOL_E_CRASHED;
                    detail = !how.known ? CPOOL_DETAIL_UNKNOWN : signaled ? status : 1000 + status;
                    /* The retry policy: the same item crashing again spends a retry. */
                    uint32_t item = (uint32_t)done_end;
                    if (ch->retry_item != item) {
                        ch->retry_item = item;
                        ch->retries = 0;
                    }
                    if (ch->retries < p->opts.crash_retries) {
                        ch->retries++;
                        code = 0; /* run it again */
                    }
                } /* else: killed for another task's sake, innocent: run it again */
                if (code) {
                    cpool__end_items(p, job, t.chunk, (uint32_t)done_end, 1, code, detail, w);
                    rest = done_end + 1;
                }
            }
            if (ch->in_use && ch->reported > rest) rest = ch->reported;
            if (ch->in_use && rest < end) {
                /* The replacement goes on with the rest of this task. */
                cpool__task_t *slot = &cpool__task_ring(&p->region, w)[cpool__ring_index(tail, p->region.header->ring_slots)];
                uint64_t skip = rest - t.first;
                t.in_off += skip * t.in_stride;
                t.out_off += skip * t.out_stride;
                t.first = (uint32_t)rest;
                t.count = (uint32_t)(end - rest);
                *slot = t;
            } else {
                atomic_store(&c->from_worker.task_tail, tail + 1);
            }
        } else {
            atomic_store(&c->from_worker.task_tail, tail + 1);
        }
    }

    /* Items the process ran before it died in the middle of a run are counted here:
     * it counts a run only when it publishes it (see worker.c). */
    ws->items_before += atomic_load(&c->state.items_done);
    if (in_task && phase == CPOOL_PHASE_RUNNING) ws->items_before += cur_item;
    atomic_store(&c->state.items_done, 0);
    atomic_store(&c->state.phase, CPOOL_PHASE_IDLE);
    atomic_store(&c->state.cur_item, 0);
    atomic_store(&c->state.init_ok, 0);
    atomic_store(&c->state.leaving, 0);
    atomic_store(&c->from_worker.sleeping, 0);
    ws->kill_reason = CPOOL_KILL_NONE;
    ws->kill_deadline_ns = 0;
    ws->pid = 0;
    close(ws->pidfd);
    ws->pidfd = -1;

    const int stopping = atomic_load(&c->to_worker.stop) != 0;
    if (p->broken) {
        flush_ring(p, w, p->broken);
    } else if (p->state == CPOOL_TERMINATED) {
        flush_ring(p, w, CPOOL_E_CANCELLED);
    } else if (p->paused && graceful) {
        /* stopped by cpool_stop_workers: cpool_start_workers forks the next one */
    } else if (stopping && atomic_load(&c->from_worker.task_tail) == atomic_load(&c->to_worker.task_head)) {
        /* left because the pool closed and its ring is empty: no replacement */
    } else {
        ws->respawn = 1;
    }
}

void cpool__kill_worker(cpool__pool_t *p, uint32_t w, int reason, uint64_t seq, uint64_t item) {
    cpool__worker_t *ws = &p->w[w];
    if (!ws->pid || ws->kill_reason != CPOOL_KILL_NONE) return;
    ws->kill_reason = reason;
    ws->kill_seq = seq;
    ws->kill_item = item;
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
        if (ws->pid && ws->kill_reason == CPOOL_KILL_NONE &&
            (phase == CPOOL_PHASE_INIT || phase == CPOOL_PHASE_EXITING)) {
            uint64_t limit = phase == CPOOL_PHASE_INIT ? p->opts.init_timeout_ns : p->opts.exit_timeout_ns;
            if (limit && now - atomic_load(&c->state.phase_since_ns) >= limit)
                cpool__kill_worker(p, w, CPOOL_KILL_HOOK_TIMEOUT, 0, 0);
        }
        if (!ws->pid || ws->kill_reason != CPOOL_KILL_NONE || phase != CPOOL_PHASE_RUNNING) {
            ws->seen_valid = 0;
            continue;
        }
        uint64_t seq = atomic_load(&c->state.cur_seq), item = atomic_load(&c->state.cur_item);
        if (!ws->seen_valid || ws->seen_seq != seq || ws->seen_item != item) {
            ws->seen_valid = 1;
            ws->seen_seq = seq;
            ws->seen_item = item;
            ws->seen_ns = now;
            continue;
        }
        cpool__task_t t;
        cpool_job_t *job = cpool__job_of_task(p, w, seq, &t);
        if (!job || !job->timeout_ns || now - ws->seen_ns < job->timeout_ns) continue;
        ws->timeouts++;
        cpool__kill_worker(p, w, CPOOL_KILL_TIMEOUT, seq, item);
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
    for (uint32_t w = 0; w < p->workers; w++)
        if (p->w[w].kill_deadline_ns) t = shorter(t, p->opts.kill_grace_ns);
    if (!t) return -1;
    uint64_t ms = t / 8 / 1000000u;
    if (ms < 1) ms = 1;
    if (ms > 100) ms = 100;
    return (int)ms;
}

static void *supervise(void *arg) {
    cpool__pool_t *p = arg;
    /* Block the signals a host may route to any thread; this thread only polls. */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);

    int err = 0;
    for (uint32_t w = 0; w < p->workers && !err; w++) err = spawn(p, w);
    pthread_mutex_lock(&p->lock);
    p->start_error = err;
    p->started = 1;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);

    struct pollfd *fds = calloc(p->workers + 1, sizeof *fds);
    uint32_t *slot_of = calloc(p->workers + 1, sizeof *slot_of);
    if (!fds || !slot_of) abort(); /* a few hundred bytes; nothing sensible to do */
    for (;;) {
        pthread_mutex_lock(&p->lock);
        nfds_t n = 0;
        fds[n++] = (struct pollfd){p->event_fd, POLLIN, 0};
        for (uint32_t w = 0; w < p->workers; w++) {
            if (p->w[w].pidfd < 0) continue;
            slot_of[n] = w;
            fds[n++] = (struct pollfd){p->w[w].pidfd, POLLIN, 0};
        }
        int period = watch_period_ms(p);
        int quit = !p->supervisor_running;
        pthread_mutex_unlock(&p->lock);
        if (quit) break;

        int rc = poll(fds, n, period);
        if (rc < 0 && errno != EINTR) break;
        if (fds[0].revents & POLLIN) {
            uint64_t v;
            if (read(p->event_fd, &v, sizeof v) < 0) { /* nothing: it only wakes us */ }
        }
        pthread_mutex_lock(&p->lock);
        int changed = 0;
        for (nfds_t i = 1; i < n; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
            uint32_t w = slot_of[i];
            /* A readable pidfd means the process has exited. Collect its status; a host
             * that ignores SIGCHLD or reaps every child itself leaves none (ECHILD), and
             * the death is settled all the same. */
            siginfo_t si;
            memset(&si, 0, sizeof si);
            int rc = waitid((idtype_t)P_PIDFD, (id_t)p->w[w].pidfd, &si, WEXITED | WNOHANG);
            if (rc == 0 && si.si_pid == 0) continue; /* not yet a zombie */
            settle_death(p, w, rc == 0 ? &si : NULL);
            changed = 1;
        }
        if (changed && p->broken) {
            /* The pool cannot run anything: stop the others and fail what is left. */
            for (uint32_t w = 0; w < p->workers; w++) {
                atomic_store(&p->region.ctl[w].to_worker.stop, 2);
                if (p->w[w].pid) cpool__signal_worker(p, w, SIGKILL);
                else flush_ring(p, w, p->broken);
            }
            cpool__fail_all_jobs(p, p->broken);
        }
        if (period >= 0) watch_timeouts(p, cpool__now_ns());
        if (changed) {
            cpool__progress(p);
            pthread_cond_broadcast(&p->changed);
        }
        uint32_t due[CPOOL_MAX_WORKERS];
        uint32_t ndue = 0;
        for (uint32_t w = 0; w < p->workers; w++)
            if (p->w[w].respawn && !p->broken && p->state != CPOOL_TERMINATED && !p->w[w].pid) {
                if (!p->paused && p->state == CPOOL_OPEN)
                    atomic_store(&p->region.ctl[w].to_worker.stop, 0); /* after a stop */
                due[ndue++] = w;
            }
        pthread_mutex_unlock(&p->lock);
        if (changed) cpool__wake_waiters(p);
        for (uint32_t i = 0; i < ndue; i++) {
            int rc = spawn(p, due[i]);
            pthread_mutex_lock(&p->lock);
            if (rc == 0) {
                p->w[due[i]].restarts++;
            } else {
                /* No process to be had (fork failed): the slot stays empty, and whoever
                 * waits for it learns why. */
                p->w[due[i]].respawn = 0;
                p->start_error = rc;
                pthread_cond_broadcast(&p->changed);
            }
            pthread_mutex_unlock(&p->lock);
        }
    }
    free(fds);
    free(slot_of);
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
