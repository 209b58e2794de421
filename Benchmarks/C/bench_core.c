/* The C core's benchmark: the `tiny-c`, `latency`, `idle-latency`, `payload` and
 * schedule (pareto, one-slow, skew) workloads on 2 workers (and the tiny map on 4
 * workers, more processes than cores). Output: one line per figure,
 * "name<TAB>unit<TAB>run1,run2,...", read by Benchmarks/report.py, which takes the
 * median and prints the table next to the Python pools' figures. */
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpool.h"

static int64_t square(int64_t x) { return x * x; }

/* payload: scales an array of doubles by 2, bytes in and out. */
static void scale_bytes(const void *in, size_t in_bytes, void *out, size_t out_bytes) {
    const double *i = in;
    double *o = out;
    size_t n = (in_bytes < out_bytes ? in_bytes : out_bytes) / sizeof(double);
    for (size_t k = 0; k < n; k++) o[k] = 2.0 * i[k];
}
static int64_t identity(int64_t x) { return x; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *v, size_t n, double q) {
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i];
}

/* One line per figure: name, unit, and every run's value; Benchmarks/report.py takes
 * the median of them, the same way for every pool. */
static void report(const char *name, double *runs, int n, const char *unit) {
    printf("%s\t%s\t", name, unit);
    for (int i = 0; i < n; i++) printf("%s%.6g", i ? "," : "", runs[i]);
    printf("\n");
    fflush(stdout);
}

static cpool_pool_t *make(uint32_t workers) {
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = workers;
    cpool_pool_t *p;
    int rc = cpool_create(&o, &p);
    if (rc) {
        fprintf(stderr, "cpool_create: %s\n", cpool_strerror(rc));
        exit(1);
    }
    return p;
}

static void die_rc(const char *what, int rc) {
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", what, cpool_strerror(rc));
        exit(1);
    }
}

/* tiny: map x*x over n int64 values; tasks/s. shared: buffers in the pool's arena. */
static void bench_tiny(const char *name, uint32_t workers, uint32_t flags, int shared,
                       size_t n, int runs) {
    cpool_pool_t *p = make(workers);
    cpool_fn_t f = cpool_register(p, "square", "int64_t(int64_t)", (cpool_any_fn_t)square, flags);
    die_rc("register", f);
    int64_t *in = shared ? cpool_alloc(p, n * 8) : malloc(n * 8);
    int64_t *out = shared ? cpool_alloc(p, n * 8) : malloc(n * 8);
    if (!in || !out) die_rc("alloc", -12);
    for (size_t i = 0; i < n; i++) in[i] = (int64_t)i;
    die_rc("warm-up map", cpool_map(p, f, in, 8, out, 8, n, 0, NULL));
    double *rate = calloc((size_t)runs, sizeof *rate);
    for (int r = 0; r < runs; r++) {
        memset(out, 0, n * 8);
        double t0 = now_s();
        die_rc("map", cpool_map(p, f, in, 8, out, 8, n, 0, NULL));
        rate[r] = (double)n / (now_s() - t0);
        for (size_t i = 0; i < n; i++) /* every run's every result, outside the timing */
            if (out[i] != (int64_t)(i * i)) die_rc("wrong result", -22);
    }
    report(name, rate, runs, "tasks/s");
    free(rate);
    if (!shared) {
        free(in);
        free(out);
    }
    cpool_destroy(p);
}

/* latency: sequential apply(identity, i) round trips; p50 and p99 in microseconds.
 * idle_us > 0 leaves the caller idle that long between calls (workers fall asleep). */
static void bench_latency(const char *name, size_t calls, long idle_us, int runs) {
    cpool_pool_t *p = make(2);
    cpool_fn_t f = cpool_register(p, "identity", "int64_t(int64_t)", (cpool_any_fn_t)identity, 0);
    die_rc("register", f);
    double *lat = malloc(calls * sizeof *lat);
    double *p50 = calloc((size_t)runs, sizeof *p50), *p99 = calloc((size_t)runs, sizeof *p99);
    for (int64_t i = 0; i < 1000; i++) { /* warm */
        int64_t r;
        cpool_apply(p, f, &i, 8, &r, 8, 0, NULL);
    }
    for (int run = 0; run < runs; run++) {
        for (size_t i = 0; i < calls; i++) {
            if (idle_us) {
                struct timespec ts = {0, idle_us * 1000};
                nanosleep(&ts, NULL);
            }
            int64_t x = (int64_t)i, r = -1;
            double t0 = now_s();
            int rc = cpool_apply(p, f, &x, 8, &r, 8, 0, NULL);
            lat[i] = (now_s() - t0) * 1e6;
            if (rc || r != x) die_rc("apply", rc ? rc : -22);
        }
        p50[run] = percentile(lat, calls, 0.50);
        p99[run] = percentile(lat, calls, 0.99);
    }
    char label[128];
    snprintf(label, sizeof label, "%s_p50", name);
    report(label, p50, runs, "us");
    snprintf(label, sizeof label, "%s_p99", name);
    report(label, p99, runs, "us");
    free(lat);
    free(p50);
    free(p99);
    cpool_destroy(p);
}

/* payload: 64 arrays of 1 MiB in, each scaled by 2 and returned; MiB/s moved (in + out). */
static void bench_payload(int runs) {
    cpool_pool_t *p = make(2);
    cpool_fn_t f = cpool_register(p, "scale", "void(const void*,size_t,void*,size_t)", (cpool_any_fn_t)scale_bytes, 0);
    die_rc("register", f);
    const size_t per = 1 << 20, n = 64;
    double *in = malloc(per * n), *out = malloc(per * n);
    for (size_t i = 0; i < per * n / 8; i++) in[i] = (double)i;
    die_rc("warm-up", cpool_map(p, f, in, per, out, per, n, 1, NULL));
    double *rate = calloc((size_t)runs, sizeof *rate);
    for (int r = 0; r < runs; r++) {
        memset(out, 0, per * n);
        double t0 = now_s();
        die_rc("map", cpool_map(p, f, in, per, out, per, n, 1, NULL));
        rate[r] = 2.0 * (double)n / (now_s() - t0); /* MiB in + MiB out */
        for (size_t i = 0; i < per * n / 8; i++)
            if (out[i] != 2.0 * in[i]) die_rc("wrong result", -22);
    }
    report("payload_c", rate, runs, "MiB/s");
    free(rate);
    free(in);
    free(out);
    cpool_destroy(p);
}

/* ------------------------------------------------------------ schedules */

/* Busy-waits us microseconds; returns the loop count (at least 1, so that a run
 * preempted past its end still counts, and results can be checked > 0). */
static int64_t spin_us(int64_t us) {
    const double end = now_s() + (double)us / 1e6;
    int64_t n = 1;
    while (now_s() < end) n++;
    return n;
}

static uint64_t lcg(uint64_t *seed) {
    *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
    return *seed;
}

/* The task durations (us) of each schedule workload; the same generator and seed in
 * Benchmarks/Swift and Benchmarks/Python. */
typedef enum { PARETO, ONE_SLOW, SKEW } schedule_t;
static const char *const schedule_names[] = {"pareto", "one_slow", "skew"};

static size_t durations(schedule_t kind, int64_t *d) {
    uint64_t seed = 42;
    switch (kind) {
    case PARETO: /* 5,000 tasks, Pareto alpha 1.5 from 20 us, capped at 20 ms */
        for (size_t i = 0; i < 5000; i++) {
            const double u = ((double)(lcg(&seed) >> 11) + 0.5) / 9007199254740992.0;
            const double x = 20.0 * pow(u, -1.0 / 1.5);
            d[i] = x > 20000.0 ? 20000 : (int64_t)x;
        }
        return 5000;
    case ONE_SLOW: /* 1,000 tasks: the first 300 ms, the others 200 us */
        for (size_t i = 0; i < 1000; i++) d[i] = i == 0 ? 300000 : 200;
        return 1000;
    case SKEW: /* 2,000 tasks: 2% of 10 ms, the others 10 us */
        for (size_t i = 0; i < 2000; i++) d[i] = (lcg(&seed) >> 33) % 50 == 0 ? 10000 : 10;
        return 2000;
    }
    return 0;
}

/* The ideal makespan on `workers` (seconds): the larger of the work shared evenly
 * and the longest task. */
static double ideal_s(const int64_t *d, size_t n, uint32_t workers) {
    double sum = 0, max = 0;
    for (size_t i = 0; i < n; i++) {
        sum += (double)d[i];
        if ((double)d[i] > max) max = (double)d[i];
    }
    return (sum / workers > max ? sum / workers : max) / 1e6;
}

/* Two plain threads taking tasks one by one from a shared counter: the reference. */
typedef struct thread_share {
    const int64_t *d;
    int64_t *out;
    size_t n;
    _Atomic size_t next;
} thread_share_t;

static void *take_tasks(void *arg) {
    thread_share_t *s = arg;
    for (size_t i; (i = atomic_fetch_add(&s->next, 1)) < s->n;) s->out[i] = spin_us(s->d[i]);
    return NULL;
}

static void run_threads(const int64_t *d, int64_t *out, size_t n) {
    thread_share_t share = {d, out, n, 0};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, take_tasks, &share);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
}

/* Makespan against the ideal for each schedule workload: the pool with automatic
 * chunks, with chunks of 1, and two plain threads. */
static void bench_schedules(int runs) {
    cpool_pool_t *p = make(2);
    cpool_fn_t f = cpool_register(p, "spin_us", "int64_t(int64_t)", (cpool_any_fn_t)spin_us, 0);
    die_rc("register", f);
    int64_t *d = malloc(5000 * sizeof *d), *out = malloc(5000 * sizeof *out);
    double *ratio = calloc((size_t)runs, sizeof *ratio);
    for (schedule_t kind = PARETO; kind <= SKEW; kind++) {
        const size_t n = durations(kind, d);
        const double ideal = ideal_s(d, n, 2);
        for (int how = 0; how < 3; how++) { /* automatic, chunks of 1, threads */
            for (int r = 0; r < runs; r++) {
                memset(out, 0, n * sizeof *out);
                const double t0 = now_s();
                if (how == 2) run_threads(d, out, n);
                else die_rc("map", cpool_map(p, f, d, 8, out, 8, n, how == 0 ? 0 : 1, NULL));
                ratio[r] = (now_s() - t0) / ideal;
                for (size_t i = 0; i < n; i++)
                    if (out[i] < 1) die_rc("wrong result", -22);
            }
            char name[64];
            snprintf(name, sizeof name, "%s_%s", schedule_names[kind],
                     how == 0 ? "c_auto" : how == 1 ? "c_chunk1" : "threads");
            report(name, ratio, runs, "×ideal");
        }
    }
    free(ratio);
    free(d);
    free(out);
    cpool_destroy(p);
}

/* --orphan-child: make a pool, print its worker pids, and wait to be killed. */
static int orphan_child(void) {
    cpool_pool_t *p = make(2);
    for (uint32_t w = 0; w < 2; w++) {
        cpool_worker_stats_t s;
        cpool_worker_stats(p, w, &s);
        printf("%d%s", s.pid, w == 1 ? "\n" : " ");
    }
    fflush(stdout);
    for (;;) pause();
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--orphan-child") == 0) return orphan_child();
    int runs = 5, quick = 0;
    static const struct option opts[] = {
        {"runs", required_argument, 0, 'r'}, {"quick", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "r:qh", opts, NULL)) != -1;) {
        if (c == 'r') runs = atoi(optarg);
        else if (c == 'q') quick = 1;
        else {
            printf("usage: %s [--runs N] [--quick]\n", argv[0]);
            return c == 'h' ? 0 : 2;
        }
    }
    if (runs < 3) runs = 3; /* a median needs at least three */
    const size_t n = 1000000;
    fprintf(stderr, "[C API] tiny-c...\n");
    bench_tiny("tiny_c_direct", 2, 0, 0, n, runs);
    bench_tiny("tiny_c_direct_shared", 2, 0, 1, n, runs);
    bench_tiny("tiny_c_ffi", 2, CPOOL_REGISTER_NO_DIRECT, 0, n, runs);
    bench_tiny("tiny_c_ffi_shared", 2, CPOOL_REGISTER_NO_DIRECT, 1, n, runs);
    bench_tiny("tiny_c_direct_4_workers", 4, 0, 0, n, runs);
    fprintf(stderr, "[C API] latency, payload...\n");
    bench_latency("latency", quick ? 2000 : 10000, 0, runs);
    bench_payload(runs);
    bench_latency("idle_latency", quick ? 300 : 2000, 1000, quick ? 1 : 3);
    fprintf(stderr, "[C API] pareto, one-slow, skew schedules...\n");
    bench_schedules(runs);
    return 0;
}
