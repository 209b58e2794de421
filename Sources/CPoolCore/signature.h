/* Parsing of the C-like signature strings that cpool_register takes. */
#ifndef CPOOL_SIGNATURE_H
#define CPOOL_SIGNATURE_H

#include <stddef.h>
#include <stdint.h>

#include "region.h"

typedef enum cpool__type {
    TYPE_VOID, TYPE_I8, TYPE_I16, TYPE_I32, TYPE_I64,
    TYPE_U8, TYPE_U16, TYPE_U32, TYPE_U64, TYPE_F32, TYPE_F64,
    TYPE_SIZE,    /* size_t: u64 in a record, the length in the bytes form */
    TYPE_CPTR,    /* const void*: only in the bytes form */
    TYPE_PTR,     /* void*: only in the bytes form */
} cpool__type_t;

/* Calls that skip libffi: the common scalar shapes, by their calling convention
 * (unsigned and signed integers of one width share a direct path). */
typedef enum cpool__direct {
    DIRECT_NONE, DIRECT_I64_I64, DIRECT_I64_I64_I64,
    DIRECT_F64_F64, DIRECT_F64_F64_F64, DIRECT_I32_I32,
    DIRECT_F32_F32,
} cpool__direct_t;

typedef struct cpool__signature {
    uint8_t ret;                     /* cpool__type_t */
    uint8_t nargs;
    uint8_t bytes_form;              /* (const void*, size_t, void*, size_t) */
    uint8_t direct;                  /* cpool__direct_t */
    uint8_t args[MAX_ARGS];    /* cpool__type_t */
    uint16_t offsets[MAX_ARGS];/* byte offset of each argument in the record */
    uint32_t record_bytes;           /* argument record, padded like the C struct */
    uint32_t result_bytes;           /* 0 for void and the bytes form's length-less ret */
} cpool__signature_t;

/* Parses text (at most 95 characters). Returns 0, or CPOOL_E_SIGNATURE. Never reads
 * past the terminating NUL or past 96 bytes. */
int cpool__signature_parse(const char *text, cpool__signature_t *out);

/* Size and alignment of a scalar type (0 for void). */
size_t cpool__type_size(cpool__type_t t);

#endif
