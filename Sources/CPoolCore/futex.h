/* Cross-process futex waiting and the adaptive wait policy (spin -> yield -> sleep). */
#ifndef CPOOL_FUTEX_H
#define CPOOL_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>

/* Sleeps while *word == expected, at most timeout_ns (0 = no limit). Shared (not
 * FUTEX_PRIVATE) because the word lives in memory mapped by several processes.
 * Returns 0 when woken or the value differed, -ETIMEDOUT, or -EINTR. */
int cpool__futex_wait(_Atomic uint32_t *word, uint32_t expected, uint64_t timeout_ns);

/* Wakes every process sleeping on word. */
void cpool__futex_wake_all(_Atomic uint32_t *word);

/* One side of a sleep handshake: the other side sets *sleepers (a flag or a count)
 * before it re-checks its condition and sleeps on *seq. Our store that made the
 * condition true, the fence, then this load of *sleepers, form a Dekker pair with
 * its store and re-check, so one of us always sees the other. Wakes the sleepers
 * (bumping *seq so a sleeper that has not slept yet does not) and returns 1, or
 * returns 0 when nobody sleeps. */
static inline int cpool__wake_if_sleeping(_Atomic uint32_t *sleepers, _Atomic uint32_t *seq) {
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(sleepers, memory_order_relaxed)) return 0;
    atomic_fetch_add_explicit(seq, 1, memory_order_release);
    cpool__futex_wake_all(seq);
    return 1;
}

/* The sleeping side of that handshake: announces itself in *sleepers, then, unless
 * ready(arg) — asked after the announcement and the fence, so whatever a waker did
 * before it could see the announcement is seen here — sleeps on *seq for at most
 * timeout_ns (0: no limit). Returns 1 when ready, else what the futex wait returned
 * (0 when woken, -ETIMEDOUT, -EINTR). */
int cpool__sleep_unless(_Atomic uint32_t *sleepers, _Atomic uint32_t *seq, uint64_t timeout_ns,
                        int (*ready)(void *), void *arg);

/* Wakes whoever sleeps on *seq, unconditionally (for rare events: stop requests). */
static inline void cpool__wake(_Atomic uint32_t *seq) {
    atomic_fetch_add_explicit(seq, 1, memory_order_release);
    cpool__futex_wake_all(seq);
}

/* Monotonic clock in nanoseconds. */
uint64_t cpool__now_ns(void);

/* The adaptive wait. A waiter calls cpool__backoff each time its condition is still
 * false. It returns 1 while the caller should look again (after a pause or a yield),
 * and 0 once the spin and yield windows are over and the caller should sleep on a
 * futex. Spin first: a round trip through shared memory costs ~0.1 us when both sides
 * spin, a futex wake-up ~25-50 us on these VMs. Yield next: pure spinning collapsed
 * 100x when processes outnumbered cores, spin-then-yield did not. */
typedef struct cpool__backoff {
    uint64_t started_ns;
    uint32_t rounds;
    uint32_t yielding;
} cpool__backoff_t;

void cpool__backoff_start(cpool__backoff_t *b);
int cpool__backoff(cpool__backoff_t *b, uint64_t spin_ns);

static inline void cpool__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
