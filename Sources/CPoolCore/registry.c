#define _GNU_SOURCE
#include "registry.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <string.h>
#include <sys/stat.h>

#include "definitions.h"

int cpool__spawned_worker;

void cpool__registry_init(cpool__registry_t *r, cpool__region_t *region) {
    memset(r, 0, sizeof *r);
    r->region = region;
}

static ffi_type *ffi_type_of(cpool__type_t t) {
    switch (t) {
    case TYPE_VOID: return &ffi_type_void;
    case TYPE_I8: return &ffi_type_sint8;
    case TYPE_I16: return &ffi_type_sint16;
    case TYPE_I32: return &ffi_type_sint32;
    case TYPE_I64: return &ffi_type_sint64;
    case TYPE_U8: return &ffi_type_uint8;
    case TYPE_U16: return &ffi_type_uint16;
    case TYPE_U32: return &ffi_type_uint32;
    case TYPE_U64: case TYPE_SIZE: return &ffi_type_uint64;
    case TYPE_F32: return &ffi_type_float;
    case TYPE_F64: return &ffi_type_double;
    case TYPE_CPTR: case TYPE_PTR: return &ffi_type_pointer;
    }
    return NULL;
}

static int copy_name(char *dst, size_t cap, const char *src) {
    if (!src) {
        dst[0] = '\0';
        return 0;
    }
    size_t n = strnlen(src, cap);
    if (n == cap) return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

/* The identity of the file at path, or 0s. */
static void identify(const char *path, uint64_t *dev, uint64_t *ino) {
    struct stat st;
    if (stat(path, &st) == 0) {
        *dev = (uint64_t)st.st_dev;
        *ino = (uint64_t)st.st_ino;
    } else {
        *dev = *ino = 0;
    }
}

/* The file of a loaded object: the program's own has no name in its link map. */
static const char *file_of(const char *l_name) { return l_name && l_name[0] ? l_name : "/proc/self/exe"; }

void cpool__locate(cpool__fn_shared_t *s, void *fn) {
    Dl_info info;
    struct link_map *map = NULL;
    if (!dladdr1(fn, &info, (void **)&map, RTLD_DL_LINKMAP) || !info.dli_fname || !map) return;
    if (copy_name(s->object_path, sizeof s->object_path, info.dli_fname) != 0) s->object_path[0] = '\0';
    s->object_offset = (uint64_t)((uintptr_t)fn - map->l_addr);
    identify(file_of(map->l_name), &s->object_dev, &s->object_ino);
}

typedef struct object_search {
    uint64_t dev, ino;
    uintptr_t base;
    int found;
} object_search_t;

static int match_object(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    object_search_t *q = arg;
    uint64_t dev, ino;
    identify(file_of(info->dlpi_name), &dev, &ino);
    if (dev != q->dev || ino != q->ino) return 0;
    q->base = (uintptr_t)info->dlpi_addr;
    q->found = 1;
    return 1;
}

/* A spawned worker: the address of entry s's code in this process, found in the same
 * file (by identity, never by name alone) at the same offset, loading it when it is a
 * library this process has not loaded. NULL when this process cannot have it. */
static void *find_in_same_file(const cpool__fn_shared_t *s) {
    if (!s->object_dev && !s->object_ino) return NULL;
    object_search_t q = {s->object_dev, s->object_ino, 0, 0};
    dl_iterate_phdr(match_object, &q);
    if (!q.found && s->object_path[0] && dlopen(s->object_path, RTLD_NOW | RTLD_LOCAL))
        dl_iterate_phdr(match_object, &q);
    return q.found ? (void *)(q.base + s->object_offset) : NULL;
}

/* A worker forked before this registration: the address is good if the object that
 * holds it was mapped here too (it was, unless the parent dlopened it after this worker
 * started); else open that object here and find the function at the same offset. */
static void *find_after_fork(const cpool__fn_shared_t *s) {
    Dl_info info;
    void *addr = (void *)(uintptr_t)s->fn_addr;
    if (dladdr(addr, &info) && info.dli_fname && strcmp(info.dli_fname, s->object_path) == 0) return addr;
    if (!s->object_path[0]) return NULL;
    void *h = dlopen(s->object_path, RTLD_NOW | RTLD_LOCAL);
    struct link_map *map = NULL;
    if (!h || dlinfo(h, RTLD_DI_LINKMAP, &map) != 0 || !map) return NULL;
    return (void *)(map->l_addr + s->object_offset);
}

/* Entry s defined by name: this process's definition, which must be of the same kind
 * and type. */
static int resolve_defined(cpool__fn_local_t *l, const cpool__fn_shared_t *s, int parent) {
    cpool_definition_info_t d;
    if (cpool_definition_find(s->name, &d) != 0)
        return parent ? CPOOL_E_UNKNOWN_FUNCTION : CPOOL_E_NOT_IN_WORKER;
    const int hook = s->kind == FN_KIND_DEFINED_HOOK;
    if (d.is_hook != hook || (!hook && d.type_hash != s->type_hash)) return CPOOL_E_SIGNATURE;
    l->fn = d.fn;
    l->ctx = d.ctx;
    l->kind = hook ? FN_KIND_HOOK : FN_KIND_BATCH;
    l->state = 1;
    return 0;
}

int cpool__resolve(cpool__fn_local_t *l, const cpool__fn_shared_t *s, int parent) {
    memset(l, 0, sizeof *l);
    l->kind = s->kind;
    l->ctx = (void *)(uintptr_t)s->ctx;
    l->in_bytes = s->in_bytes;
    l->out_bytes = s->out_bytes;
    if (s->kind == FN_KIND_DEFINED || s->kind == FN_KIND_DEFINED_HOOK) return resolve_defined(l, s, parent);
    if (s->kind == FN_KIND_SCALAR || s->kind == FN_KIND_BYTES) {
        int rc = cpool__signature_parse(s->signature, &l->sig);
        if (rc) return rc;
    }
    if (s->symbol[0]) {
        void *h = dlopen(s->library[0] ? s->library : NULL, RTLD_NOW | RTLD_LOCAL);
        if (!h) return CPOOL_E_SYMBOL;
        l->fn = dlsym(h, s->symbol);
        if (!l->fn) return CPOOL_E_SYMBOL;
    } else if (parent) {
        l->fn = (void *)(uintptr_t)s->fn_addr;
    } else {
        l->fn = cpool__spawned_worker ? find_in_same_file(s) : find_after_fork(s);
        if (!l->fn) return CPOOL_E_NOT_IN_WORKER;
    }
    if (s->kind == FN_KIND_SCALAR || s->kind == FN_KIND_BYTES) {
        for (unsigned i = 0; i < l->sig.nargs; i++)
            l->arg_types[i] = ffi_type_of((cpool__type_t)l->sig.args[i]);
        if (ffi_prep_cif(&l->cif, FFI_DEFAULT_ABI, l->sig.nargs,
                         ffi_type_of((cpool__type_t)l->sig.ret), l->arg_types) != FFI_OK)
            return CPOOL_E_SIGNATURE;
        l->use_direct = !(s->flags & CPOOL_REGISTER_NO_DIRECT) &&
                        (l->sig.direct != DIRECT_NONE || l->sig.bytes_form);
    }
    l->state = 1;
    return 0;
}

int cpool__registry_find(const cpool__registry_t *r, const char *name) {
    uint32_t n = atomic_load_explicit(&r->region->header->fn_count, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++)
        if (strncmp(r->region->functions[i].name, name, sizeof r->region->functions[i].name) == 0)
            return (int)i;
    return CPOOL_E_UNKNOWN_FUNCTION;
}

int cpool__registry_add(cpool__registry_t *r, const char *name, const char *signature,
                        void *fn, const char *library, const char *symbol, void *ctx,
                        uint32_t kind, uint32_t in_bytes, uint32_t out_bytes,
                        uint32_t flags) {
    cpool__header_t *h = r->region->header;
    if (!name || !name[0]) return -EINVAL;
    if (cpool__registry_find(r, name) >= 0) return CPOOL_E_EXISTS;
    uint32_t id = atomic_load_explicit(&h->fn_count, memory_order_relaxed);
    if (id >= MAX_FUNCTIONS) return CPOOL_E_FULL;

    /* A spawned worker has none of the parent's memory but the region. */
    const uintptr_t c = (uintptr_t)ctx, base = (uintptr_t)r->region->base;
    if (r->region->header->settings.start_method == CPOOL_START_SPAWN && kind == FN_KIND_BATCH && ctx &&
        (c < base || c >= base + r->region->bytes))
        return CPOOL_E_START_METHOD;

    cpool__fn_shared_t *s = &r->region->functions[id];
    memset(s, 0, sizeof *s);
    if (copy_name(s->name, sizeof s->name, name) || copy_name(s->library, sizeof s->library, library) ||
        copy_name(s->symbol, sizeof s->symbol, symbol))
        return -ENAMETOOLONG;
    if (kind == FN_KIND_DEFINED) {
        cpool_definition_info_t d;
        if (cpool_definition_find(name, &d) != 0 || d.is_hook) return CPOOL_E_UNKNOWN_FUNCTION;
        memcpy(s->signature, d.type, sizeof s->signature - 1);
        s->type_hash = d.type_hash;
        in_bytes = d.in_bytes;
        out_bytes = d.out_bytes;
    } else if (kind != FN_KIND_BATCH) {
        cpool__signature_t sig;
        int rc = cpool__signature_parse(signature, &sig);
        if (rc) return rc;
        memcpy(s->signature, signature, strlen(signature) + 1);
        kind = sig.bytes_form ? FN_KIND_BYTES : FN_KIND_SCALAR;
        in_bytes = sig.record_bytes;
        out_bytes = sig.result_bytes;
    }
    s->kind = kind;
    s->flags = flags;
    s->in_bytes = in_bytes;
    s->out_bytes = out_bytes;
    s->ctx = (uint64_t)(uintptr_t)ctx;
    s->fn_addr = (uint64_t)(uintptr_t)fn;
    if (fn) cpool__locate(s, fn);
    int rc = cpool__resolve(&r->local[id], s, 1);
    if (rc) {
        memset(&r->local[id], 0, sizeof r->local[id]);
        return rc;
    }
    atomic_store_explicit(&h->fn_count, id + 1, memory_order_release);
    return (int)id;
}

const cpool__fn_local_t *cpool__registry_get(cpool__registry_t *r, uint32_t id, int *err) {
    if (id >= MAX_FUNCTIONS) {
        *err = CPOOL_E_UNKNOWN_FUNCTION;
        return NULL;
    }
    cpool__fn_local_t *l = &r->local[id];
    if (l->state == 1) return l;
    if (l->state < 0) {
        *err = l->state;
        return NULL;
    }
    if (id >= atomic_load_explicit(&r->region->header->fn_count, memory_order_acquire)) {
        *err = CPOOL_E_UNKNOWN_FUNCTION;
        return NULL;
    }
    int rc = cpool__resolve(l, &r->region->functions[id], 0);
    if (rc) {
        l->state = rc;
        *err = rc;
        return NULL;
    }
    return l;
}

/* The direct paths: typed loops with no libffi in between (~1.5 ns a call here
 * against ~14 ns through ffi_call). */
#define DIRECT_LOOP(RET, CALL)                                                          \
    for (size_t i = 0; i < count; i++) {                                                \
        atomic_store_explicit(cur, i, memory_order_relaxed);                            \
        const unsigned char *a = in + i * in_stride;                                    \
        RET r_ = CALL;                                                                  \
        memcpy(out + i * out_stride, &r_, sizeof r_);                                   \
    }

static void load(void *dst, const unsigned char *src, size_t n) { memcpy(dst, src, n); }

static int64_t ld_i64(const unsigned char *p) { int64_t v; load(&v, p, 8); return v; }
static double ld_f64(const unsigned char *p) { double v; load(&v, p, 8); return v; }
static int32_t ld_i32(const unsigned char *p) { int32_t v; load(&v, p, 4); return v; }
static float ld_f32(const unsigned char *p) { float v; load(&v, p, 4); return v; }

int cpool__fn_run(const cpool__fn_local_t *f, const unsigned char *in, size_t in_stride,
                  unsigned char *out, size_t out_stride, size_t count,
                  _Atomic uint64_t *cur, int64_t *detail) {
    if (f->kind == FN_KIND_BATCH) {
        cpool_batch_fn_t fn = (cpool_batch_fn_t)f->fn;
        int64_t rc = fn(f->ctx, in, in_stride, out, out_stride, count,
                        (volatile size_t *)(void *)cur);
        if (rc < 0) {
            *detail = rc;
            return CPOOL_E_FUNCTION_ERROR;
        }
        return 0;
    }
    if (f->kind == FN_KIND_BYTES) {
        for (size_t i = 0; i < count; i++) {
            atomic_store_explicit(cur, i, memory_order_relaxed);
            const void *a = in + i * in_stride;
            void *o = out + i * out_stride;
            int64_t rc = 0;
            if (f->use_direct) {
                if (f->sig.ret == TYPE_VOID)
                    ((void (*)(const void *, size_t, void *, size_t))f->fn)(a, in_stride, o, out_stride);
                else
                    rc = ((int64_t (*)(const void *, size_t, void *, size_t))f->fn)(a, in_stride, o, out_stride);
            } else {
                size_t in_len = in_stride, out_len = out_stride;
                void *av[4] = {&a, &in_len, &o, &out_len};
                ffi_arg ret = 0;
                ffi_call((ffi_cif *)&f->cif, FFI_FN(f->fn), &ret, av);
                if (f->sig.ret != TYPE_VOID) rc = (int64_t)ret;
            }
            if (rc < 0) {
                *detail = rc;
                return CPOOL_E_FUNCTION_ERROR;
            }
        }
        return 0;
    }
    if (f->use_direct) {
        switch ((cpool__direct_t)f->sig.direct) {
        case DIRECT_I64_I64:
            DIRECT_LOOP(int64_t, ((int64_t (*)(int64_t))f->fn)(ld_i64(a)));
            return 0;
        case DIRECT_I64_I64_I64:
            DIRECT_LOOP(int64_t, ((int64_t (*)(int64_t, int64_t))f->fn)(ld_i64(a), ld_i64(a + 8)));
            return 0;
        case DIRECT_F64_F64:
            DIRECT_LOOP(double, ((double (*)(double))f->fn)(ld_f64(a)));
            return 0;
        case DIRECT_F64_F64_F64:
            DIRECT_LOOP(double, ((double (*)(double, double))f->fn)(ld_f64(a), ld_f64(a + 8)));
            return 0;
        case DIRECT_I32_I32:
            DIRECT_LOOP(int32_t, ((int32_t (*)(int32_t))f->fn)(ld_i32(a)));
            return 0;
        case DIRECT_F32_F32:
            DIRECT_LOOP(float, ((float (*)(float))f->fn)(ld_f32(a)));
            return 0;
        case DIRECT_NONE:
            break;
        }
    }
    void *av[MAX_ARGS];
    const size_t nargs = f->sig.nargs, rbytes = f->sig.result_bytes;
    for (size_t i = 0; i < count; i++) {
        atomic_store_explicit(cur, i, memory_order_relaxed);
        const unsigned char *a = in + i * in_stride;
        for (size_t k = 0; k < nargs; k++) av[k] = (void *)(a + f->sig.offsets[k]);
        /* libffi widens small integer results to a full ffi_arg: call into one and
         * copy out the low bytes (little-endian) so a 4-byte slot is not overrun. */
        union { ffi_arg word; double d; float fl; } ret;
        ffi_call((ffi_cif *)&f->cif, FFI_FN(f->fn), &ret, av);
        if (rbytes) memcpy(out + i * out_stride, &ret, rbytes);
    }
    return 0;
}
