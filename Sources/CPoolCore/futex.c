#include "futex.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int cpool__futex_wait(_Atomic uint32_t *word, uint32_t expected, uint64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
        ts.tv_nsec = (long)(timeout_ns % 1000000000u);
        tsp = &ts;
    }
    long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, tsp, NULL, 0);
    if (rc == 0 || errno == EAGAIN) return 0;
    return -errno;
}

void cpool__futex_wake_all(_Atomic uint32_t *word) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
}

int cpool__sleep_unless(_Atomic uint32_t *sleepers, _Atomic uint32_t *seq, uint64_t timeout_ns,
                        int (*ready)(void *), void *arg) {
    const uint32_t s = atomic_load_explicit(seq, memory_order_acquire);
    atomic_fetch_add_explicit(sleepers, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    int rc = ready(arg) ? 1 : cpool__futex_wait(seq, s, timeout_ns);
    atomic_fetch_sub_explicit(sleepers, 1, memory_order_relaxed);
    return rc;
}

uint64_t cpool__now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The yield window after the spin window: long enough that a peer preempted on a
 * busy core gets a time slice, short enough not to burn a core for long when idle. */
#define YIELD_WINDOW_NS 200000u

void cpool__backoff_start(cpool__backoff_t *b) {
    b->started_ns = cpool__now_ns();
    b->rounds = 0;
    b->yielding = 0;
}

int cpool__backoff(cpool__backoff_t *b, uint64_t spin_ns) {
    b->rounds++;
    if (!b->yielding) {
        /* Read the clock only every 64 rounds: a vDSO clock read costs ~20 ns. */
        if ((b->rounds & 63u) != 0 || cpool__now_ns() - b->started_ns < spin_ns) {
            cpool__cpu_relax();
            return 1;
        }
        b->yielding = 1;
    }
    if ((b->rounds & 15u) == 0 &&
        cpool__now_ns() - b->started_ns >= spin_ns + YIELD_WINDOW_NS)
        return 0;
    sched_yield();
    return 1;
}
