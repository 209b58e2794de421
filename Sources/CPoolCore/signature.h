/* Parsing of the C-like signature strings that cpool_register takes. */
#ifndef CPOOL_SIGNATURE_H
#define CPOOL_SIGNATURE_H

#include <stddef.h>
#include <stdint.h>

#include "region.h"

typedef enum cpool__type {
    CPOOL_T_VOID, CPOOL_T_I8, CPOOL_T_I16, CPOOL_T_I32, CPOOL_T_I64,
    CPOOL_T_U8, CPOOL_T_U16, CPOOL_T_U32, CPOOL_T_U64, CPOOL_T_F32, CPOOL_T_F64,
    CPOOL_T_SIZE,    /* size_t: u64 in a record, the length in the bytes form */
    CPOOL_T_CPTR,    /* const void*: only in the bytes form */
    CPOOL_T_PTR,     /* void*: only in the bytes form */
} cpool__type_t;

/* Calls that skip libffi: the common scalar shapes, by their calling convention
 * (unsigned and signed integers of one width share a direct path). */
typedef enum cpool__direct {
    CPOOL_DIRECT_NONE, CPOOL_DIRECT_I64_I64, CPOOL_DIRECT_I64_I64_I64,
    CPOOL_DIRECT_F64_F64, CPOOL_DIRECT_F64_F64_F64, CPOOL_DIRECT_I32_I32,
    CPOOL_DIRECT_F32_F32,
} cpool__direct_t;

typedef struct cpool__signature {
    uint8_t ret;                     /* cpool__type_t */
    uint8_t nargs;
    uint8_t bytes_form;              /* (const void*, size_t, void*, size_t) */
    uint8_t direct;                  /* cpool__direct_t */
    uint8_t args[CPOOL_MAX_ARGS];    /* cpool__type_t */
    uint16_t offsets[CPOOL_MAX_ARGS];/* byte offset of each argument in the record */
    uint32_t record_bytes;           /* argument record, padded like the C struct */
    uint32_t result_bytes;           /* 0 for void and the bytes form's length-less ret */
} cpool__signature_t;

/* Parses text (at most 95 characters). Returns 0, or CPOOL_E_SIGNATURE. Never reads
 * past the terminating NUL or past 96 bytes. */
int cpool__signature_parse(const char *text, cpool__signature_t *out);

/* Size and alignment of a scalar type (0 for void). */
size_t cpool__type_size(cpool__type_t t);

#endif
