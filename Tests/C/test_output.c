/* Outputs of any size (cpool_task_output, cpool_job_output): results larger than the
 * output ring arrive whole, error payloads come with every failure, an item stopped
 * from outside has none, and the calls refuse what they cannot do. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "check.h"
#include "testfns.h"

static cpool_pool_t *pool;

/* The byte at k of item n's output: varies with both, so a misplaced piece shows. */
static unsigned char pattern(int64_t n, size_t k) { return (unsigned char)(n * 31 + k * 7 + (k >> 12)); }

/* Item i's input is a size n; its output is n bytes of pattern(n, ...). */
static int64_t sized_output(void *ctx, const void *in, size_t in_stride, void *out, size_t out_stride,
                            size_t count, volatile size_t *progress) {
    (void)ctx, (void)out, (void)out_stride;
    for (size_t i = 0; i < count; i++) {
        *progress = i;
        int64_t n;
        memcpy(&n, (const char *)in + i * in_stride, 8);
        unsigned char *buf = malloc(n ? (size_t)n : 1);
        for (size_t k = 0; k < (size_t)n; k++) buf[k] = pattern(n, k);
        int rc = cpool_task_output(buf, (size_t)n);
        free(buf);
        if (rc) return rc;
    }
    return 0;
}

/* Every item fails with a 70 KiB payload that names it. */
#define PAYLOAD_BYTES (70u << 10)
static int64_t failing_with_payload(void *ctx, const void *in, size_t in_stride, void *out,
                                    size_t out_stride, size_t count, volatile size_t *progress) {
    (void)ctx, (void)out, (void)out_stride;
    *progress = 0;
    int64_t x;
    memcpy(&x, in, 8);
    (void)in_stride, (void)count;
    static unsigned char payload[PAYLOAD_BYTES];
    memset(payload, (int)(x & 0xff), sizeof payload);
    memcpy(payload, &x, 8);
    cpool_task_output(payload, sizeof payload);
    return -5;
}

static int64_t check_output(cpool_job_t *job, size_t index, int64_t n) {
    const void *bytes;
    size_t count;
    int rc = cpool_job_output(job, index, &bytes, &count);
    if (rc) return rc;
    if (count != (size_t)n) return -1000;
    for (size_t k = 0; k < count; k++)
        if (((const unsigned char *)bytes)[k] != pattern(n, k)) return -2000;
    return 0;
}

static void shouldReturnOutputsOfEverySizeLargerThanTheRingIncluded(void) {
    cpool_fn_t fn = cpool_register_batch(pool, "sized", sized_output, NULL, 8, 0);
    CHECK(fn >= 0);
    /* The ring is 64 KiB: everything from 32 KiB on goes in pieces. */
    static const int64_t sizes[] = {0, 1, 7, 39, 40, 41, 100, 4095, 4096, 65536, 100000, 1 << 20, 10 << 20, 0, 3};
    enum { N = sizeof sizes / sizeof sizes[0] };
    cpool_status_t st[N];
    cpool_job_t *job;
    CHECK_RC(cpool_map_start(pool, fn, sizes, 8, NULL, 0, N, 1, st, &job), 0);
    CHECK_RC(cpool_job_wait(job, 0), 0);
    for (size_t i = 0; i < N; i++) {
        CHECK_EQ(st[i].code, 0);
        CHECK_RC(check_output(job, i, sizes[i]), 0);
    }
    cpool_job_free(job);

    /* Many small outputs through automatic chunks and slices. */
    enum { M = 20000 };
    static int64_t many[M];
    for (size_t i = 0; i < M; i++) many[i] = (int64_t)(i % 97);
    CHECK_RC(cpool_map_start(pool, fn, many, 8, NULL, 0, M, 0, NULL, &job), 0);
    CHECK_RC(cpool_job_wait(job, 0), 0);
    int bad = 0;
    for (size_t i = 0; i < M; i++) bad += check_output(job, i, many[i]) != 0;
    CHECK_EQ(bad, 0);
    cpool_job_free(job);

    /* A submitted task with an output of 3 MiB. */
    int64_t big = 3 << 20;
    CHECK_RC(cpool_submit(pool, fn, &big, 8, NULL, 0, 0, &job), 0);
    CHECK_RC(cpool_job_wait(job, 0), 0);
    CHECK_RC(check_output(job, 0, big), 0);
    cpool_job_free(job);
}

static void shouldCarryTheErrorPayloadOfEveryFailure(void) {
    cpool_fn_t fn = cpool_register_batch(pool, "failing", failing_with_payload, NULL, 8, 0);
    enum { N = 300 };
    static int64_t in[N];
    for (int64_t i = 0; i < N; i++) in[i] = i;
    cpool_job_t *job;
    CHECK_RC(cpool_map_start(pool, fn, in, 8, NULL, 0, N, 0, NULL, &job), 0);
    CHECK_RC(cpool_job_wait(job, 0), CPOOL_E_TASK_FAILED);
    CHECK_EQ(cpool_job_failures(job, NULL, NULL, 0), N);
    int bad = 0;
    for (size_t i = 0; i < N; i++) {
        const unsigned char *p;
        size_t n;
        int64_t x = -1;
        if (cpool_job_output(job, i, (const void **)&p, &n) != 0 || n != PAYLOAD_BYTES) {
            bad++;
            continue;
        }
        memcpy(&x, p, 8);
        if (x != (int64_t)i || p[PAYLOAD_BYTES - 1] != (unsigned char)(i & 0xff)) bad++;
    }
    CHECK_EQ(bad, 0);
    cpool_job_free(job);
}

/* Writes "partial", then crashes on the first run of each item whose input is odd
 * (the shared counter at ctx tells runs apart); the run after writes "good". */
static int64_t crash_after_output(void *ctx, const void *in, size_t in_stride, void *out,
                                  size_t out_stride, size_t count, volatile size_t *progress) {
    (void)out, (void)out_stride;
    _Atomic int64_t *runs = ctx;
    for (size_t i = 0; i < count; i++) {
        *progress = i;
        int64_t x;
        memcpy(&x, (const char *)in + i * in_stride, 8);
        if (x % 2) {
            cpool_task_output("partial", 7);
            if (atomic_fetch_add(&runs[x], 1) == 0 || x == 7) raise(SIGKILL);
        }
        cpool_task_output("good", 4);
    }
    return 0;
}

static void shouldForgetTheOutputOfAnItemThatCrashedOrRunsAgain(void) {
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 2;
    o.crash_retries = 1;
    o.output_bytes = 64 << 10;
    cpool_pool_t *p;
    CHECK_RC(cpool_create(&o, &p), 0);
    _Atomic int64_t *runs = cpool_alloc(p, 16 * sizeof *runs);
    memset((void *)runs, 0, 16 * sizeof *runs);
    cpool_fn_t fn = cpool_register_batch(p, "crash_after_output", crash_after_output, (void *)runs, 8, 0);
    int64_t in[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    cpool_status_t st[10];
    CHECK_RC(cpool_map(p, fn, in, 8, NULL, 0, 10, 0, st), CPOOL_E_TASK_FAILED);
    cpool_job_t *job;
    CHECK_RC(cpool_map_start(p, fn, in, 8, NULL, 0, 10, 1, st, &job), 0);
    CHECK_RC(cpool_job_wait(job, 0), CPOOL_E_TASK_FAILED);
    for (size_t i = 0; i < 10; i++) {
        const void *b;
        size_t n;
        CHECK_RC(cpool_job_output(job, i, &b, &n), 0);
        if (i == 7) { /* crashes every time: no output, not "partial" */
            CHECK_EQ(st[i].code, CPOOL_E_CRASHED);
            CHECK_EQ(n, 0);
            CHECK(b == NULL);
        } else {
            CHECK_EQ(st[i].code, 0);
            CHECK_EQ(n, 4);
            CHECK(n == 4 && memcmp(b, "good", 4) == 0);
        }
    }
    cpool_job_free(job);
    cpool_free(p, (void *)runs);
    cpool_destroy(p);
}

static void shouldRefuseWhatItCannotDo(void) {
    CHECK_RC(cpool_task_output("x", 1), -EPERM); /* not in a worker */
    cpool_fn_t fn = cpool_lookup(pool, "sized");
    int64_t n = 10, ms = 200;
    cpool_job_t *job;
    CHECK_RC(cpool_submit(pool, fn, &n, 8, NULL, 0, 0, &job), 0);
    CHECK_RC(cpool_job_wait(job, 0), 0);
    const void *b;
    size_t count;
    CHECK_RC(cpool_job_output(job, 1, &b, &count), -ERANGE);
    CHECK_RC(cpool_job_output(job, 0, NULL, &count), -EINVAL);
    CHECK_RC(cpool_job_output(NULL, 0, &b, &count), -EINVAL);
    cpool_job_free(job);
    cpool_fn_t sleeper = cpool_register(pool, "sleep_ms", "int64_t(int64_t)", (cpool_any_fn_t)t_sleep_ms, 0);
    int64_t r;
    CHECK_RC(cpool_submit(pool, sleeper, &ms, 8, &r, 8, 0, &job), 0);
    CHECK_RC(cpool_job_output(job, 0, &b, &count), -EBUSY);
    CHECK_RC(cpool_job_wait(job, 0), 0);
    CHECK_RC(cpool_job_output(job, 0, &b, &count), 0); /* a scalar function: no output */
    CHECK_EQ(count, 0);
    cpool_job_free(job);
    cpool_options_t o;
    cpool_options_init(&o);
    o.output_bytes = 100; /* too small for any record */
    cpool_pool_t *p = NULL;
    CHECK_RC(cpool_create(&o, &p), -EINVAL);
}

int main(void) {
    watchdog(120);
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 2;
    o.output_bytes = 64 << 10;
    CHECK_RC(cpool_create(&o, &pool), 0);
    RUN(shouldReturnOutputsOfEverySizeLargerThanTheRingIncluded);
    RUN(shouldCarryTheErrorPayloadOfEveryFailure);
    RUN(shouldForgetTheOutputOfAnItemThatCrashedOrRunsAgain);
    RUN(shouldRefuseWhatItCannotDo);
    cpool_destroy(pool);
    return finish();
}
