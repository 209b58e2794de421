/* Functions and hooks defined by name in this process (cpool_define, cpool_define_hook):
 * a table every process of a program fills the same way, so that a spawned worker finds
 * by name what the parent registered, with its own context pointer. */
#ifndef CPOOL_DEFINITIONS_H
#define CPOOL_DEFINITIONS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cpool__definition {
    int is_hook;
    uint64_t type_hash;   /* functions: their type and item sizes (cpool__type_hash) */
    char type_start[96];  /* the start of the type, for messages */
    void *fn;
    void *ctx;
    uint32_t in_bytes, out_bytes;
} cpool__definition_t;

/* Copies the definition named `name` into *out. Returns 0 or CPOOL_E_UNKNOWN_FUNCTION. */
int cpool__definition_find(const char *name, cpool__definition_t *out);

/* What two definitions of one function must agree on. */
uint64_t cpool__type_hash(const char *type, uint32_t in_bytes, uint32_t out_bytes);

#endif
