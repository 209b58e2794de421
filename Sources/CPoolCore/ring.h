/* Bounded single-producer/single-consumer rings over the shared region.
 * Positions only increase (64-bit, they never wrap in practice); slot = position &
 * (capacity - 1), capacity a power of two. The producer alone writes head, the
 * consumer alone writes tail, so a process killed at any instruction never leaves a
 * lock held or a half-claimed slot: a slot becomes visible only when head moves past
 * it (release), and is free again only when tail moves past it (release). */
#ifndef CPOOL_RING_H
#define CPOOL_RING_H

#include <stdatomic.h>
#include <stdint.h>

/* Producer: the position to fill, or UINT64_MAX when the ring is full. */
static inline uint64_t cpool__ring_reserve(_Atomic uint64_t *head, _Atomic uint64_t *tail,
                                           uint32_t capacity) {
    uint64_t h = atomic_load_explicit(head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(tail, memory_order_acquire);
    return (h - t >= capacity) ? UINT64_MAX : h;
}

/* Producer: makes the slot at position visible to the consumer. */
static inline void cpool__ring_publish(_Atomic uint64_t *head, uint64_t position) {
    atomic_store_explicit(head, position + 1, memory_order_release);
}

/* Consumer: the position to read, or UINT64_MAX when the ring is empty. */
static inline uint64_t cpool__ring_peek(_Atomic uint64_t *head, _Atomic uint64_t *tail) {
    uint64_t t = atomic_load_explicit(tail, memory_order_relaxed);
    uint64_t h = atomic_load_explicit(head, memory_order_acquire);
    return (t == h) ? UINT64_MAX : t;
}

/* Consumer: hands the slot at position back to the producer. */
static inline void cpool__ring_release(_Atomic uint64_t *tail, uint64_t position) {
    atomic_store_explicit(tail, position + 1, memory_order_release);
}

static inline uint32_t cpool__ring_index(uint64_t position, uint32_t capacity) {
    return (uint32_t)(position & (capacity - 1));
}

/* A task's split word, one per task-ring slot: end << 32 | claimed, in item indices
 * of the task's chunk. The worker claims items a slice at a time by raising `claimed`
 * toward `end`; the parent takes back the unclaimed items by lowering `end`, never
 * below `claimed`. Both change the word only by compare-and-swap, so each item is
 * either run by the worker that holds the task or taken back, never both; a queued
 * task taken back whole leaves the worker nothing to claim. */
static inline uint64_t cpool__split_make(uint32_t claimed, uint32_t end) {
    return (uint64_t)end << 32 | claimed;
}
static inline uint32_t cpool__split_claimed(uint64_t v) { return (uint32_t)v; }
static inline uint32_t cpool__split_end(uint64_t v) { return (uint32_t)(v >> 32); }

/* Worker: claims up to n more items; [*from, *to) is what it got (empty: none left). */
static inline void cpool__split_claim(_Atomic uint64_t *word, uint32_t n, uint32_t *from,
                                      uint32_t *to) {
    uint64_t v = atomic_load_explicit(word, memory_order_acquire);
    for (;;) {
        const uint32_t c = cpool__split_claimed(v), e = cpool__split_end(v);
        const uint32_t next = (e - c > n) ? c + n : e;
        if (next == c || atomic_compare_exchange_weak_explicit(word, &v, cpool__split_make(next, e),
                                                               memory_order_acq_rel,
                                                               memory_order_acquire)) {
            *from = c;
            *to = next;
            return;
        }
    }
}

/* Parent: takes back the unclaimed items from `cut` on (or from `claimed`, when the
 * worker got past cut); [*from, *to) is what it got (empty: nothing). */
static inline void cpool__split_take(_Atomic uint64_t *word, uint32_t cut, uint32_t *from,
                                     uint32_t *to) {
    uint64_t v = atomic_load_explicit(word, memory_order_acquire);
    for (;;) {
        const uint32_t c = cpool__split_claimed(v), e = cpool__split_end(v);
        const uint32_t at = cut > c ? cut : c;
        if (at >= e) {
            *from = *to = e;
            return;
        }
        if (atomic_compare_exchange_weak_explicit(word, &v, cpool__split_make(c, at),
                                                  memory_order_acq_rel, memory_order_acquire)) {
            *from = at;
            *to = e;
            return;
        }
    }
}

#endif
