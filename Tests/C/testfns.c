/* Functions the tests register: a shared library so that the C tests and the Python
 * ctypes test use the same ones, and so that registration by symbol can find them. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t t_square(int64_t x) { return x * x; }
int64_t t_add(int64_t a, int64_t b) { return a + b; }
double t_scale(double x) { return 2.0 * x; }
double t_hypot2(double a, double b) { return a * a + b * b; }
int32_t t_neg32(int32_t x) { return -x; }
float t_half(float x) { return x / 2.0f; }
/* Mixed record: (int32, double, int8) -> int64, exercises padding through libffi. */
int64_t t_mixed(int32_t a, double b, int8_t c) { return (int64_t)a * 100 + (int64_t)b + c; }
int64_t t_noargs(void) { return 42; }

/* SIGSEGV on 500, abort on 600, _exit(3) on 700: the crash test's three deaths. */
int64_t t_crash_at(int64_t x) {
    if (x == 500) raise(SIGSEGV);
    if (x == 600) abort();
    if (x == 700) _exit(3);
    return x * x;
}

/* Sleeps x milliseconds, returns x. */
int64_t t_sleep_ms(int64_t x) {
    struct timespec ts = {x / 1000, (x % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {}
    return x;
}

int64_t t_getpid(int64_t x) { (void)x; return (int64_t)getpid(); }

/* Bytes form: output = input reversed; fails (returns -7) on input starting with 'X'. */
int64_t t_reverse(const void *in, size_t in_bytes, void *out, size_t out_bytes) {
    const unsigned char *i = in;
    unsigned char *o = out;
    if (in_bytes && i[0] == 'X') return -7;
    size_t n = in_bytes < out_bytes ? in_bytes : out_bytes;
    for (size_t k = 0; k < n; k++) o[k] = i[in_bytes - 1 - k];
    return (int64_t)n;
}

/* Bytes form returning void: scales an array of doubles by 2. */
void t_scale_bytes(const void *in, size_t in_bytes, void *out, size_t out_bytes) {
    const double *i = in;
    double *o = out;
    size_t n = (in_bytes < out_bytes ? in_bytes : out_bytes) / sizeof(double);
    for (size_t k = 0; k < n; k++) o[k] = 2.0 * i[k];
}

/* Batch form: out = in * in + *(int64_t*)ctx; fails items equal to -1. */
int64_t t_batch_square(void *ctx, const void *in, size_t in_stride, void *out,
                       size_t out_stride, size_t count, volatile size_t *progress) {
    int64_t add = ctx ? *(const int64_t *)ctx : 0;
    for (size_t k = 0; k < count; k++) {
        *progress = k;
        int64_t x;
        memcpy(&x, (const char *)in + k * in_stride, sizeof x);
        if (x == -1) return -9;
        int64_t r = x * x + add;
        memcpy((char *)out + k * out_stride, &r, sizeof r);
    }
    return 0;
}

/* Prints "out <x>" to stdout and "err <x>" to stderr, one line each; returns x. x ==
 * -1 prints a 100,000-character line of 'x' to stdout; x == -2 prints "tail" with no
 * newline. */
int64_t t_print_lines(int64_t x) {
    if (x == -1) {
        static char line[100001];
        memset(line, 'x', 100000);
        printf("%s\n", line);
    } else if (x == -2) {
        printf("tail");
    } else {
        printf("out %lld\n", (long long)x);
        fprintf(stderr, "err %lld\n", (long long)x);
    }
    return x;
}
