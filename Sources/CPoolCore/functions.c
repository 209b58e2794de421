/* Registering functions and looking them up: the public calls over the registry. */
#include <errno.h>

#include "pool.h"

static cpool_fn_t add_function(cpool_pool_t *h, const char *name, const char *signature,
                               void *fn, const char *library, const char *symbol, void *ctx,
                               uint32_t kind, uint32_t in_bytes, uint32_t out_bytes,
                               uint32_t flags) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    pthread_mutex_lock(&p->lock);
    if (p->state != POOL_OPEN) rc = CPOOL_E_CLOSED;
    else rc = cpool__fn_id(p, cpool__registry_add(&p->registry, name, signature, fn, library, symbol,
                                           ctx, kind, in_bytes, out_bytes, flags));
    pthread_mutex_unlock(&p->lock);
    cpool__pool_leave(p);
    return rc;
}

cpool_fn_t cpool_register(cpool_pool_t *h, const char *name, const char *signature,
                          cpool_any_fn_t fn, uint32_t flags) {
    if (!fn || !signature) return -EINVAL;
    /* POSIX (dlsym) guarantees that a function's address survives the trip through
     * void *; the registry keeps addresses that way. */
    return add_function(h, name, signature, (void *)fn, NULL, NULL, NULL, 0, 0, 0, flags);
}

cpool_fn_t cpool_register_symbol(cpool_pool_t *h, const char *name, const char *library,
                                 const char *symbol, const char *signature, uint32_t flags) {
    if (!symbol || !symbol[0] || !signature) return -EINVAL;
    return add_function(h, name, signature, NULL, library, symbol, NULL, 0, 0, 0, flags);
}

cpool_fn_t cpool_register_batch(cpool_pool_t *h, const char *name, cpool_batch_fn_t fn,
                                void *ctx, size_t in_bytes, size_t out_bytes) {
    if (!fn || in_bytes > UINT32_MAX || out_bytes > UINT32_MAX) return -EINVAL;
    return add_function(h, name, NULL, (void *)fn, NULL, NULL, ctx, FN_KIND_BATCH,
                        (uint32_t)in_bytes, (uint32_t)out_bytes, 0);
}

cpool_fn_t cpool_register_defined(cpool_pool_t *h, const char *name, uint32_t flags) {
    if (!name) return -EINVAL;
    return add_function(h, name, NULL, NULL, NULL, NULL, NULL, FN_KIND_DEFINED, 0, 0, flags);
}

cpool_fn_t cpool_lookup(cpool_pool_t *h, const char *name) {
    if (!name) return -EINVAL;
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    rc = cpool__fn_id(p, cpool__registry_find(&p->registry, name));
    cpool__pool_leave(p);
    return rc;
}

int cpool_function_sizes(cpool_pool_t *h, cpool_fn_t fn, size_t *args_bytes,
                         size_t *result_bytes) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    int err = cpool__fn_index(p, fn);
    const cpool__fn_local_t *f = err >= 0 ? cpool__registry_get(&p->registry, (uint32_t)err, &err) : NULL;
    if (f) {
        if (args_bytes) *args_bytes = f->in_bytes;
        if (result_bytes) *result_bytes = f->out_bytes;
        err = 0;
    }
    cpool__pool_leave(p);
    return err;
}
