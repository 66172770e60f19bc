/* Fuzz target: the strict JSON reader (src/json_read.c) and every accessor over the tree it
 * returns. */
#include "fuzz.h"

#include "cigl/json_read.h"

static void walk(const JsonValue *v, int depth)
{
    if (depth > JSON_MAX_DEPTH + 1) __builtin_trap(); /* the parser bounds the nesting */
    double d;
    long long i;
    int b;
    json_number(v, &d);
    json_integer(v, &i);
    json_boolean(v, &b);
    const char *s = json_string_value(v);
    if (s && strlen(s) > json_string_length(v)) __builtin_trap();
    for (size_t k = 0; k < json_array_length(v); k++) walk(json_array_at(v, k), depth + 1);
    for (size_t k = 0; k < json_object_count(v); k++) {
        const char *key = json_object_key(v, k);
        if (!key) __builtin_trap(); /* every member in range has a key */
        json_get(v, key);
        walk(json_object_value(v, k), depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    JsonValue *root = json_parse((const char *)data, size, err, sizeof err);
    if (!root && !err[0]) __builtin_trap(); /* a refusal always says why */
    walk(root, 0);
    json_path_number(root, "test.ece", 0);
    json_path_string(root, "layers.0.name", "");
    json_free(root);
    return 0;
}
