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

#endif
