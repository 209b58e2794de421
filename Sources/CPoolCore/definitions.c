/* The process's table of functions and hooks defined by name. Entries are added, never
 * changed or removed: a pool's workers may look one up at any time. */
#include "definitions.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "cpool.h"

#define MAX_DEFINITIONS 1024
#define NAME_BYTES ((int)sizeof(((cpool_definition_info_t *)0)->name))
#define MAX_TYPE_BYTES 4096

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static cpool_definition_info_t table[MAX_DEFINITIONS];
static unsigned table_count;

uint64_t cpool__type_hash(const char *type, uint32_t in_bytes, uint32_t out_bytes) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const unsigned char *c = (const unsigned char *)type; *c; c++) h = (h ^ *c) * 0x100000001b3ull;
    h = (h ^ in_bytes) * 0x100000001b3ull;
    return (h ^ out_bytes) * 0x100000001b3ull;
}

static int find_locked(const char *name) {
    for (unsigned i = 0; i < table_count; i++)
        if (strcmp(table[i].name, name) == 0) return (int)i;
    return -1;
}

int cpool_definition_find(const char *name, cpool_definition_info_t *info) {
    if (!name || !info) return CPOOL_E_UNKNOWN_FUNCTION;
    pthread_mutex_lock(&table_lock);
    const int i = find_locked(name);
    if (i >= 0) *info = table[i];
    pthread_mutex_unlock(&table_lock);
    return i >= 0 ? 0 : CPOOL_E_UNKNOWN_FUNCTION;
}

int cpool_definition_at(size_t index, cpool_definition_info_t *info) {
    if (!info) return -EINVAL;
    pthread_mutex_lock(&table_lock);
    const int found = index < table_count;
    if (found) *info = table[index];
    pthread_mutex_unlock(&table_lock);
    return found ? 0 : -ENOENT;
}

static int add(const char *name, const cpool_definition_info_t *def) {
    if (!name || !name[0]) return -EINVAL;
    if (strnlen(name, NAME_BYTES) == NAME_BYTES) return -ENAMETOOLONG;
    int rc = 0;
    pthread_mutex_lock(&table_lock);
    if (find_locked(name) >= 0) rc = CPOOL_E_EXISTS;
    else if (table_count == MAX_DEFINITIONS) rc = CPOOL_E_FULL;
    else {
        cpool_definition_info_t *e = &table[table_count++];
        *e = *def;
        strcpy(e->name, name);
    }
    pthread_mutex_unlock(&table_lock);
    return rc;
}

int cpool_define(const char *name, const char *type, cpool_batch_fn_t fn, void *ctx,
                 size_t in_bytes, size_t out_bytes) {
    if (!fn || !type || in_bytes > UINT32_MAX || out_bytes > UINT32_MAX) return -EINVAL;
    if (strnlen(type, MAX_TYPE_BYTES + 1) > MAX_TYPE_BYTES) return -EINVAL;
    cpool_definition_info_t d = {
        .type_hash = cpool__type_hash(type, (uint32_t)in_bytes, (uint32_t)out_bytes),
        .fn = (void *)fn, .ctx = ctx,
        .in_bytes = (uint32_t)in_bytes, .out_bytes = (uint32_t)out_bytes,
    };
    strncpy(d.type, type, sizeof d.type - 1);
    return add(name, &d);
}

int cpool_define_hook(const char *name, cpool_worker_hook_t hook, void *ctx) {
    if (!hook) return -EINVAL;
    cpool_definition_info_t d = {.is_hook = 1, .fn = (void *)hook, .ctx = ctx};
    return add(name, &d);
}
