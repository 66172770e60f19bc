#include "cigl/json.h"

#include <math.h>

static void indent(JsonWriter *w)
{
    if (!w->pretty) return;
    fputc('\n', w->f);
    for (int i = 0; i < w->depth; i++) fputs("  ", w->f);
}

static void put_escaped(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\t': fputs("\\t", f); break;
        case '\r': fputs("\\r", f); break;
        default:
            if (*p < 0x20) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
    }
    fputc('"', f);
}

/* Separator, indentation and key for the next member. */
static void member(JsonWriter *w, const char *key)
{
    if (w->depth > 0) {
        if (!w->first[w->depth]) fputc(',', w->f);
        w->first[w->depth] = 0;
        indent(w);
    }
    if (key) {
        put_escaped(w->f, key);
        fputs(w->pretty ? ": " : ":", w->f);
    }
}

void json_begin(JsonWriter *w, FILE *f, int pretty)
{
    w->f = f;
    w->depth = 0;
    w->pretty = pretty;
    w->first[0] = 1;
}

static void open_scope(JsonWriter *w, const char *key, char c)
{
    member(w, key);
    fputc(c, w->f);
    if (w->depth < 15) w->depth++;
    w->first[w->depth] = 1;
}

static void close_scope(JsonWriter *w, char c)
{
    const int empty = w->first[w->depth];
    if (w->depth > 0) w->depth--;
    if (!empty) indent(w);
    fputc(c, w->f);
}

void json_object_begin(JsonWriter *w, const char *key) { open_scope(w, key, '{'); }
void json_object_end(JsonWriter *w) { close_scope(w, '}'); }
void json_array_begin(JsonWriter *w, const char *key) { open_scope(w, key, '['); }
void json_array_end(JsonWriter *w) { close_scope(w, ']'); }

void json_string(JsonWriter *w, const char *key, const char *value)
{
    member(w, key);
    put_escaped(w->f, value ? value : "");
}

void json_int(JsonWriter *w, const char *key, long long value)
{
    member(w, key);
    fprintf(w->f, "%lld", value);
}

void json_double(JsonWriter *w, const char *key, double value)
{
    member(w, key);
    if (isfinite(value)) fprintf(w->f, "%.17g", value);
    else fputs("null", w->f);
}

void json_bool(JsonWriter *w, const char *key, int value)
{
    member(w, key);
    fputs(value ? "true" : "false", w->f);
}

void json_end(JsonWriter *w) { fputc('\n', w->f); }
