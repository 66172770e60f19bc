/* Strict JSON reader: recursive descent (depth-bounded) into a tree of JsonValue nodes whose
 * children are stored contiguously; objects keep their members in document order plus an index
 * sorted by key for json_get and for refusing duplicate keys. */
#include "cigl/json_read.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;              /* decoded, NUL-terminated */
    size_t len;
    int line, column;       /* of the key's opening quote */
} JsonMember;

struct JsonValue {
    JsonType type;
    int line, column;
    int boolean;
    int exact;              /* number: an integer literal that fits in long long (in integer) */
    long long integer;
    double number;
    char *string;           /* string: decoded UTF-8, NUL-terminated */
    size_t len;             /* string: bytes; array: elements; object: members */
    JsonValue *items;       /* array elements / object member values */
    JsonMember *members;    /* object keys, parallel to items */
    size_t *order;          /* object: member indices sorted by key */
};

typedef struct {
    const unsigned char *s;
    size_t n, pos;
    int line;
    size_t line_start;
    size_t col_pos;         /* column cache: column `col` is at byte col_pos of the line */
    int col;
    char *err;
    size_t errlen;
} Parser;

/* ---- positions and errors ------------------------------------------------------------- */

/* Column (1-based, in code points) of byte `pos`, on the line that starts at line_start.
 * Positions mostly increase, so counting resumes from the last one: linear overall. */
static int column_at(Parser *p, size_t pos)
{
    if (p->col_pos < p->line_start || p->col_pos > pos) {
        p->col_pos = p->line_start;
        p->col = 1;
    }
    for (; p->col_pos < pos; p->col_pos++)
        if ((p->s[p->col_pos] & 0xC0) != 0x80) p->col++;
    return p->col;
}

static int fail_at(Parser *p, int line, int column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(Parser *p, int line, int column, const char *fmt, ...)
{
    if (p->err && p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(p->err, p->errlen, fmt, ap);
        va_end(ap);
        if (k >= 0 && (size_t)k < p->errlen)
            snprintf(p->err + k, p->errlen - (size_t)k, " at %d:%d", line, column);
    }
    return -1;
}

#define FAIL(p, pos, ...) fail_at((p), (p)->line, column_at((p), (pos)), __VA_ARGS__)

/* "expected X" at the current position, or "unexpected end of input, expected X" there. */
static int expected(Parser *p, const char *what)
{
    if (p->pos >= p->n) return FAIL(p, p->pos, "unexpected end of input, expected %s", what);
    return FAIL(p, p->pos, "expected %s", what);
}

static void skip_ws(Parser *p)
{
    while (p->pos < p->n) {
        const unsigned char c = p->s[p->pos];
        if (c == ' ' || c == '\t') {
            p->pos++;
        } else if (c == '\n' || c == '\r') {
            p->pos++;
            if (c == '\r' && p->pos < p->n && p->s[p->pos] == '\n') p->pos++;
            p->line++;
            p->line_start = p->pos;
        } else {
            break;
        }
    }
}

/* ---- freeing ---------------------------------------------------------------------------- */

static void free_contents(JsonValue *v)
{
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT) {
        for (size_t i = 0; i < v->len; i++) free_contents(&v->items[i]);
        if (v->members)
            for (size_t i = 0; i < v->len; i++) free(v->members[i].key);
    }
    free(v->string);
    free(v->items);
    free(v->members);
    free(v->order);
    memset(v, 0, sizeof(*v));
}

void json_free(JsonValue *root)
{
    if (!root) return;
    free_contents(root);
    free(root);
}

/* ---- strings -------------------------------------------------------------------------- */

static int hex4(const unsigned char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        const unsigned char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static size_t put_utf8(unsigned cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence (2..4 bytes) starting at s[0] >= 0x80, or 0. */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
    const unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c == 0xE0) need = 3, lo = 0xA0;
    else if (c == 0xED) need = 3, hi = 0x9F; /* no UTF-16 surrogates */
    else if (c >= 0xE1 && c <= 0xEF) need = 3;
    else if (c == 0xF0) need = 4, lo = 0x90;
    else if (c == 0xF4) need = 4, hi = 0x8F; /* nothing above U+10FFFF */
    else if (c >= 0xF1 && c <= 0xF3) need = 4;
    else return 0;
    if (avail < need || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < need; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return need;
}

/* At an opening quote: decodes the string into a new buffer. */
static int parse_string(Parser *p, char **out, size_t *out_len)
{
    const size_t start = p->pos;
    const int line = p->line, column = column_at(p, start);
    /* the closing quote bounds the decoded length */
    size_t end = start + 1;
    while (end < p->n && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->n) return fail_at(p, line, column, "unterminated string (no closing '\"')");
    char *buf = malloc(end - start);
    if (!buf) return FAIL(p, start, "out of memory reading a string of %zu bytes", end - start);
    size_t o = 0, i = start + 1;
    while (i < end) {
        const unsigned char c = p->s[i];
        if (c < 0x20) {
            free(buf);
            return FAIL(p, i, "control character 0x%02x in string (write it as an escape such "
                        "as \\n or \\u%04x)", c, c);
        }
        if (c >= 0x80) {
            const size_t k = utf8_seq(p->s + i, end - i);
            if (!k) {
                free(buf);
                return FAIL(p, i, "invalid UTF-8 byte 0x%02x in string", c);
            }
            memcpy(buf + o, p->s + i, k);
            o += k;
            i += k;
            continue;
        }
        if (c != '\\') {
            buf[o++] = (char)c;
            i++;
            continue;
        }
        const unsigned char e = p->s[i + 1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char decoded[] = "\"\\/\b\f\n\r\t";
            buf[o++] = decoded[simple - "\"\\/bfnrt"];
            i += 2;
            continue;
        }
        unsigned cp;
        if (e != 'u') {
            free(buf);
            if (e >= 0x20 && e < 0x7F) return FAIL(p, i, "invalid escape '\\%c' in string", e);
            return FAIL(p, i, "invalid escape in string");
        }
        if (i + 6 > end || !hex4(p->s + i + 2, &cp)) {
            free(buf);
            return FAIL(p, i, "expected 4 hex digits after \\u");
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) { /* high surrogate: a low one must follow */
            unsigned lo2;
            if (i + 12 > end || p->s[i + 6] != '\\' || p->s[i + 7] != 'u' ||
                !hex4(p->s + i + 8, &lo2) || lo2 < 0xDC00 || lo2 > 0xDFFF) {
                free(buf);
                return FAIL(p, i, "unpaired UTF-16 surrogate \\u%04X in string", cp);
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo2 - 0xDC00);
            i += 6;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            free(buf);
            return FAIL(p, i, "unpaired UTF-16 surrogate \\u%04X in string", cp);
        }
        o += put_utf8(cp, buf + o);
        i += 6;
    }
    buf[o] = 0;
    p->pos = end + 1;
    *out = buf;
    *out_len = o;
    return 0;
}

/* ---- numbers -------------------------------------------------------------------------- */

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int parse_number(Parser *p, JsonValue *v)
{
    const size_t start = p->pos;
    size_t i = start;
    int integer = 1;
    if (i < p->n && p->s[i] == '-') i++;
    if (i >= p->n || !is_digit(p->s[i])) {
        p->pos = i;
        return expected(p, "a digit after '-'");
    }
    if (p->s[i] == '0') {
        i++;
        if (i < p->n && is_digit(p->s[i]))
            return FAIL(p, i, "leading zeros are not allowed in numbers");
    } else {
        while (i < p->n && is_digit(p->s[i])) i++;
    }
    if (i < p->n && p->s[i] == '.') {
        integer = 0;
        i++;
        if (i >= p->n || !is_digit(p->s[i])) {
            p->pos = i;
            return expected(p, "a digit after '.'");
        }
        while (i < p->n && is_digit(p->s[i])) i++;
    }
    if (i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
        integer = 0;
        i++;
        if (i < p->n && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (i >= p->n || !is_digit(p->s[i])) {
            p->pos = i;
            return expected(p, "a digit in the exponent");
        }
        while (i < p->n && is_digit(p->s[i])) i++;
    }
    char small[64], *text = small;
    const size_t len = i - start;
    if (len >= sizeof(small) && !(text = malloc(len + 1)))
        return FAIL(p, start, "out of memory reading a number");
    memcpy(text, p->s + start, len);
    text[len] = 0;
    errno = 0;
    const double d = strtod(text, NULL); /* the grammar above is a subset of strtod's */
    if (isinf(d)) {
        if (text != small) free(text);
        return FAIL(p, start, "number out of range (beyond +-1.8e308)");
    }
    v->type = JSON_NUMBER;
    v->number = d;
    if (integer) {
        errno = 0;
        const long long ll = strtoll(text, NULL, 10);
        v->exact = errno == 0;
        v->integer = ll;
    }
    if (text != small) free(text);
    p->pos = i;
    return 0;
}

/* ---- values --------------------------------------------------------------------------- */

static int parse_value(Parser *p, JsonValue *v, int depth);

/* Appends *child to the growing items array (taking ownership of its contents). */
static int push_item(Parser *p, JsonValue *v, size_t *cap, JsonValue *child)
{
    if (v->len == *cap) {
        const size_t nc = *cap ? 2 * *cap : 4;
        JsonValue *ni = realloc(v->items, nc * sizeof(*ni));
        if (!ni) return FAIL(p, p->pos, "out of memory (%zu array or object elements)", nc);
        v->items = ni;
        if (v->type == JSON_OBJECT) {
            JsonMember *nm = realloc(v->members, nc * sizeof(*nm));
            if (!nm) return FAIL(p, p->pos, "out of memory (%zu object members)", nc);
            v->members = nm;
        }
        *cap = nc;
    }
    v->items[v->len++] = *child;
    return 0;
}

static int member_cmp(const JsonMember *a, const JsonMember *b)
{
    const size_t n = a->len < b->len ? a->len : b->len;
    const int c = memcmp(a->key, b->key, n);
    if (c) return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* qsort over member pointers: by key, ties by document order */
static int member_ptr_cmp(const void *x, const void *y)
{
    const JsonMember *a = *(const JsonMember *const *)x, *b = *(const JsonMember *const *)y;
    const int c = member_cmp(a, b);
    return c ? c : (a < b ? -1 : a > b);
}

/* Builds the sorted index; refuses the first repeated key (in document order). */
static int index_members(Parser *p, JsonValue *v)
{
    if (!v->len) return 0;
    JsonMember **sorted = malloc(v->len * sizeof(JsonMember *));
    v->order = malloc(v->len * sizeof(*v->order));
    if (!sorted || !v->order) {
        free(sorted);
        return FAIL(p, p->pos, "out of memory indexing an object of %zu members", v->len);
    }
    for (size_t i = 0; i < v->len; i++) sorted[i] = &v->members[i];
    qsort(sorted, v->len, sizeof(JsonMember *), member_ptr_cmp);
    const JsonMember *dup = NULL;
    for (size_t i = 0; i < v->len; i++) {
        v->order[i] = (size_t)(sorted[i] - v->members);
        if (i && !member_cmp(sorted[i - 1], sorted[i]) && (!dup || sorted[i] < dup))
            if (i < 2 || member_cmp(sorted[i - 2], sorted[i])) dup = sorted[i];
    }
    free(sorted);
    if (!dup) return 0;
    char shown[48];
    size_t k = 0;
    for (size_t i = 0; i < dup->len && k + 4 < sizeof(shown); i++) {
        const unsigned char c = (unsigned char)dup->key[i];
        shown[k++] = (char)(c < 0x20 || c == 0x7F ? '?' : c);
    }
    if (k < dup->len) shown[k++] = '.', shown[k++] = '.', shown[k++] = '.';
    shown[k] = 0;
    return fail_at(p, dup->line, dup->column, "duplicate key \"%s\" in object", shown);
}

static int parse_container(Parser *p, JsonValue *v, int depth)
{
    const int object = p->s[p->pos] == '{';
    const unsigned char close = object ? '}' : ']';
    if (depth >= JSON_MAX_DEPTH)
        return FAIL(p, p->pos, "nesting deeper than %d levels", JSON_MAX_DEPTH);
    v->type = object ? JSON_OBJECT : JSON_ARRAY;
    p->pos++;
    size_t cap = 0;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    for (;;) {
        JsonMember m = {0};
        if (object) {
            if (p->pos >= p->n || p->s[p->pos] != '"') return expected(p, "a string key");
            m.line = p->line;
            m.column = column_at(p, p->pos);
            if (parse_string(p, &m.key, &m.len)) return -1;
            skip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':') {
                free(m.key);
                return expected(p, "':'");
            }
            p->pos++;
            skip_ws(p);
        }
        JsonValue child = {0};
        if (parse_value(p, &child, depth + 1)) {
            free(m.key);
            return -1;
        }
        if (push_item(p, v, &cap, &child)) {
            free_contents(&child);
            free(m.key);
            return -1;
        }
        /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): push_item grew members too */
        if (object) v->members[v->len - 1] = m;
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] == ',') {
            p->pos++;
            skip_ws(p);
            continue;
        }
        if (p->pos < p->n && p->s[p->pos] == close) {
            p->pos++;
            return object ? index_members(p, v) : 0;
        }
        return expected(p, object ? "',' or '}'" : "',' or ']'");
    }
}

static int parse_value(Parser *p, JsonValue *v, int depth)
{
    memset(v, 0, sizeof(*v));
    v->line = p->line;
    v->column = column_at(p, p->pos);
    if (p->pos >= p->n) return expected(p, "a value");
    const unsigned char c = p->s[p->pos];
    int rc;
    if (c == '{' || c == '[') {
        rc = parse_container(p, v, depth);
    } else if (c == '"') {
        v->type = JSON_STRING;
        rc = parse_string(p, &v->string, &v->len);
    } else if (c == '-' || is_digit(c)) {
        rc = parse_number(p, v);
    } else {
        static const char *const lit[] = {"true", "false", "null"};
        size_t k = p->pos;
        while (k < p->n && ((p->s[k] >= 'a' && p->s[k] <= 'z') || (p->s[k] >= 'A' && p->s[k] <= 'Z')))
            k++;
        rc = -1;
        for (int i = 0; i < 3; i++) {
            if (k - p->pos == strlen(lit[i]) && !memcmp(p->s + p->pos, lit[i], k - p->pos)) {
                v->type = i == 2 ? JSON_NULL : JSON_BOOL;
                v->boolean = i == 0;
                p->pos = k;
                rc = 0;
            }
        }
        if (rc) {
            if (k > p->pos && k - p->pos <= 16)
                return FAIL(p, p->pos, "unknown literal '%.*s' (expected true, false or null)",
                            (int)(k - p->pos), (const char *)p->s + p->pos);
            return expected(p, "a value");
        }
    }
    if (rc) free_contents(v);
    return rc;
}

JsonValue *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    Parser p = {(const unsigned char *)text, len, 0, 1, 0, 0, 1, err, errlen};
    if (err && errlen) err[0] = 0;
    if (!text && len) {
        fail_at(&p, 1, 1, "no input");
        return NULL;
    }
    if (len > JSON_MAX_BYTES) {
        if (err && errlen)
            snprintf(err, errlen, "input of %zu bytes is larger than the limit of %zu bytes", len,
                     JSON_MAX_BYTES);
        return NULL;
    }
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) p.pos = p.line_start = p.col_pos = 3;
    JsonValue *root = calloc(1, sizeof(*root));
    if (!root) {
        fail_at(&p, 1, 1, "out of memory");
        return NULL;
    }
    skip_ws(&p);
    if (parse_value(&p, root, 0)) {
        free(root);
        return NULL;
    }
    skip_ws(&p);
    if (p.pos < p.n) {
        FAIL(&p, p.pos, "unexpected data after the JSON value");
        json_free(root);
        return NULL;
    }
    return root;
}

JsonValue *json_parse_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && errlen) snprintf(err, errlen, "cannot read: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    int e = buf ? 0 : ENOMEM;
    while (!e) {
        if (n == cap) {
            if (cap > JSON_MAX_BYTES) break;
            char *nb = realloc(buf, 2 * cap);
            if (!nb) {
                e = ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        const size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) {
            if (ferror(f)) e = errno ? errno : EIO;
            break;
        }
    }
    fclose(f);
    JsonValue *root = NULL;
    if (e) {
        if (err && errlen) snprintf(err, errlen, "cannot read: %s", strerror(e));
    } else {
        root = json_parse(buf, n, err, errlen);
    }
    free(buf);
    return root;
}

/* ---- access --------------------------------------------------------------------------- */

JsonType json_type(const JsonValue *v) { return v ? v->type : JSON_NULL; }

const char *json_type_name(JsonType t)
{
    switch (t) {
    case JSON_NULL: return "null";
    case JSON_BOOL: return "boolean";
    case JSON_NUMBER: return "number";
    case JSON_STRING: return "string";
    case JSON_ARRAY: return "array";
    case JSON_OBJECT: return "object";
    }
    return "?";
}

int json_line(const JsonValue *v) { return v ? v->line : 0; }
int json_column(const JsonValue *v) { return v ? v->column : 0; }

int json_number(const JsonValue *v, double *out)
{
    if (!v || v->type != JSON_NUMBER) return 0;
    *out = v->number;
    return 1;
}

int json_integer(const JsonValue *v, long long *out)
{
    if (!v || v->type != JSON_NUMBER) return 0;
    if (v->exact) {
        *out = v->integer;
        return 1;
    }
    /* 2^63 is exactly representable; every double below it in magnitude and whole fits */
    if (v->number != floor(v->number) || !(fabs(v->number) < 9223372036854775808.0)) return 0;
    *out = (long long)v->number;
    return 1;
}

int json_boolean(const JsonValue *v, int *out)
{
    if (!v || v->type != JSON_BOOL) return 0;
    *out = v->boolean;
    return 1;
}

const char *json_string_value(const JsonValue *v)
{
    return v && v->type == JSON_STRING ? v->string : NULL;
}

size_t json_string_length(const JsonValue *v)
{
    return v && v->type == JSON_STRING ? v->len : 0;
}

size_t json_array_length(const JsonValue *v) { return v && v->type == JSON_ARRAY ? v->len : 0; }

const JsonValue *json_array_at(const JsonValue *v, size_t i)
{
    return v && v->type == JSON_ARRAY && i < v->len ? &v->items[i] : NULL;
}

size_t json_object_count(const JsonValue *v) { return v && v->type == JSON_OBJECT ? v->len : 0; }

const char *json_object_key(const JsonValue *v, size_t i)
{
    return v && v->type == JSON_OBJECT && i < v->len ? v->members[i].key : NULL;
}

const JsonValue *json_object_value(const JsonValue *v, size_t i)
{
    return v && v->type == JSON_OBJECT && i < v->len ? &v->items[i] : NULL;
}

static const JsonValue *get_n(const JsonValue *v, const char *key, size_t len)
{
    if (!v || v->type != JSON_OBJECT || !key) return NULL;
    const JsonMember want = {(char *)key, len, 0, 0};
    size_t lo = 0, hi = v->len;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        const int c = member_cmp(&v->members[v->order[mid]], &want);
        if (!c) return &v->items[v->order[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const JsonValue *json_get(const JsonValue *v, const char *key)
{
    return key ? get_n(v, key, strlen(key)) : NULL;
}

const JsonValue *json_path(const JsonValue *v, const char *path)
{
    if (!path) return NULL;
    const char *s = path;
    while (v && *s) {
        const char *dot = strchr(s, '.');
        const size_t len = dot ? (size_t)(dot - s) : strlen(s);
        if (v->type == JSON_ARRAY) {
            size_t idx = 0, k = 0;
            for (; k < len && is_digit((unsigned char)s[k]); k++) {
                if (idx > (SIZE_MAX - 9) / 10) return NULL;
                idx = idx * 10 + (size_t)(s[k] - '0');
            }
            v = len && k == len ? json_array_at(v, idx) : NULL;
        } else {
            v = get_n(v, s, len);
        }
        if (!dot) break;
        s = dot + 1;
        if (!*s) return NULL; /* trailing '.' */
    }
    return v;
}

double json_path_number(const JsonValue *v, const char *path, double def)
{
    double d;
    return json_number(json_path(v, path), &d) ? d : def;
}

long long json_path_integer(const JsonValue *v, const char *path, long long def)
{
    long long x;
    return json_integer(json_path(v, path), &x) ? x : def;
}

int json_path_bool(const JsonValue *v, const char *path, int def)
{
    int b;
    return json_boolean(json_path(v, path), &b) ? b : def;
}

const char *json_path_string(const JsonValue *v, const char *path, const char *def)
{
    const char *s = json_string_value(json_path(v, path));
    return s ? s : def;
}

const JsonValue *json_path_first(const JsonValue *v, const char *const *paths)
{
    for (; paths && *paths; paths++) {
        const JsonValue *r = json_path(v, *paths);
        if (r) return r;
    }
    return NULL;
}
