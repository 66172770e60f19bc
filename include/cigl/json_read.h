/* A small strict JSON reader (RFC 8259) into an immutable tree: for reading run results
 * (cigl report) and configuration files.
 *
 * Strict: exactly one value, surrounded only by whitespace (a leading UTF-8 byte order mark is
 * skipped); no comments, trailing commas, single quotes, NaN/Infinity, leading zeros or '+'
 * signs; strings must be valid UTF-8 without raw control characters, escapes are \" \\ \/ \b
 * \f \n \r \t and \uXXXX (surrogate pairs combined, unpaired surrogates refused), decoded to
 * UTF-8 (\u0000 gives an embedded NUL: see json_string_length); numbers that overflow a double
 * are refused; an object may not repeat a key.
 *
 * Safe: nesting deeper than JSON_MAX_DEPTH and inputs larger than JSON_MAX_BYTES are refused,
 * recursion is bounded by the depth limit, every accessor accepts NULL (and answers "absent"),
 * and a failed parse frees everything it allocated.
 *
 * Errors: json_parse returns NULL and writes one line "<problem> at LINE:COLUMN" into err, e.g.
 * "expected ',' or '}' at 3:17". Lines and columns are 1-based; columns count characters
 * (UTF-8 code points), a tab counting as one. The position is that of the offending
 * character, or just past the last one for a truncated input. */
#ifndef CIGL_JSON_READ_H
#define CIGL_JSON_READ_H
#include <stddef.h>

#define JSON_MAX_DEPTH 64                       /* nested arrays/objects */
#define JSON_MAX_BYTES ((size_t)64 * 1024 * 1024) /* input size */

typedef enum {
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
} JsonType;

typedef struct JsonValue JsonValue; /* opaque; owned by the root returned by json_parse */

/* Parses text[0..len) (NUL bytes included in len are parsed, i.e. refused outside strings).
 * Returns the root, to be released with json_free, or NULL with the error in err (errlen
 * bytes; err may be NULL). */
JsonValue *json_parse(const char *text, size_t len, char *err, size_t errlen);

/* Reads and parses a whole file. On failure returns NULL with err set to "cannot read: <os
 * error>" or to the parse error ("... at LINE:COLUMN"); the caller names the file. */
JsonValue *json_parse_file(const char *path, char *err, size_t errlen);

/* Frees a tree returned by json_parse / json_parse_file (NULL is fine). Only roots may be
 * freed; values inside a tree live as long as their root. */
void json_free(JsonValue *root);

/* Type of v; JSON_NULL for a NULL pointer. json_type_name: "null", "boolean", "number",
 * "string", "array" or "object", for error messages. */
JsonType json_type(const JsonValue *v);
const char *json_type_name(JsonType t);

/* Where the value starts in the text (1-based; 0 for NULL). */
int json_line(const JsonValue *v);
int json_column(const JsonValue *v);

/* Scalars. Each returns 1 and stores the value when v has the right type, else returns 0 and
 * leaves *out unchanged.
 * json_integer: a number that is a whole number representable as long long; integer literals
 * are converted exactly from their text (so 9007199254740993 stays exact). */
int json_number(const JsonValue *v, double *out);
int json_integer(const JsonValue *v, long long *out);
int json_boolean(const JsonValue *v, int *out);

/* The decoded UTF-8 string (NUL-terminated), or NULL when v is not a string. Its length in
 * bytes, which differs from strlen when it contains \u0000. */
const char *json_string_value(const JsonValue *v);
size_t json_string_length(const JsonValue *v);

/* Arrays: length (0 when v is not an array) and element i (NULL when out of range). */
size_t json_array_length(const JsonValue *v);
const JsonValue *json_array_at(const JsonValue *v, size_t i);

/* Objects: member count (0 when v is not an object); member i's key and value in document
 * order (NULL when out of range), for iteration:
 *     for (size_t i = 0; i < json_object_count(o); i++)
 *         use(json_object_key(o, i), json_object_value(o, i));
 * json_get: the member named key (binary search; NULL when absent or v is not an object). */
size_t json_object_count(const JsonValue *v);
const char *json_object_key(const JsonValue *v, size_t i);
const JsonValue *json_object_value(const JsonValue *v, size_t i);
const JsonValue *json_get(const JsonValue *v, const char *key);

/* Dotted path from v: "test.ece" is json_get(json_get(v, "test"), "ece"); a segment made only
 * of digits indexes an array ("layers.0.density"). The empty path is v itself. NULL when any
 * step is absent. (Keys containing '.' cannot be reached this way: use json_get.) */
const JsonValue *json_path(const JsonValue *v, const char *path);

/* Typed lookups by dotted path with a default for "absent or of another type". */
double json_path_number(const JsonValue *v, const char *path, double def);
long long json_path_integer(const JsonValue *v, const char *path, long long def);
int json_path_bool(const JsonValue *v, const char *path, int def);
const char *json_path_string(const JsonValue *v, const char *path, const char *def);

/* The first of several dotted paths that is present: paths is a NULL-terminated list, e.g.
 * {"test.ece", "test_ece", NULL}, for reading files written by different versions. */
const JsonValue *json_path_first(const JsonValue *v, const char *const *paths);

#endif
