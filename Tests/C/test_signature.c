/* The signature parser: what parses, the record layout it gives, and what it refuses. */
#include <string.h>

#include "check.h"
#include "signature.h"

static void shouldParseScalarSignaturesWithCLayout(void) {
    cpool__signature_t s;
    CHECK_RC(cpool__signature_parse("int64_t(int64_t)", &s), 0);
    CHECK_EQ(s.nargs, 1);
    CHECK_EQ(s.record_bytes, 8);
    CHECK_EQ(s.result_bytes, 8);
    CHECK_EQ(s.direct, DIRECT_I64_I64);

    CHECK_RC(cpool__signature_parse(" double ( double , double ) ", &s), 0);
    CHECK_EQ(s.direct, DIRECT_F64_F64_F64);
    CHECK_EQ(s.offsets[1], 8);

    CHECK_RC(cpool__signature_parse("i64(i32,f64,i8)", &s), 0);
    CHECK_EQ(s.offsets[0], 0);
    CHECK_EQ(s.offsets[1], 8);
    CHECK_EQ(s.offsets[2], 16);
    CHECK_EQ(s.record_bytes, 24); /* padded like the C struct */
    CHECK_EQ(s.direct, DIRECT_NONE);

    CHECK_RC(cpool__signature_parse("uint64_t(unsigned long long)", &s), 0);
    CHECK_EQ(s.direct, DIRECT_I64_I64);
    CHECK_RC(cpool__signature_parse("float(float)", &s), 0);
    CHECK_EQ(s.result_bytes, 4);
    CHECK_RC(cpool__signature_parse("int64_t(void)", &s), 0);
    CHECK_EQ(s.nargs, 0);
    CHECK_RC(cpool__signature_parse("void()", &s), 0);
    CHECK_EQ(s.result_bytes, 0);
}

static void shouldRecognizeTheBytesForm(void) {
    cpool__signature_t s;
    CHECK_RC(cpool__signature_parse("void(const void*,size_t,void*,size_t)", &s), 0);
    CHECK_EQ(s.bytes_form, 1);
    CHECK_RC(cpool__signature_parse("int64_t(const void *, size_t, void *, size_t)", &s), 0);
    CHECK_EQ(s.bytes_form, 1);
}

static void shouldRefuseMalformedOrUnsupportedSignatures(void) {
    cpool__signature_t s;
    const char *bad[] = {
        "", "int64_t", "int64_t(", "int64_t)", "(int64_t)", "int64_t(int64_t) x",
        "bogus(int64_t)", "int64_t(bogus)", "int64_t(int64_t,)", "int64_t(,int64_t)",
        "int64_t(void*)",                        /* a pointer into private memory */
        "void*(int64_t)",
        "double(const void*,size_t,void*,size_t)", /* bytes form returns void or int64 */
        "int64_t(void,int64_t)",
        "i64(i64,i64,i64,i64,i64,i64,i64,i64,i64)", /* nine arguments */
        "i64(i64)i64(i64)",
        NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = cpool__signature_parse(bad[i], &s);
        if (rc != CPOOL_E_SIGNATURE) fprintf(stderr, "accepted: %s\n", bad[i] ? bad[i] : "NULL");
        CHECK_RC(rc, CPOOL_E_SIGNATURE);
    }
    char longsig[200];
    memset(longsig, ' ', sizeof longsig);
    memcpy(longsig, "i64(i64)", 8);
    longsig[199] = '\0';
    CHECK_RC(cpool__signature_parse(longsig, &s), CPOOL_E_SIGNATURE);
}

int main(void) {
    watchdog(30);
    RUN(shouldParseScalarSignaturesWithCLayout);
    RUN(shouldRecognizeTheBytesForm);
    RUN(shouldRefuseMalformedOrUnsupportedSignatures);
    return finish();
}
