#ifndef CPOOL_TESTFNS_H
#define CPOOL_TESTFNS_H
#include <stddef.h>
#include <stdint.h>
int64_t t_square(int64_t x);
int64_t t_add(int64_t a, int64_t b);
double t_scale(double x);
double t_hypot2(double a, double b);
int32_t t_neg32(int32_t x);
float t_half(float x);
int64_t t_mixed(int32_t a, double b, int8_t c);
int64_t t_noargs(void);
int64_t t_crash_at(int64_t x);
int64_t t_sleep_ms(int64_t x);
int64_t t_getpid(int64_t x);
int64_t t_reverse(const void *in, size_t in_bytes, void *out, size_t out_bytes);
int64_t t_print_lines(int64_t x);
void t_scale_bytes(const void *in, size_t in_bytes, void *out, size_t out_bytes);
int64_t t_batch_square(void *ctx, const void *in, size_t in_stride, void *out,
                       size_t out_stride, size_t count, volatile size_t *progress);
#endif
