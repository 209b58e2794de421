/* Bad input gets a clear error code and the pool keeps working after each one. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "testfns.h"

static cpool_pool_t *pool;
static cpool_fn_t square;

/* The pool still computes correctly: asserted after every bad call. */
static void still_works(void) {
    int64_t in[100], out[100];
    for (int i = 0; i < 100; i++) in[i] = i;
    CHECK_RC(cpool_map(pool, square, in, 8, out, 8, 100, 0, NULL), 0);
    for (int i = 0; i < 100; i++) CHECK_EQ(out[i], i * i);
}

static void shouldRejectNullArguments(void) {
    cpool_pool_t *p = NULL;
    cpool_job_t *job = NULL;
    int64_t x = 1, r;
    CHECK_RC(cpool_create(NULL, NULL), -EINVAL);
    CHECK_RC(cpool_options_init(NULL), -EINVAL);
    CHECK_RC(cpool_register(NULL, "f", "i64(i64)", (cpool_any_fn_t)t_square, 0), -EINVAL);
    CHECK_RC(cpool_register(pool, NULL, "i64(i64)", (cpool_any_fn_t)t_square, 0), -EINVAL);
    CHECK_RC(cpool_register(pool, "f", NULL, (cpool_any_fn_t)t_square, 0), -EINVAL);
    CHECK_RC(cpool_register(pool, "f", "i64(i64)", NULL, 0), -EINVAL);
    CHECK_RC(cpool_register(pool, "", "i64(i64)", (cpool_any_fn_t)t_square, 0), -EINVAL);
    CHECK_RC(cpool_register_symbol(pool, "f", NULL, NULL, "i64(i64)", 0), -EINVAL);
    CHECK_RC(cpool_register_batch(pool, "f", NULL, NULL, 8, 8), -EINVAL);
    CHECK_RC(cpool_lookup(pool, NULL), -EINVAL);
    CHECK_RC(cpool_apply(NULL, square, &x, 8, &r, 8, 0, NULL), -EINVAL);
    CHECK_RC(cpool_apply(pool, square, NULL, 8, &r, 8, 0, NULL), -EINVAL);
    CHECK_RC(cpool_apply(pool, square, &x, 8, NULL, 8, 0, NULL), -EINVAL);
    CHECK_RC(cpool_submit(pool, square, &x, 8, &r, 8, 0, NULL), -EINVAL);
    CHECK_RC(cpool_map(pool, square, NULL, 8, &r, 8, 1, 0, NULL), -EINVAL);
    CHECK_RC(cpool_map_start(pool, square, &x, 8, &r, 8, 1, 0, NULL, NULL), -EINVAL);
    CHECK_RC(cpool_job_wait(NULL, 0), -EINVAL);
    CHECK_RC(cpool_job_done(NULL), -EINVAL);
    CHECK_RC(cpool_job_cancel(NULL), -EINVAL);
    CHECK_RC(cpool_job_status(NULL, NULL), -EINVAL);
    CHECK_RC(cpool_worker_stats(pool, 0, NULL), -EINVAL);
    CHECK_RC(cpool_worker_count(NULL), -EINVAL);
    CHECK(cpool_alloc(NULL, 8) == NULL);
    cpool_free(pool, NULL);
    cpool_free(NULL, &x);
    cpool_job_free(NULL);
    cpool_destroy(NULL);
    (void)p;
    (void)job;
    still_works();
}

static void shouldRejectBadOptions(void) {
    cpool_options_t o;
    cpool_pool_t *p = NULL;
    cpool_options_init(&o);
    o.ring_slots = 100; /* not a power of two */
    CHECK_RC(cpool_create(&o, &p), -EINVAL);
    cpool_options_init(&o);
    o.workers = 100000;
    CHECK_RC(cpool_create(&o, &p), -EINVAL);
    cpool_options_init(&o);
    o.arena_bytes = 10;
    CHECK_RC(cpool_create(&o, &p), -EINVAL);
    cpool_options_init(&o);
    o.struct_bytes = sizeof o + 8; /* from a newer header than this library */
    CHECK_RC(cpool_create(&o, &p), -EINVAL);
    CHECK(p == NULL);
}

static void shouldRejectUnknownFunctions(void) {
    int64_t x = 3, r = 0;
    CHECK_RC(cpool_apply(pool, 9999, &x, 8, &r, 8, 0, NULL), CPOOL_E_UNKNOWN_FUNCTION);
    CHECK_RC(cpool_apply(pool, 200, &x, 8, &r, 8, 0, NULL), CPOOL_E_UNKNOWN_FUNCTION);
    CHECK_RC(cpool_apply(pool, -1, &x, 8, &r, 8, 0, NULL), CPOOL_E_UNKNOWN_FUNCTION);
    CHECK_RC(cpool_map(pool, 77, &x, 8, &r, 8, 1, 0, NULL), CPOOL_E_UNKNOWN_FUNCTION);
    CHECK_RC(cpool_lookup(pool, "no such function"), CPOOL_E_UNKNOWN_FUNCTION);
    CHECK_RC(cpool_function_sizes(pool, 123, NULL, NULL), CPOOL_E_UNKNOWN_FUNCTION);
    still_works();
}

static void shouldRejectBadSignaturesNamesAndSymbols(void) {
    CHECK_RC(cpool_register(pool, "bad", "int64_t(int64_t", (cpool_any_fn_t)t_square, 0), CPOOL_E_SIGNATURE);
    CHECK_RC(cpool_register(pool, "bad", "quux(int64_t)", (cpool_any_fn_t)t_square, 0), CPOOL_E_SIGNATURE);
    CHECK_RC(cpool_register(pool, "bad", "int64_t(void*)", (cpool_any_fn_t)t_square, 0), CPOOL_E_SIGNATURE);
    CHECK_RC(cpool_register(pool, "square", "int64_t(int64_t)", (cpool_any_fn_t)t_square, 0), CPOOL_E_EXISTS);
    CHECK_RC(cpool_register_symbol(pool, "nolib", "libdoesnotexist.so.9", "f", "double(double)", 0), CPOOL_E_SYMBOL);
    CHECK_RC(cpool_register_symbol(pool, "nosym", "libm.so.6", "no_such_symbol", "double(double)", 0), CPOOL_E_SYMBOL);
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK_RC(cpool_register(pool, longname, "i64(i64)", (cpool_any_fn_t)t_square, 0), -ENAMETOOLONG);
    CHECK_RC(cpool_lookup(pool, "bad"), CPOOL_E_UNKNOWN_FUNCTION);
    still_works();
}

static void shouldRejectSizesThatDoNotMatchTheSignature(void) {
    int32_t small = 1;
    int64_t r;
    int32_t r32;
    int64_t x = 2;
    CHECK_RC(cpool_apply(pool, square, &small, 4, &r, 8, 0, NULL), CPOOL_E_SIZE);
    CHECK_RC(cpool_apply(pool, square, &x, 8, &r32, 4, 0, NULL), CPOOL_E_SIZE);
    int64_t in[4] = {1, 2, 3, 4}, out[4];
    CHECK_RC(cpool_map(pool, square, in, 4, out, 8, 2, 0, NULL), CPOOL_E_SIZE);
    still_works();
}

static void shouldRejectPayloadsLargerThanTheArena(void) {
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 1;
    o.arena_bytes = 1 << 20;
    cpool_pool_t *p;
    CHECK_RC(cpool_create(&o, &p), 0);
    cpool_fn_t sc = cpool_register(p, "scale_bytes", "void(const void*,size_t,void*,size_t)",
                                   (cpool_any_fn_t)t_scale_bytes, 0);
    size_t big = 2 << 20;
    char *in = calloc(1, big), *out = calloc(1, big);
    CHECK_RC(cpool_apply(p, sc, in, big, out, big, 0, NULL), CPOOL_E_TOO_LARGE);
    CHECK_RC(cpool_map(p, sc, in, big / 2, out, big / 2, 2, 0, NULL), CPOOL_E_TOO_LARGE);
    CHECK(cpool_alloc(p, big) == NULL);
    /* what fits still runs */
    double d[4] = {1, 2, 3, 4}, e[4];
    CHECK_RC(cpool_apply(p, sc, d, sizeof d, e, sizeof e, 0, NULL), 0);
    CHECK(e[3] == 8.0);
    cpool_destroy(p);
    free(in);
    free(out);
}

static void shouldRejectCallsAfterClose(void) {
    cpool_pool_t *p = make_pool(1);
    cpool_fn_t f = cpool_register(p, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    int64_t x = 5, r = 0;
    cpool_job_t *job;
    CHECK_RC(cpool_close(p), 0);
    CHECK_RC(cpool_close(p), 0); /* idempotent */
    CHECK_RC(cpool_apply(p, f, &x, 8, &r, 8, 0, NULL), CPOOL_E_CLOSED);
    CHECK_RC(cpool_submit(p, f, &x, 8, &r, 8, 0, &job), CPOOL_E_CLOSED);
    CHECK_RC(cpool_map(p, f, &x, 8, &r, 8, 1, 0, NULL), CPOOL_E_CLOSED);
    CHECK_RC(cpool_register(p, "g", "i64(i64)", (cpool_any_fn_t)t_square, 0), CPOOL_E_CLOSED);
    CHECK(cpool_alloc(p, 64) == NULL);
    CHECK_RC(cpool_join(p, 5000000000ull), 0);
    CHECK_RC(cpool_terminate(p), 0);
    cpool_destroy(p);
}

static void shouldRejectCallsOnADestroyedPool(void) {
    cpool_pool_t *p = make_pool(1);
    cpool_fn_t f = cpool_register(p, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    cpool_destroy(p);
    int64_t x = 5, r = 0;
    CHECK_RC(cpool_apply(p, f, &x, 8, &r, 8, 0, NULL), CPOOL_E_CLOSED);
    CHECK_RC(cpool_register(p, "g", "i64(i64)", (cpool_any_fn_t)t_square, 0), CPOOL_E_CLOSED);
    CHECK_RC(cpool_close(p), CPOOL_E_CLOSED);
    CHECK_RC(cpool_worker_count(p), CPOOL_E_CLOSED);
    cpool_destroy(p); /* a second destroy is a no-op */
}

static void shouldRejectSizesWhoseProductOverflows(void) {
    int64_t x[4] = {1, 2, 3, 4}, r[4];
    /* count x stride past SIZE_MAX, and a span that wraps the address space */
    CHECK_RC(cpool_map(pool, square, x, 8, r, 8, SIZE_MAX / 2, 0, NULL), -EOVERFLOW);
    CHECK_RC(cpool_map(pool, square, x, 8, r, 8, SIZE_MAX / 8 + 2, 0, NULL), -EOVERFLOW);
    CHECK_RC(cpool_map(pool, square, x, SIZE_MAX / 4, r, 8, 5, 0, NULL), -EOVERFLOW);
    CHECK_RC(cpool_map(pool, square, x, 8, r, 8, (SIZE_MAX - (uintptr_t)r) / 8 + 1, 0, NULL), -EOVERFLOW);
    cpool_job_t *job = NULL;
    CHECK_RC(cpool_map_start(pool, square, x, 8, r, 8, SIZE_MAX / 2, 0, NULL, &job), -EOVERFLOW);
    CHECK(job == NULL);
    still_works();
}

static void shouldRejectApplySizesOtherThanTheSignatures(void) {
    int64_t x[2] = {3, 4}, r[2] = {0, 0};
    CHECK_RC(cpool_apply(pool, square, x, 16, r, 8, 0, NULL), CPOOL_E_SIZE);
    CHECK_RC(cpool_apply(pool, square, x, 8, r, 16, 0, NULL), CPOOL_E_SIZE);
    cpool_job_t *job = NULL;
    CHECK_RC(cpool_submit(pool, square, x, 16, r, 8, 0, &job), CPOOL_E_SIZE);
    CHECK_RC(cpool_apply(pool, square, x, 8, r, 8, 0, NULL), 0);
    CHECK_EQ(r[0], 9);
    CHECK_EQ(r[1], 0); /* nothing written past the result */
    still_works();
}

static void shouldNeverReachALaterPoolThroughADestroyedHandle(void) {
    for (int round = 0; round < 20; round++) {
        cpool_pool_t *old = make_pool(1);
        cpool_fn_t f = cpool_register(old, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
        cpool_destroy(old);
        cpool_pool_t *later = make_pool(1);
        cpool_fn_t g = cpool_register(later, "crash_at", "i64(i64)", (cpool_any_fn_t)t_crash_at, 0);
        int64_t x = 500, r = 0;
        CHECK_RC(cpool_apply(old, f, &x, 8, &r, 8, 0, NULL), CPOOL_E_CLOSED);
        CHECK_RC(cpool_close(old), CPOOL_E_CLOSED);
        cpool_destroy(old); /* a no-op: it must not destroy `later` */
        x = 6;
        CHECK_RC(cpool_apply(later, g, &x, 8, &r, 8, 0, NULL), 0);
        CHECK_EQ(r, 36);
        cpool_destroy(later);
    }
}

static void shouldRejectAFunctionIdOfAnotherPool(void) {
    cpool_pool_t *other = make_pool(1);
    cpool_fn_t crash = cpool_register(other, "crash_at", "i64(i64)", (cpool_any_fn_t)t_crash_at, 0);
    int64_t x = 500, r = 0;
    /* `crash` has index 0 in `other`; `pool`'s index 0 is square: neither may run */
    CHECK_RC(cpool_apply(pool, crash, &x, 8, &r, 8, 0, NULL), CPOOL_E_UNKNOWN_FUNCTION);
    CHECK_RC(cpool_apply(other, square, &x, 8, &r, 8, 0, NULL), CPOOL_E_UNKNOWN_FUNCTION);
    CHECK_RC(cpool_function_sizes(other, square, NULL, NULL), CPOOL_E_UNKNOWN_FUNCTION);
    cpool_destroy(other);
    still_works();
}

static void shouldReportFullTablesOfFunctionsAndJobs(void) {
    cpool_pool_t *p = make_pool(1);
    char name[32];
    for (int i = 0; i < 256; i++) {
        snprintf(name, sizeof name, "f%d", i);
        CHECK(cpool_register(p, name, "i64(i64)", (cpool_any_fn_t)t_square, 0) >= 0);
    }
    CHECK_RC(cpool_register(p, "f256", "i64(i64)", (cpool_any_fn_t)t_square, 0), CPOOL_E_FULL);
    cpool_fn_t f = cpool_lookup(p, "f7");
    enum { JOBS = 4096 };
    static cpool_job_t *jobs[JOBS];
    static int64_t in[JOBS], out[JOBS];
    for (int i = 0; i < JOBS; i++) {
        in[i] = i;
        CHECK_RC(cpool_submit(p, f, &in[i], 8, &out[i], 8, 0, &jobs[i]), 0);
    }
    cpool_job_t *extra = NULL;
    int64_t x = 1, r = 0;
    CHECK_RC(cpool_submit(p, f, &x, 8, &r, 8, 0, &extra), CPOOL_E_FULL);
    CHECK_RC(cpool_apply(p, f, &x, 8, &r, 8, 0, NULL), CPOOL_E_FULL);
    int wrong = 0;
    for (int i = 0; i < JOBS; i++) {
        wrong += cpool_job_wait(jobs[i], 0) != 0 || out[i] != (int64_t)i * i;
        cpool_job_free(jobs[i]);
    }
    CHECK_EQ(wrong, 0);
    CHECK_RC(cpool_apply(p, f, &x, 8, &r, 8, 0, NULL), 0); /* a freed slot serves again */
    CHECK_EQ(r, 1);
    cpool_destroy(p);
}

static void shouldRejectAWorkerSlotOutOfRange(void) {
    cpool_worker_stats_t s;
    CHECK_RC(cpool_worker_stats(pool, 2, &s), -ERANGE);
    CHECK_RC(cpool_worker_stats(pool, UINT32_MAX, &s), -ERANGE);
    CHECK_RC(cpool_worker_stats(pool, 1, &s), 0);
}

/* A caller built against an older header passes a smaller options struct: the fields
 * it does not know take their defaults, whatever lies past its end. */
static void shouldAcceptAnOlderSmallerOptionsStruct(void) {
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 1;
    o.max_memory_growth_bytes = 1; /* past the old struct's end: must be ignored */
    o.struct_bytes = offsetof(cpool_options_t, init_timeout_ns);
    cpool_pool_t *p = NULL;
    CHECK_RC(cpool_create(&o, &p), 0);
    if (!p) return;
    cpool_fn_t f = cpool_register(p, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    for (int64_t x = 0; x < 20; x++) {
        int64_t r = 0;
        CHECK_RC(cpool_apply(p, f, &x, 8, &r, 8, 0, NULL), 0);
        CHECK_EQ(r, x * x);
    }
    CHECK_EQ(STAT_SUM(p, recycles), 0); /* a growth limit of 1 byte would recycle each time */
    CHECK_EQ(STAT_SUM(p, restarts), 0);
    cpool_destroy(p);
}

static void shouldNameEveryErrorCode(void) {
    for (int c = CPOOL_E_FULL; c <= CPOOL_E_CLOSED; c++) {
        const char *s = cpool_strerror(c);
        CHECK(s && strcmp(s, "unknown error code") != 0);
    }
    CHECK(strcmp(cpool_strerror(-EINVAL), "Invalid argument") == 0);
    CHECK(strcmp(cpool_strerror(-99999), "unknown error code") == 0);
    CHECK(strcmp(cpool_strerror(12345), "unknown error code") == 0);
}

int main(void) {
    watchdog(120);
    pool = make_pool(2);
    square = cpool_register(pool, "square", "int64_t(int64_t)", (cpool_any_fn_t)t_square, 0);
    RUN(shouldRejectNullArguments);
    RUN(shouldRejectBadOptions);
    RUN(shouldRejectUnknownFunctions);
    RUN(shouldRejectBadSignaturesNamesAndSymbols);
    RUN(shouldRejectSizesThatDoNotMatchTheSignature);
    RUN(shouldRejectPayloadsLargerThanTheArena);
    RUN(shouldRejectCallsAfterClose);
    RUN(shouldRejectCallsOnADestroyedPool);
    RUN(shouldRejectSizesWhoseProductOverflows);
    RUN(shouldRejectApplySizesOtherThanTheSignatures);
    RUN(shouldNeverReachALaterPoolThroughADestroyedHandle);
    RUN(shouldRejectAFunctionIdOfAnotherPool);
    RUN(shouldReportFullTablesOfFunctionsAndJobs);
    RUN(shouldRejectAWorkerSlotOutOfRange);
    RUN(shouldAcceptAnOlderSmallerOptionsStruct);
    RUN(shouldNameEveryErrorCode);
    cpool_destroy(pool);
    return finish();
}
