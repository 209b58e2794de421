/* A minimal test harness: CHECK fails the test with the expression and line; every
 * test program arms a watchdog so that a hang fails instead of stalling CI. */
#ifndef CPOOL_TEST_CHECK_H
#define CPOOL_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpool.h"

static int check_failures;

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures++;                                                      \
        }                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                             \
    do {                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                        \
        if (a_ != b_) {                                                            \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s = %lld, %s = %lld\n",      \
                    __FILE__, __LINE__, #a, a_, #b, b_);                           \
            check_failures++;                                                      \
        }                                                                          \
    } while (0)

/* Checks a cpool call returned `want`, printing cpool_strerror of what it got. */
#define CHECK_RC(call, want)                                                       \
    do {                                                                           \
        int rc_ = (int)(call);                                                     \
        if (rc_ != (want)) {                                                       \
            fprintf(stderr, "%s:%d: %s returned %d (%s), wanted %d (%s)\n",        \
                    __FILE__, __LINE__, #call, rc_, cpool_strerror(rc_), (int)(want), \
                    cpool_strerror(want));                                         \
            check_failures++;                                                      \
        }                                                                          \
    } while (0)

#define RUN(test)                                                                  \
    do {                                                                           \
        int before_ = check_failures;                                              \
        test();                                                                    \
        printf("%s %s\n", check_failures == before_ ? "ok  " : "FAIL", #test);     \
        fflush(stdout);                                                            \
    } while (0)

static inline void watchdog(unsigned seconds) { alarm(seconds); }

/* 1 while pid is a running (or sleeping) process; 0 once it is gone or a zombie.
 * kill(pid, 0) cannot tell: it succeeds for a zombie too. */
static inline int process_alive(int pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')');
    if (!close_paren || close_paren[1] != ' ') return 0;
    char state = close_paren[2];
    return state != 'Z' && state != 'X' && state != 'x';
}

/* Waits up to ms milliseconds for pid to be gone; returns 1 when it is. */
static inline int wait_process_gone(int pid, unsigned ms) {
    for (unsigned i = 0; i < ms; i += 5) {
        if (!process_alive(pid)) return 1;
        usleep(5000);
    }
    return !process_alive(pid);
}

static inline uint64_t test_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sum of one statistic over every worker slot of a pool. */
#define STAT_SUM(pool, field)                                                      \
    ({                                                                             \
        uint64_t sum_ = 0;                                                         \
        for (int w_ = 0; w_ < cpool_worker_count(pool); w_++) {                    \
            cpool_worker_stats_t s_;                                               \
            if (cpool_worker_stats(pool, (uint32_t)w_, &s_) == 0) sum_ += s_.field; \
        }                                                                          \
        sum_;                                                                      \
    })

static inline int finish(void) {
    printf("%s\n", check_failures ? "FAILED" : "PASSED");
    return check_failures ? 1 : 0;
}

static inline cpool_pool_t *make_pool(uint32_t workers) {
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = workers;
    cpool_pool_t *p = NULL;
    int rc = cpool_create(&o, &p);
    if (rc) {
        fprintf(stderr, "cpool_create: %s\n", cpool_strerror(rc));
        exit(2);
    }
    return p;
}

#endif
