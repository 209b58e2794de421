#include "signature.h"

#include <string.h>

#include "cpool.h"

#define MAX_SIGNATURE 96
#define MAX_TOKEN 32

static const struct {
    const char *name;
    cpool__type_t type;
} type_names[] = {
    {"void", TYPE_VOID},
    {"int8_t", TYPE_I8},     {"i8", TYPE_I8},       {"signed char", TYPE_I8},
    {"int16_t", TYPE_I16},   {"i16", TYPE_I16},     {"short", TYPE_I16},
    {"int32_t", TYPE_I32},   {"i32", TYPE_I32},     {"int", TYPE_I32},
    {"int64_t", TYPE_I64},   {"i64", TYPE_I64},     {"long", TYPE_I64},
    {"long long", TYPE_I64}, {"ssize_t", TYPE_I64},
    {"uint8_t", TYPE_U8},    {"u8", TYPE_U8},       {"unsigned char", TYPE_U8},
    {"uint16_t", TYPE_U16},  {"u16", TYPE_U16},     {"unsigned short", TYPE_U16},
    {"uint32_t", TYPE_U32},  {"u32", TYPE_U32},     {"unsigned", TYPE_U32},
    {"unsigned int", TYPE_U32},
    {"uint64_t", TYPE_U64},  {"u64", TYPE_U64},     {"unsigned long", TYPE_U64},
    {"unsigned long long", TYPE_U64},
    {"float", TYPE_F32},     {"f32", TYPE_F32},
    {"double", TYPE_F64},    {"f64", TYPE_F64},
    {"size_t", TYPE_SIZE},
    {"const void*", TYPE_CPTR}, {"void const*", TYPE_CPTR},
    {"void*", TYPE_PTR},
};

size_t cpool__type_size(cpool__type_t t) {
    switch (t) {
    case TYPE_VOID: return 0;
    case TYPE_I8: case TYPE_U8: return 1;
    case TYPE_I16: case TYPE_U16: return 2;
    case TYPE_I32: case TYPE_U32: case TYPE_F32: return 4;
    default: return 8;
    }
}

/* Copies one type name from [begin, end) into tok with runs of blanks folded to
 * one space and no blank before or after '*'. Returns 0, or -1 when too long. */
static int normalize(const char *begin, const char *end, char tok[MAX_TOKEN]) {
    size_t n = 0;
    int pending_space = 0;
    for (const char *p = begin; p < end; p++) {
        char c = *p;
        if (c == ' ' || c == '\t' || c == '\n') {
            pending_space = n > 0;
            continue;
        }
        if (pending_space && c != '*') {
            if (n + 1 >= MAX_TOKEN) return -1;
            tok[n++] = ' ';
        }
        pending_space = 0;
        if (n + 1 >= MAX_TOKEN) return -1;
        tok[n++] = c;
    }
    tok[n] = '\0';
    return 0;
}

static int lookup(const char *tok, cpool__type_t *out) {
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++) {
        if (strcmp(tok, type_names[i].name) == 0) {
            *out = type_names[i].type;
            return 0;
        }
    }
    return -1;
}

static int is_scalar(cpool__type_t t) { return t != TYPE_VOID && t < TYPE_CPTR; }

static cpool__direct_t direct_kind(const cpool__signature_t *s) {
    /* Same width and class of integer share a calling convention on the ABIs Linux
     * runs on, so u64(u64) may take the i64(i64) path. */
#define IS64(t) ((t) == TYPE_I64 || (t) == TYPE_U64 || (t) == TYPE_SIZE)
#define IS32(t) ((t) == TYPE_I32 || (t) == TYPE_U32)
    if (s->nargs == 1 && IS64(s->ret) && IS64(s->args[0])) return DIRECT_I64_I64;
    if (s->nargs == 2 && IS64(s->ret) && IS64(s->args[0]) && IS64(s->args[1]))
        return DIRECT_I64_I64_I64;
    if (s->nargs == 1 && s->ret == TYPE_F64 && s->args[0] == TYPE_F64)
        return DIRECT_F64_F64;
    if (s->nargs == 2 && s->ret == TYPE_F64 && s->args[0] == TYPE_F64 &&
        s->args[1] == TYPE_F64)
        return DIRECT_F64_F64_F64;
    if (s->nargs == 1 && IS32(s->ret) && IS32(s->args[0])) return DIRECT_I32_I32;
    if (s->nargs == 1 && s->ret == TYPE_F32 && s->args[0] == TYPE_F32)
        return DIRECT_F32_F32;
#undef IS64
#undef IS32
    return DIRECT_NONE;
}

int cpool__signature_parse(const char *text, cpool__signature_t *out) {
    if (!text) return CPOOL_E_SIGNATURE;
    size_t len = strnlen(text, MAX_SIGNATURE);
    if (len == MAX_SIGNATURE) return CPOOL_E_SIGNATURE;
    const char *end = text + len;
    const char *open = memchr(text, '(', len);
    if (!open) return CPOOL_E_SIGNATURE;
    const char *close = memchr(open, ')', (size_t)(end - open));
    if (!close) return CPOOL_E_SIGNATURE;
    for (const char *p = close + 1; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n') return CPOOL_E_SIGNATURE;

    cpool__signature_t s;
    memset(&s, 0, sizeof s);
    char tok[MAX_TOKEN];
    cpool__type_t t;
    if (normalize(text, open, tok) != 0 || lookup(tok, &t) != 0) return CPOOL_E_SIGNATURE;
    s.ret = (uint8_t)t;

    const char *p = open + 1;
    /* "()" and "(void)" take no arguments. */
    int no_args = normalize(p, close, tok) == 0 && (tok[0] == '\0' || strcmp(tok, "void") == 0);
    if (!no_args) {
        for (;;) {
            const char *comma = memchr(p, ',', (size_t)(close - p));
            const char *stop = comma ? comma : close;
            if (s.nargs == MAX_ARGS) return CPOOL_E_SIGNATURE;
            if (normalize(p, stop, tok) != 0 || lookup(tok, &t) != 0 || t == TYPE_VOID)
                return CPOOL_E_SIGNATURE;
            s.args[s.nargs++] = (uint8_t)t;
            if (!comma) break;
            p = comma + 1;
        }
    }

    if (s.nargs == 4 && (s.args[0] == TYPE_CPTR || s.args[0] == TYPE_PTR) &&
        s.args[1] == TYPE_SIZE && s.args[2] == TYPE_PTR && s.args[3] == TYPE_SIZE) {
        if (s.ret != TYPE_VOID && s.ret != TYPE_I64) return CPOOL_E_SIGNATURE;
        s.bytes_form = 1;
        *out = s;
        return 0;
    }

    /* Scalar form: pointers would point into the caller's private memory. */
    if (s.ret != TYPE_VOID && !is_scalar((cpool__type_t)s.ret)) return CPOOL_E_SIGNATURE;
    size_t off = 0, max_align = 1;
    for (unsigned i = 0; i < s.nargs; i++) {
        if (!is_scalar((cpool__type_t)s.args[i])) return CPOOL_E_SIGNATURE;
        size_t sz = cpool__type_size((cpool__type_t)s.args[i]);
        off = (off + sz - 1) & ~(sz - 1);
        s.offsets[i] = (uint16_t)off;
        off += sz;
        if (sz > max_align) max_align = sz;
    }
    s.record_bytes = (uint32_t)((off + max_align - 1) & ~(max_align - 1));
    s.result_bytes = (uint32_t)cpool__type_size((cpool__type_t)s.ret);
    s.direct = (uint8_t)direct_kind(&s);
    *out = s;
    return 0;
}
