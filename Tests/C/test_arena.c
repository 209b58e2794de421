/* The arena allocator: alignment, first fit from low offsets, coalescing, exhaustion. */
#include <errno.h>

#include "arena.h"
#include "check.h"
#include "region.h"

static void shouldAlignAndReuseLowOffsetsFirst(void) {
    cpool__arena_t a;
    CHECK_RC(cpool__arena_init(&a, 4096), 0);
    uint64_t x = cpool__arena_alloc(&a, 1), y = cpool__arena_alloc(&a, 100);
    CHECK_EQ(x, 0);
    CHECK_EQ(y, 64);
    CHECK_EQ(a.in_use, 64 + 128);
    CHECK_RC(cpool__arena_free(&a, x), 0);
    CHECK_EQ(cpool__arena_alloc(&a, 64), 0);
    cpool__arena_fini(&a);
}

static void shouldCoalesceFreedNeighbours(void) {
    cpool__arena_t a;
    cpool__arena_init(&a, 1024);
    uint64_t o[16];
    for (int i = 0; i < 16; i++) o[i] = cpool__arena_alloc(&a, 64);
    CHECK_EQ(cpool__arena_alloc(&a, 1), UINT64_MAX); /* full */
    for (int i = 0; i < 16; i += 2) CHECK_RC(cpool__arena_free(&a, o[i]), 0);
    CHECK_EQ(cpool__arena_alloc(&a, 128), UINT64_MAX); /* fragmented */
    for (int i = 1; i < 16; i += 2) CHECK_RC(cpool__arena_free(&a, o[i]), 0);
    CHECK_EQ(a.in_use, 0);
    CHECK_EQ(a.free_count, 1);
    CHECK_EQ(cpool__arena_alloc(&a, 1024), 0);
    cpool__arena_fini(&a);
}

static void shouldRefuseBadFreesAndOversizedAllocations(void) {
    cpool__arena_t a;
    cpool__arena_init(&a, 1024);
    CHECK_EQ(cpool__arena_alloc(&a, 2048), UINT64_MAX);
    CHECK_RC(cpool__arena_free(&a, 0), -EINVAL);
    uint64_t x = cpool__arena_alloc(&a, 64);
    CHECK_RC(cpool__arena_free(&a, x + 8), -EINVAL);
    CHECK_RC(cpool__arena_free(&a, x), 0);
    CHECK_RC(cpool__arena_free(&a, x), -EINVAL); /* double free */
    cpool__arena_fini(&a);
}

int main(void) {
    watchdog(30);
    RUN(shouldAlignAndReuseLowOffsetsFirst);
    RUN(shouldCoalesceFreedNeighbours);
    RUN(shouldRefuseBadFreesAndOversizedAllocations);
    return finish();
}
