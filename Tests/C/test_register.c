/* Registration after the workers started: the workers find the function through its
 * shared object, or report CPOOL_E_NOT_IN_WORKER; lookups by name. */
#include <dlfcn.h>
#include <string.h>

#include "check.h"
#include "testfns.h"

static int64_t local_quad(int64_t x) { return 4 * x; }

static void shouldRunAFunctionOfTheProgramRegisteredAfterStart(void) {
    cpool_pool_t *p = make_pool(2);
    int64_t x = 5, r = 0;
    cpool_fn_t f = cpool_register(p, "quad", "i64(i64)", (cpool_any_fn_t)local_quad, 0);
    CHECK(f >= 0);
    CHECK_RC(cpool_apply(p, f, &x, 8, &r, 8, 0, NULL), 0);
    CHECK_EQ(r, 20);
    CHECK_EQ(cpool_lookup(p, "quad"), f);
    cpool_destroy(p);
}

static void shouldRunAFunctionOfALibraryOpenedAfterStart(void) {
    cpool_pool_t *p = make_pool(2);
    void *h = dlopen(LATEFNS_PATH, RTLD_NOW);
    CHECK(h != NULL);
    if (!h) return;
    void *fn = dlsym(h, "late_triple");
    cpool_fn_t byptr = cpool_register(p, "triple", "i64(i64)", (cpool_any_fn_t)fn, 0);
    cpool_fn_t bysym = cpool_register_symbol(p, "triple2", LATEFNS_PATH, "late_triple", "i64(i64)", 0);
    CHECK(byptr >= 0 && bysym >= 0);
    int64_t in[100], out[100];
    for (int i = 0; i < 100; i++) in[i] = i;
    CHECK_RC(cpool_map(p, byptr, in, 8, out, 8, 100, 10, NULL), 0);
    for (int i = 0; i < 100; i++) CHECK_EQ(out[i], 3 * i);
    memset(out, 0, sizeof out);
    CHECK_RC(cpool_map(p, bysym, in, 8, out, 8, 100, 10, NULL), 0);
    for (int i = 0; i < 100; i++) CHECK_EQ(out[i], 3 * i);
    cpool_destroy(p);
    dlclose(h);
}

static void shouldReportAFunctionTheWorkersCannotReach(void) {
    /* Code that exists only in the parent: an address in no shared object. */
    cpool_pool_t *p = make_pool(1);
    unsigned char *fake_code = malloc(64);
    cpool_fn_t f = cpool_register(p, "ghost", "i64(i64)", (cpool_any_fn_t)(void *)fake_code, 0);
    CHECK(f >= 0);
    int64_t x = 1, r = 0;
    cpool_status_t st;
    CHECK_RC(cpool_apply(p, f, &x, 8, &r, 8, 0, &st), CPOOL_E_NOT_IN_WORKER);
    CHECK_EQ(st.code, CPOOL_E_NOT_IN_WORKER);
    cpool_fn_t sq = cpool_register(p, "square", "i64(i64)", (cpool_any_fn_t)t_square, 0);
    CHECK_RC(cpool_apply(p, sq, &x, 8, &r, 8, 0, NULL), 0);
    cpool_destroy(p);
    free(fake_code);
}

/* library NULL: the symbol is looked up in the running program and the libraries it
 * has loaded (here t_square of the test library the program links). */
static void shouldRegisterASymbolOfTheRunningProgram(void) {
    cpool_pool_t *p = make_pool(2);
    cpool_fn_t f = cpool_register_symbol(p, "square", NULL, "t_square", "i64(i64)", 0);
    CHECK(f >= 0);
    int64_t in[50], out[50];
    for (int i = 0; i < 50; i++) in[i] = i - 25;
    CHECK_RC(cpool_map(p, f, in, 8, out, 8, 50, 3, NULL), 0);
    for (int i = 0; i < 50; i++) CHECK_EQ(out[i], in[i] * in[i]);
    CHECK_RC(cpool_register_symbol(p, "nope", NULL, "no_such_symbol_anywhere", "i64(i64)", 0),
             CPOOL_E_SYMBOL);
    cpool_destroy(p);
}

int main(void) {
    watchdog(60);
    RUN(shouldRunAFunctionOfTheProgramRegisteredAfterStart);
    RUN(shouldRegisterASymbolOfTheRunningProgram);
    RUN(shouldRunAFunctionOfALibraryOpenedAfterStart);
    RUN(shouldReportAFunctionTheWorkersCannotReach);
    return finish();
}
