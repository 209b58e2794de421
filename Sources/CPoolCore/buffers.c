/* Shared buffers: caller memory inside the pool's arena, which maps read and write
 * in place (no staging copy). */
#include "pool.h"

void *cpool_alloc(cpool_pool_t *h, size_t bytes) {
    cpool__pool_t *p;
    if (cpool__pool_enter(h, &p) != 0) return NULL;
    void *ptr = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->state == POOL_OPEN) {
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
