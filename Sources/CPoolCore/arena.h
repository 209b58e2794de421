/* The shared payload arena's allocator. All of its bookkeeping lives in the parent's
 * private memory and only the parent allocates and frees (workers write only into
 * extents the parent handed them), so a worker that dies or scribbles over the arena
 * can never corrupt the allocator or hold space that the parent cannot take back.
 * Not thread-safe: the pool calls it under its lock. First fit from the lowest
 * offset, so the pages already faulted in are reused first. */
#ifndef CPOOL_ARENA_H
#define CPOOL_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct cpool__extent {
    uint64_t off;
    uint64_t bytes;
} cpool__extent_t;

typedef struct cpool__arena {
    uint64_t capacity;
    uint64_t in_use;
    cpool__extent_t *free_list; /* sorted by off, coalesced */
    size_t free_count, free_cap;
    cpool__extent_t *used;      /* sorted by off */
    size_t used_count, used_cap;
} cpool__arena_t;

int cpool__arena_init(cpool__arena_t *a, uint64_t capacity);
void cpool__arena_fini(cpool__arena_t *a);

/* Offset of a fresh extent of at least bytes (64-byte aligned), or UINT64_MAX when
 * there is no room now. bytes 0 gets a minimal extent. */
uint64_t cpool__arena_alloc(cpool__arena_t *a, uint64_t bytes);

/* Frees the extent that starts at off. Returns 0, or -EINVAL when off starts none. */
int cpool__arena_free(cpool__arena_t *a, uint64_t off);

#endif
