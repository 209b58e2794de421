/* A minimal test harness: CHECK fails the test with the expression and line; every
 * test program arms a watchdog so that a hang fails instead of stalling CI. */
#ifndef CPOOL_TEST_CHECK_H
#define CPOOL_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
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
