/* The function registry: what a function id means and how a worker calls it.
 * Entries are published in the shared region (the source of truth, append-only);
 * each process keeps a private cache of resolved entries (function address, libffi
 * call interface). Forked workers inherit the parent's cache, so functions registered
 * before a worker started cost nothing to find; any other entry is resolved by the
 * worker on first use: by library and symbol (dlopen/dlsym), by name in the process's
 * definitions, or by the file that holds its address and its offset there. Worker
 * hooks are entries of the same form (region.h, cpool__worker_settings_t). */
#ifndef CPOOL_REGISTRY_H
#define CPOOL_REGISTRY_H

#include <ffi.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cpool.h"
#include "region.h"
#include "signature.h"

enum {
    FN_KIND_SCALAR = 1, FN_KIND_BYTES = 2, FN_KIND_BATCH = 3,
    FN_KIND_DEFINED = 4,      /* a batch function defined by name (cpool_define) */
    FN_KIND_HOOK = 5,         /* a worker hook by address (options.worker_init/exit) */
    FN_KIND_DEFINED_HOOK = 6, /* a worker hook defined by name (cpool_define_hook) */
};

/* Set in a spawned worker (spawned.c): addresses of the parent mean nothing here. */
extern int cpool__spawned_worker;

typedef struct cpool__fn_local {
    int32_t state;  /* 0: not resolved yet; 1: ready; < 0: the error resolving it */
    uint32_t kind;
    uint32_t use_direct;
    uint32_t in_bytes, out_bytes;
    cpool__signature_t sig;
    void *fn;
    void *ctx;
    ffi_cif cif;
    ffi_type *arg_types[MAX_ARGS];
} cpool__fn_local_t;

typedef struct cpool__registry {
    cpool__region_t *region;
    cpool__fn_local_t local[MAX_FUNCTIONS];
} cpool__registry_t;

void cpool__registry_init(cpool__registry_t *r, cpool__region_t *region);

/* Parent side, serialized by the caller. Returns the new id or a negative code. */
int cpool__registry_add(cpool__registry_t *r, const char *name, const char *signature,
                        void *fn, const char *library, const char *symbol, void *ctx,
                        uint32_t kind, uint32_t in_bytes, uint32_t out_bytes,
                        uint32_t flags);

int cpool__registry_find(const cpool__registry_t *r, const char *name);

/* Builds this process's resolved form of entry s (a function or a hook). parent: the
 * process that wrote the entry. Returns 0 or a negative code. */
int cpool__resolve(cpool__fn_local_t *l, const cpool__fn_shared_t *s, int parent);

/* Fills s with where fn lives: its shared object, offset and file identity. */
void cpool__locate(cpool__fn_shared_t *s, void *fn);

/* The resolved entry for id in this process, resolving it on first use. Returns NULL
 * and *err when the id is unknown or cannot be resolved here. */
const cpool__fn_local_t *cpool__registry_get(cpool__registry_t *r, uint32_t id, int *err);

/* Runs items [0, count) of one task. Before running item i it stores i in *cur, so
 * that a crash can be pinned on exactly that item. Returns 0 when all ran; otherwise
 * a negative code with *cur at the failing item and *detail its return value (the
 * caller reports it and continues with *cur + 1). */
int cpool__fn_run(const cpool__fn_local_t *f, const unsigned char *in, size_t in_stride,
                  unsigned char *out, size_t out_stride, size_t count,
                  _Atomic uint64_t *cur, int64_t *detail);

#endif
