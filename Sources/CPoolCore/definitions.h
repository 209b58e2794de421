/* Functions and hooks defined by name in this process (cpool_define, cpool_define_hook):
 * a table every process of a program fills the same way, so that a spawned worker finds
 * by name what the parent registered, with its own context pointer. */
#ifndef CPOOL_DEFINITIONS_H
#define CPOOL_DEFINITIONS_H

#include <stddef.h>
#include <stdint.h>

/* What two definitions of one function must agree on. */
uint64_t cpool__type_hash(const char *type, uint32_t in_bytes, uint32_t out_bytes);

#endif
