/* cpool_map over every function form, chunking, strides, and the zero-copy path. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "check.h"
#include "pool.h"
#include "testfns.h"

static cpool_pool_t *pool;

static void shouldMapSquaresOnDirectAndLibffiPaths(void) {
    const size_t n = 1000000;
    int64_t *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
    for (size_t i = 0; i < n; i++) in[i] = (int64_t)i - 500000;
    cpool_fn_t direct = cpool_register(pool, "square", "int64_t(int64_t)", (cpool_any_fn_t)t_square, 0);
    cpool_fn_t viaffi = cpool_register(pool, "square_ffi", "int64_t(int64_t)", (cpool_any_fn_t)t_square,
                                       CPOOL_REGISTER_NO_DIRECT);
    CHECK(direct >= 0 && viaffi >= 0);
    cpool_fn_t fns[2] = {direct, viaffi};
    for (int k = 0; k < 2; k++) {
        memset(out, 0, n * sizeof *out);
        CHECK_RC(cpool_map(pool, fns[k], in, 8, out, 8, n, 0, NULL), 0);
        size_t wrong = 0;
        for (size_t i = 0; i < n; i++) wrong += out[i] != in[i] * in[i];
        CHECK_EQ(wrong, 0);
    }
    free(in);
    free(out);
}

static void shouldMapWithAnyChunkSize(void) {
    cpool_fn_t f = cpool_lookup(pool, "square");
    const size_t n = 1001;
    int64_t in[1001], out[1001];
    for (size_t i = 0; i < n; i++) in[i] = (int64_t)i;
    size_t chunks[] = {1, 7, 1000, 5000, 0};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        memset(out, 0xff, sizeof out);
        CHECK_RC(cpool_map(pool, f, in, 8, out, 8, n, chunks[c], NULL), 0);
        for (size_t i = 0; i < n; i++) CHECK_EQ(out[i], in[i] * in[i]);
    }
    CHECK_RC(cpool_map(pool, f, NULL, 8, NULL, 8, 0, 0, NULL), 0); /* empty map */
}

static void shouldMapStridedRecordsOfSeveralArguments(void) {
    struct rec { int64_t a, b; char pad[16]; } in[300];
    struct res { int64_t sum; int64_t marker; } out[300];
    for (int i = 0; i < 300; i++) in[i] = (struct rec){i, 2 * i, {0}};
    for (int i = 0; i < 300; i++) out[i].marker = 77;
    cpool_fn_t add = cpool_register(pool, "add", "i64(i64,i64)", (cpool_any_fn_t)t_add, 0);
    CHECK_RC(cpool_map(pool, add, in, sizeof in[0], out, sizeof out[0], 300, 16, NULL), 0);
    for (int i = 0; i < 300; i++) {
        CHECK_EQ(out[i].sum, 3 * i);
        CHECK_EQ(out[i].marker, 77); /* the stride's gap is left alone */
    }
    /* Padding and small types through libffi: struct {int32 a; double b; int8 c;}. */
    struct mixed { int32_t a; double b; int8_t c; } m[50];
    int64_t r[50];
    for (int i = 0; i < 50; i++) m[i] = (struct mixed){i, 0.5 + i, (int8_t)-i};
    cpool_fn_t mixed = cpool_register(pool, "mixed", "int64_t(int32_t,double,int8_t)", (cpool_any_fn_t)t_mixed, 0);
    size_t args_bytes = 0, result_bytes = 0;
    CHECK_RC(cpool_function_sizes(pool, mixed, &args_bytes, &result_bytes), 0);
    CHECK_EQ(args_bytes, sizeof(struct mixed));
    CHECK_EQ(result_bytes, 8);
    CHECK_RC(cpool_map(pool, mixed, m, sizeof m[0], r, 8, 50, 0, NULL), 0);
    for (int i = 0; i < 50; i++) CHECK_EQ(r[i], (int64_t)i * 100 + i - i);
}

/* 1 when fn runs on a typed direct loop, 0 when through libffi. */
static int uses_direct_path(cpool_fn_t fn) {
    cpool__pool_t *p = cpool__pool_internal(pool);
    int err = 0, index = cpool__fn_index(p, fn);
    if (index < 0) return -1;
    const cpool__fn_local_t *f = cpool__registry_get(&p->registry, (uint32_t)index, &err);
    return f ? (int)f->use_direct : -1;
}

static void shouldMapEveryDirectShape(void) {
    double d[100], dd[100][2], dr[100];
    int32_t i32[100], ir[100];
    float f[100], fr[100];
    for (int i = 0; i < 100; i++) {
        d[i] = i * 0.25;
        dd[i][0] = i;
        dd[i][1] = 1;
        i32[i] = i;
        f[i] = (float)i;
    }
    cpool_fn_t scale = cpool_register(pool, "scale", "double(double)", (cpool_any_fn_t)t_scale, 0);
    CHECK_RC(cpool_map(pool, scale, d, 8, dr, 8, 100, 0, NULL), 0);
    for (int i = 0; i < 100; i++) CHECK(dr[i] == 2 * d[i]);
    cpool_fn_t hyp = cpool_register(pool, "hypot2", "f64(f64,f64)", (cpool_any_fn_t)t_hypot2, 0);
    CHECK_RC(cpool_map(pool, hyp, dd, 16, dr, 8, 100, 0, NULL), 0);
    for (int i = 0; i < 100; i++) CHECK(dr[i] == (double)i * i + 1);
    cpool_fn_t neg = cpool_register(pool, "neg32", "int32_t(int32_t)", (cpool_any_fn_t)t_neg32, 0);
    CHECK_RC(cpool_map(pool, neg, i32, 4, ir, 4, 100, 0, NULL), 0);
    for (int i = 0; i < 100; i++) CHECK_EQ(ir[i], -i);
    cpool_fn_t half = cpool_register(pool, "half", "float(float)", (cpool_any_fn_t)t_half, 0);
    CHECK_RC(cpool_map(pool, half, f, 4, fr, 4, 100, 0, NULL), 0);
    for (int i = 0; i < 100; i++) CHECK(fr[i] == (float)i / 2);
    /* Which path each one took: the workers inherit these resolved entries. */
    cpool_fn_t direct[] = {cpool_lookup(pool, "square"), scale, hyp, neg, half};
    for (size_t k = 0; k < sizeof direct / sizeof direct[0]; k++) CHECK_EQ(uses_direct_path(direct[k]), 1);
    CHECK_EQ(uses_direct_path(cpool_lookup(pool, "square_ffi")), 0);
    cpool_fn_t half_ffi = cpool_register(pool, "half_ffi", "float(float)", (cpool_any_fn_t)t_half, CPOOL_REGISTER_NO_DIRECT);
    CHECK_EQ(uses_direct_path(half_ffi), 0);
    memset(fr, 0, sizeof fr);
    CHECK_RC(cpool_map(pool, half_ffi, f, 4, fr, 4, 100, 0, NULL), 0);
    for (int i = 0; i < 100; i++) CHECK(fr[i] == (float)i / 2);
    int64_t forty_two = 0;
    cpool_fn_t none = cpool_register(pool, "noargs", "int64_t(void)", (cpool_any_fn_t)t_noargs, 0);
    CHECK_RC(cpool_apply(pool, none, NULL, 0, &forty_two, 8, 0, NULL), 0);
    CHECK_EQ(forty_two, 42);
}

static void shouldMapLibmCosRegisteredBySymbol(void) {
    cpool_fn_t cosf = cpool_register_symbol(pool, "cos", "libm.so.6", "cos", "double(double)", 0);
    CHECK(cosf >= 0);
    double x[1000], y[1000];
    for (int i = 0; i < 1000; i++) x[i] = i * 0.01;
    CHECK_RC(cpool_map(pool, cosf, x, 8, y, 8, 1000, 0, NULL), 0);
    for (int i = 0; i < 1000; i++) CHECK(y[i] == cos(x[i]));
}

static void shouldMapTheBytesFormAndReportItsErrors(void) {
    cpool_fn_t rev = cpool_register(pool, "reverse", "int64_t(const void*,size_t,void*,size_t)",
                                    (cpool_any_fn_t)t_reverse, 0);
    char in[4][8] = {"abcdefgh", "12345678", "Xfailsss", "zyxwvuts"};
    char out[4][8];
    cpool_status_t st[4];
    CHECK_RC(cpool_map(pool, rev, in, 8, out, 8, 4, 1, st), CPOOL_E_TASK_FAILED);
    CHECK(memcmp(out[0], "hgfedcba", 8) == 0);
    CHECK(memcmp(out[1], "87654321", 8) == 0);
    CHECK(memcmp(out[3], "stuvwxyz", 8) == 0);
    CHECK_EQ(st[0].code, 0);
    CHECK_EQ(st[2].code, CPOOL_E_FUNCTION_ERROR);
    CHECK_EQ(st[2].detail, -7);
    CHECK_EQ(st[3].code, 0);

    /* void-returning bytes form, a 1 MiB payload per task */
    cpool_fn_t sc = cpool_register(pool, "scale_bytes", "void(const void*,size_t,void*,size_t)",
                                   (cpool_any_fn_t)t_scale_bytes, 0);
    const size_t per = 131072, tasks = 8;
    double *a = malloc(per * tasks * 8), *b = malloc(per * tasks * 8);
    for (size_t i = 0; i < per * tasks; i++) a[i] = (double)i;
    CHECK_RC(cpool_map(pool, sc, a, per * 8, b, per * 8, tasks, 1, NULL), 0);
    size_t wrong = 0;
    for (size_t i = 0; i < per * tasks; i++) wrong += b[i] != 2.0 * a[i];
    CHECK_EQ(wrong, 0);
    free(a);
    free(b);
}

static int64_t batch_add = 1000;

static void shouldRunBatchFunctionsWithTheirContext(void) {
    cpool_fn_t bf = cpool_register_batch(pool, "batch_square", t_batch_square, &batch_add, 8, 8);
    CHECK(bf >= 0);
    int64_t in[5000], out[5000];
    cpool_status_t st[5000];
    for (int i = 0; i < 5000; i++) in[i] = i;
    in[1234] = -1; /* the batch function fails this one item */
    CHECK_RC(cpool_map(pool, bf, in, 8, out, 8, 5000, 0, st), CPOOL_E_TASK_FAILED);
    for (int i = 0; i < 5000; i++) {
        if (i == 1234) {
            CHECK_EQ(st[i].code, CPOOL_E_FUNCTION_ERROR);
            CHECK_EQ(st[i].detail, -9);
        } else {
            CHECK_EQ(st[i].code, 0);
            CHECK_EQ(out[i], (int64_t)i * i + 1000);
        }
    }
}

/* What the workers saw of a zero-copy map: every chunk's input and output addresses,
 * checked against the caller's shared buffers (a staging copy would sit elsewhere). */
typedef struct where {
    const int64_t *in_lo, *in_hi;
    int64_t *out_lo, *out_hi;
    _Atomic uint64_t chunks, chunks_in_place, items;
} where_t;

static int64_t square_where(void *ctx, const void *in, size_t in_stride, void *out,
                            size_t out_stride, size_t count, volatile size_t *progress) {
    where_t *w = ctx;
    const int64_t *a = in;
    int64_t *b = out;
    atomic_fetch_add(&w->chunks, 1);
    if (a >= w->in_lo && a + count <= w->in_hi && b >= w->out_lo && b + count <= w->out_hi &&
        in_stride == 8 && out_stride == 8)
        atomic_fetch_add(&w->chunks_in_place, 1);
    for (size_t i = 0; i < count; i++) {
        *progress = i;
        b[i] = a[i] * a[i];
    }
    atomic_fetch_add(&w->items, count);
    return 0;
}

static void shouldMapInPlaceInSharedBuffersWithoutCopies(void) {
    const size_t n = 100000;
    int64_t *in = cpool_alloc(pool, n * 8), *out = cpool_alloc(pool, n * 8);
    where_t *w = cpool_alloc(pool, sizeof *w); /* shared: the workers write it */
    CHECK(in && out && w);
    if (!in || !out || !w) return;
    memset(w, 0, sizeof *w);
    for (size_t i = 0; i < n; i++) in[i] = (int64_t)i;
    for (int round = 0; round < 2; round++) {
        /* round 0: out is another buffer; round 1: in place, the output is the input */
        int64_t *dst = round == 0 ? out : in;
        *w = (where_t){in, in + n, dst, dst + n, 0, 0, 0};
        cpool_fn_t f = cpool_register_batch(pool, round == 0 ? "square_where" : "square_where_2",
                                            square_where, w, 8, 8);
        CHECK_RC(cpool_map(pool, f, in, 8, dst, 8, n, 0, NULL), 0);
        CHECK(atomic_load(&w->chunks) > 0);
        CHECK_EQ(atomic_load(&w->chunks_in_place), atomic_load(&w->chunks));
        CHECK_EQ(atomic_load(&w->items), n);
        size_t wrong = 0;
        for (size_t i = 0; i < n; i++) wrong += dst[i] != (int64_t)(i * i);
        CHECK_EQ(wrong, 0);
    }
    cpool_free(pool, in);
    cpool_free(pool, out);
    cpool_free(pool, w);
    uint64_t after = 1;
    cpool_arena_usage(pool, &after, NULL);
    CHECK_EQ(after, 0);
}

/* The same worker-side check shows that caller buffers outside the arena are staged. */
static void shouldStageCallerBuffersOutsideTheArena(void) {
    const size_t n = 10000;
    int64_t *in = malloc(n * 8), *out = malloc(n * 8);
    where_t *w = cpool_alloc(pool, sizeof *w);
    for (size_t i = 0; i < n; i++) in[i] = (int64_t)i;
    *w = (where_t){in, in + n, out, out + n, 0, 0, 0};
    cpool_fn_t f = cpool_register_batch(pool, "square_where_staged", square_where, w, 8, 8);
    CHECK_RC(cpool_map(pool, f, in, 8, out, 8, n, 0, NULL), 0);
    CHECK(atomic_load(&w->chunks) > 0);
    CHECK_EQ(atomic_load(&w->chunks_in_place), 0);
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) wrong += out[i] != (int64_t)(i * i);
    CHECK_EQ(wrong, 0);
    cpool_free(pool, w);
    free(in);
    free(out);
}

/* One side in a shared buffer, the other in the caller's own memory: the shared side
 * maps in place and the other is staged, in both directions. */
static void shouldMapWithOneBufferSharedAndTheOtherStaged(void) {
    const size_t n = 20000;
    int64_t *shared = cpool_alloc(pool, n * 8), *own = malloc(n * 8);
    where_t *w = cpool_alloc(pool, sizeof *w);
    CHECK(shared && own && w);
    if (!shared || !own || !w) return;
    for (int round = 0; round < 2; round++) {
        int64_t *in = round == 0 ? shared : own, *out = round == 0 ? own : shared;
        for (size_t i = 0; i < n; i++) in[i] = (int64_t)i;
        /* Count a chunk as "in place" when its shared side is the caller's buffer. */
        *w = round == 0 ? (where_t){in, in + n, (int64_t *)0, (int64_t *)UINTPTR_MAX, 0, 0, 0}
                        : (where_t){(int64_t *)0, (int64_t *)UINTPTR_MAX, out, out + n, 0, 0, 0};
        cpool_fn_t f = cpool_register_batch(pool, round == 0 ? "square_shared_in" : "square_shared_out",
                                            square_where, w, 8, 8);
        CHECK_RC(cpool_map(pool, f, in, 8, out, 8, n, 0, NULL), 0);
        CHECK(atomic_load(&w->chunks) > 0);
        CHECK_EQ(atomic_load(&w->chunks_in_place), atomic_load(&w->chunks));
        size_t wrong = 0;
        for (size_t i = 0; i < n; i++) wrong += out[i] != (int64_t)(i * i);
        CHECK_EQ(wrong, 0);
    }
    cpool_free(pool, shared);
    cpool_free(pool, w);
    free(own);
}

static void shouldMapLargerThanTheArenaByStreaming(void) {
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 2;
    o.arena_bytes = 256 << 10; /* 256 KiB for 16 MiB of data in and out */
    cpool_pool_t *small;
    CHECK_RC(cpool_create(&o, &small), 0);
    cpool_fn_t f = cpool_register(small, "square", "int64_t(int64_t)", (cpool_any_fn_t)t_square, 0);
    const size_t n = 1 << 20;
    int64_t *in = malloc(n * 8), *out = malloc(n * 8);
    for (size_t i = 0; i < n; i++) in[i] = (int64_t)i;
    CHECK_RC(cpool_map(small, f, in, 8, out, 8, n, 0, NULL), 0);
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) wrong += out[i] != (int64_t)(i * i);
    CHECK_EQ(wrong, 0);
    uint64_t used = 1;
    cpool_arena_usage(small, &used, NULL);
    CHECK_EQ(used, 0);
    cpool_destroy(small);
    free(in);
    free(out);
}

int main(void) {
    watchdog(120);
    pool = make_pool(2);
    RUN(shouldMapSquaresOnDirectAndLibffiPaths);
    RUN(shouldMapWithAnyChunkSize);
    RUN(shouldMapStridedRecordsOfSeveralArguments);
    RUN(shouldMapEveryDirectShape);
    RUN(shouldMapLibmCosRegisteredBySymbol);
    RUN(shouldMapTheBytesFormAndReportItsErrors);
    RUN(shouldRunBatchFunctionsWithTheirContext);
    RUN(shouldMapInPlaceInSharedBuffersWithoutCopies);
    RUN(shouldStageCallerBuffersOutsideTheArena);
    RUN(shouldMapWithOneBufferSharedAndTheOtherStaged);
    RUN(shouldMapLargerThanTheArenaByStreaming);
    cpool_destroy(pool);
    return finish();
}
