/* A small streaming JSON writer: enough for config.json, metrics.jsonl and final.json. */
#ifndef CIGL_JSON_H
#define CIGL_JSON_H
#include <stdio.h>

typedef struct JsonWriter {
    FILE *f;
    int depth;
    int first[16];          /* per nesting level: no member written yet */
    int pretty;
} JsonWriter;

void json_begin(JsonWriter *w, FILE *f, int pretty);
void json_object_begin(JsonWriter *w, const char *key); /* key NULL at top level / in arrays */
void json_object_end(JsonWriter *w);
void json_array_begin(JsonWriter *w, const char *key);
void json_array_end(JsonWriter *w);
void json_string(JsonWriter *w, const char *key, const char *value);
void json_int(JsonWriter *w, const char *key, long long value);
/* Non-finite doubles are written as null (JSON has no NaN). 17 significant digits. */
void json_double(JsonWriter *w, const char *key, double value);
void json_bool(JsonWriter *w, const char *key, int value);
void json_end(JsonWriter *w);  /* newline */

#endif
