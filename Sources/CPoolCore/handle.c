/* Handles: the table of live pools that turns a call on a destroyed pool into
 * CPOOL_E_CLOSED instead of a use-after-free, the count of calls in progress that
 * cpool_destroy waits for, and function ids that name their pool. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

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

int cpool__pool_publish(cpool__pool_t *p, cpool_pool_t **h) {
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
    p->fn_tag = (++pools_created % FN_TAG_LIMIT) + 1;
    *h = handle_of(slot, live[slot].gen);
    pthread_mutex_unlock(&live_lock);
    return 0;
}

cpool__pool_t *cpool__pool_withdraw(cpool_pool_t *h) {
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
    if (fn < 0 || (uint32_t)fn >> FN_INDEX_BITS != p->fn_tag) return CPOOL_E_UNKNOWN_FUNCTION;
    return (int)((uint32_t)fn & (MAX_FUNCTIONS - 1));
}

cpool_fn_t cpool__fn_id(const cpool__pool_t *p, int index) {
    return index < 0 ? index : (cpool_fn_t)((p->fn_tag << FN_INDEX_BITS) | (uint32_t)index);
}
