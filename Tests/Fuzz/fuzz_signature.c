/* libFuzzer target: the signature parser takes any bytes without reading past them or
 * its 96-byte limit, and what it accepts is self-consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "signature.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char text[128];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    cpool__signature_t s;
    if (cpool__signature_parse(text, &s) == 0) {
        if (s.nargs > MAX_ARGS) abort();
        if (!s.bytes_form) {
            size_t end = 0;
            for (unsigned i = 0; i < s.nargs; i++) {
                size_t sz = cpool__type_size((cpool__type_t)s.args[i]);
                if (sz == 0 || s.offsets[i] < end || s.offsets[i] % sz) abort(); /* ordered, aligned */
                end = s.offsets[i] + sz;
            }
            if (s.record_bytes < end) abort();
        }
    }
    return 0;
}
