/* A user's first program against the installed C API, in strict C99: register a
 * function (a function pointer cast to cpool_any_fn_t, valid ISO C), map it, check. */
#include <cpool.h>
#include <math.h>
#include <stdio.h>

static double half(double x) { return x / 2; }

int main(void) {
    cpool_options_t o;
    cpool_pool_t *pool;
    double in[1000], out[1000];
    cpool_fn_t f, g;
    int i, rc;
    cpool_options_init(&o);
    o.workers = 2;
    if ((rc = cpool_create(&o, &pool)) != 0) {
        fprintf(stderr, "cpool_create: %s\n", cpool_strerror(rc));
        return 1;
    }
    f = cpool_register(pool, "half", "double(double)", (cpool_any_fn_t)half, 0);
    g = cpool_register_symbol(pool, "sqrt", "libm.so.6", "sqrt", "double(double)", 0);
    for (i = 0; i < 1000; i++) in[i] = i;
    rc = f < 0 || g < 0 ? -1 : cpool_map(pool, f, in, sizeof in[0], out, sizeof out[0], 1000, 0, NULL);
    for (i = 0; rc == 0 && i < 1000; i++)
        if (out[i] != i / 2.0) rc = -2;
    if (rc == 0) rc = cpool_map(pool, g, in, sizeof in[0], out, sizeof out[0], 1000, 0, NULL);
    for (i = 0; rc == 0 && i < 1000; i++)
        if (out[i] != sqrt((double)i)) rc = -3;
    cpool_destroy(pool);
    printf("%s\n", rc == 0 ? "consumer ok" : "consumer FAILED");
    return rc == 0 ? 0 : 1;
}
