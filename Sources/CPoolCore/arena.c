#include "arena.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "region.h"

static int reserve(cpool__extent_t **v, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need) n *= 2;
    cpool__extent_t *p = realloc(*v, n * sizeof *p);
    if (!p) return -ENOMEM;
    *v = p;
    *cap = n;
    return 0;
}

static void insert_at(cpool__extent_t *v, size_t *count, size_t i, cpool__extent_t e) {
    memmove(v + i + 1, v + i, (*count - i) * sizeof *v);
    v[i] = e;
    (*count)++;
}

static void remove_at(cpool__extent_t *v, size_t *count, size_t i) {
    memmove(v + i, v + i + 1, (*count - i - 1) * sizeof *v);
    (*count)--;
}

/* Index of the first extent with off >= key. */
static size_t lower_bound(const cpool__extent_t *v, size_t count, uint64_t key) {
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].off < key) lo = mid + 1; else hi = mid;
    }
    return lo;
}

int cpool__arena_init(cpool__arena_t *a, uint64_t capacity) {
    memset(a, 0, sizeof *a);
    a->capacity = capacity;
    if (reserve(&a->free_list, &a->free_cap, 1) != 0) return -ENOMEM;
    if (capacity) a->free_list[a->free_count++] = (cpool__extent_t){0, capacity};
    return 0;
}

void cpool__arena_fini(cpool__arena_t *a) {
    free(a->free_list);
    free(a->used);
    memset(a, 0, sizeof *a);
}

uint64_t cpool__arena_alloc(cpool__arena_t *a, uint64_t bytes) {
    if (bytes == 0) bytes = 1;
    if (bytes > a->capacity) return UINT64_MAX;
    bytes = (bytes + ARENA_ALIGN - 1) & ~(uint64_t)(ARENA_ALIGN - 1);
    if (reserve(&a->used, &a->used_cap, a->used_count + 1) != 0) return UINT64_MAX;
    for (size_t i = 0; i < a->free_count; i++) {
        cpool__extent_t *f = &a->free_list[i];
        if (f->bytes < bytes) continue;
        uint64_t off = f->off;
        f->off += bytes;
        f->bytes -= bytes;
        if (f->bytes == 0) remove_at(a->free_list, &a->free_count, i);
        insert_at(a->used, &a->used_count, lower_bound(a->used, a->used_count, off),
                  (cpool__extent_t){off, bytes});
        a->in_use += bytes;
        return off;
    }
    return UINT64_MAX;
}

int cpool__arena_free(cpool__arena_t *a, uint64_t off) {
    size_t u = lower_bound(a->used, a->used_count, off);
    if (u == a->used_count || a->used[u].off != off) return -EINVAL;
    cpool__extent_t e = a->used[u];
    remove_at(a->used, &a->used_count, u);
    a->in_use -= e.bytes;
    /* Coalesce with the free neighbours, else insert a new free extent. */
    size_t i = lower_bound(a->free_list, a->free_count, off);
    int merge_prev = i > 0 && a->free_list[i - 1].off + a->free_list[i - 1].bytes == e.off;
    int merge_next = i < a->free_count && e.off + e.bytes == a->free_list[i].off;
    if (merge_prev && merge_next) {
        a->free_list[i - 1].bytes += e.bytes + a->free_list[i].bytes;
        remove_at(a->free_list, &a->free_count, i);
    } else if (merge_prev) {
        a->free_list[i - 1].bytes += e.bytes;
    } else if (merge_next) {
        a->free_list[i].off = e.off;
        a->free_list[i].bytes += e.bytes;
    } else {
        if (reserve(&a->free_list, &a->free_cap, a->free_count + 1) != 0) {
            /* Out of memory for bookkeeping: the extent stays lost rather than
             * corrupting the list. */
            return -ENOMEM;
        }
        insert_at(a->free_list, &a->free_count, i, e);
    }
    return 0;
}
