/* JSON reader (valid documents, escapes, numbers, every malformed case with its exact
 * line:column, limits, a round trip through the JSON writer) and `cigl report` on synthetic run
 * directories with known values (means, sample stds, relative ECE change with a deterministic
 * bootstrap interval, grouping by options and layouts, unfinished runs, bad input).
 *
 * `test_report --svg DIR` writes synthetic runs under DIR/runs, runs the report with
 * --out DIR/out and writes the expected plot series, one per line, to DIR/series.txt (for
 * tests/t_report.sh, which checks the SVG with an XML parser). */
#include "check.h"

#include "cigl/json.h"
#include "cigl/json_read.h"
#include "cigl/report.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- JSON reader ---------------------------------------------------------------------- */

static JsonValue *parse(const char *s, char *err, size_t errlen)
{
    return json_parse(s, strlen(s), err, errlen);
}

static void json_valid_document(void)
{
    const char *doc = "{\n"
                      "  \"name\": \"rigl\",\n"
                      "  \"sparsity\": 0.9,\n"
                      "  \"flags\": [true, false, null],\n"
                      "  \"test\": {\"ece\": 0.031, \"bins\": [1, 2, {\"x\": -3}]},\n"
                      "  \"empty_obj\": {}, \"empty_arr\": [ ]\n"
                      "}\n";
    char err[200];
    JsonValue *v = parse(doc, err, sizeof(err));
    CHECK(v != NULL, "parse failed: %s", err);
    if (!v) return;
    CHECK(json_type(v) == JSON_OBJECT, "root type %d", json_type(v));
    CHECK(json_object_count(v) == 6, "members %zu", json_object_count(v));
    static const char *const order[] = {"name", "sparsity", "flags", "test", "empty_obj",
                                        "empty_arr"};
    for (size_t i = 0; i < 6; i++)
        CHECK(!strcmp(json_object_key(v, i), order[i]), "key %zu is %s", i, json_object_key(v, i));
    CHECK(!strcmp(json_string_value(json_get(v, "name")), "rigl"), "name");
    double d = 0;
    CHECK(json_number(json_get(v, "sparsity"), &d) && d == 0.9, "sparsity %g", d);
    CHECK(json_path_number(v, "test.ece", -1) == 0.031, "test.ece");
    CHECK(json_path_number(v, "test.bins.2.x", 0) == -3, "array index in path");
    CHECK(json_path_number(v, "test.bins.3", 42) == 42, "index out of range -> default");
    CHECK(json_path(v, "test.nope") == NULL, "absent path");
    CHECK(json_path(v, "test.") == NULL, "trailing dot");
    CHECK(json_path(v, "") == v, "empty path is the value");
    const JsonValue *flags = json_get(v, "flags");
    CHECK(json_array_length(flags) == 3, "flags length");
    int b = -1;
    CHECK(json_boolean(json_array_at(flags, 0), &b) && b == 1, "true");
    CHECK(json_boolean(json_array_at(flags, 1), &b) && b == 0, "false");
    CHECK(json_type(json_array_at(flags, 2)) == JSON_NULL, "null");
    CHECK(json_array_at(flags, 3) == NULL, "out of range");
    CHECK(json_object_count(json_get(v, "empty_obj")) == 0 &&
          json_type(json_get(v, "empty_obj")) == JSON_OBJECT, "empty object");
    CHECK(json_array_length(json_get(v, "empty_arr")) == 0 &&
          json_type(json_get(v, "empty_arr")) == JSON_ARRAY, "empty array");
    /* positions of values */
    CHECK(json_line(json_get(v, "sparsity")) == 3 && json_column(json_get(v, "sparsity")) == 15,
          "sparsity at %d:%d", json_line(json_get(v, "sparsity")),
          json_column(json_get(v, "sparsity")));
    CHECK(json_line(json_path(v, "test.bins.2")) == 5 && json_column(json_path(v, "test.bins.2")) == 41,
          "bins[2] at %d:%d", json_line(json_path(v, "test.bins.2")),
          json_column(json_path(v, "test.bins.2")));
    /* typed getters: wrong type -> default; NULL-safe */
    CHECK(json_path_number(v, "name", 7) == 7, "string as number -> default");
    CHECK(!strcmp(json_path_string(v, "sparsity", "def"), "def"), "number as string -> default");
    CHECK(json_path_bool(v, "flags.0", 0) == 1, "bool path");
    CHECK(json_path_integer(v, "test.bins.1", 0) == 2, "integer path");
    CHECK(json_get(flags, "x") == NULL && json_get(NULL, "x") == NULL, "get on non-object");
    CHECK(json_path(NULL, "a") == NULL && json_array_length(NULL) == 0 &&
          json_object_count(NULL) == 0 && json_string_value(NULL) == NULL, "NULL-safe");
    const char *const paths[] = {"test_ece", "test.ece", NULL};
    CHECK(json_path_first(v, paths) == json_path(v, "test.ece"), "first present path");
    json_free(v);
    /* scalars at top level, surrounding whitespace, BOM */
    v = parse(" \t\r\n 42 \n", err, sizeof(err));
    CHECK(v && json_path_integer(v, "", 0) == 42, "top-level number: %s", err);
    json_free(v);
    v = parse("\xEF\xBB\xBF\"bom\"", err, sizeof(err));
    CHECK(v && !strcmp(json_string_value(v), "bom"), "BOM skipped: %s", err);
    json_free(v);
    json_free(NULL);
}

static void json_escapes(void)
{
    char err[200];
    JsonValue *v = parse("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\\u00e9\\u20AC\", \"\\uD83D\\uDE00\","
                         " \"a\\u0000b\", \"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"]",
                         err, sizeof(err));
    CHECK(v != NULL, "parse failed: %s", err);
    if (!v) return;
    CHECK(!strcmp(json_string_value(json_array_at(v, 0)), "\"\\/\b\f\n\r\t"), "simple escapes");
    CHECK(!strcmp(json_string_value(json_array_at(v, 1)), "\xC3\xA9\xE2\x82\xAC"), "\\u BMP");
    CHECK(!strcmp(json_string_value(json_array_at(v, 2)), "\xF0\x9F\x98\x80"), "surrogate pair");
    const JsonValue *nul = json_array_at(v, 3);
    CHECK(json_string_length(nul) == 3 && !memcmp(json_string_value(nul), "a\0b", 4),
          "\\u0000: length %zu", json_string_length(nul));
    CHECK(!strcmp(json_string_value(json_array_at(v, 4)),
                  "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), "raw UTF-8 kept");
    json_free(v);
    /* escaped keys are looked up decoded */
    v = parse("{\"a\\u0062c\": 1, \"\\t\": 2}", err, sizeof(err));
    CHECK(v && json_path_number(v, "abc", 0) == 1 && json_path_number(v, "\t", 0) == 2,
          "escaped keys: %s", err);
    json_free(v);
}

static void json_numbers(void)
{
    static const struct {
        const char *text;
        double value;
    } cases[] = {{"-1.5e-3", -1.5e-3}, {"0", 0},       {"-0", -0.0},     {"1E+2", 100},
                 {"0.1", 0.1},         {"12.5e1", 125}, {"1e-400", 0},   {"-2.25E-2", -0.0225},
                 {"1.7976931348623157e308", 1.7976931348623157e308}};
    char err[200];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        JsonValue *v = parse(cases[i].text, err, sizeof(err));
        double d = NAN;
        CHECK(v && json_number(v, &d) && d == cases[i].value, "%s -> %.17g (%s)", cases[i].text,
              d, v ? "" : err);
        json_free(v);
    }
    JsonValue *v = parse("[9007199254740993, -9223372036854775808, 1e3, 1.5, 1e19, 2.0]", err,
                         sizeof(err));
    long long x = 0;
    CHECK(json_integer(json_array_at(v, 0), &x) && x == 9007199254740993LL, "exact big int %lld", x);
    CHECK(json_integer(json_array_at(v, 1), &x) && x == (-9223372036854775807LL - 1), "min ll");
    CHECK(json_integer(json_array_at(v, 2), &x) && x == 1000, "1e3 is whole");
    CHECK(!json_integer(json_array_at(v, 3), &x), "1.5 is not an integer");
    CHECK(!json_integer(json_array_at(v, 4), &x), "1e19 does not fit");
    CHECK(json_integer(json_array_at(v, 5), &x) && x == 2, "2.0 is whole");
    json_free(v);
}

static void json_malformed_positions(void)
{
    static const struct {
        const char *text;
        const char *error;
    } cases[] = {
        {"{\"a\": 1 \"b\": 2}", "expected ',' or '}' at 1:9"},
        {"{\n  \"a\": [1, 2,\n    3],\n  \"b\" 4\n}", "expected ':' at 4:7"},
        {"[1, 2,]", "expected a value at 1:7"},
        {"{\"a\":1,}", "expected a string key at 1:8"},
        {"{'a':1}", "expected a string key at 1:2"},
        {"", "unexpected end of input, expected a value at 1:1"},
        {"  \n ", "unexpected end of input, expected a value at 2:2"},
        {"[1, 2", "unexpected end of input, expected ',' or ']' at 1:6"},
        {"{\"a\"", "unexpected end of input, expected ':' at 1:5"},
        {"[1] 2", "unexpected data after the JSON value at 1:5"},
        {"01", "leading zeros are not allowed in numbers at 1:2"},
        {"-", "unexpected end of input, expected a digit after '-' at 1:2"},
        {"-x", "expected a digit after '-' at 1:2"},
        {"1.", "unexpected end of input, expected a digit after '.' at 1:3"},
        {"[1e]", "expected a digit in the exponent at 1:4"},
        {"+1", "expected a value at 1:1"},
        {".5", "expected a value at 1:1"},
        {"1e999", "number out of range (beyond +-1.8e308) at 1:1"},
        {"\"abc", "unterminated string (no closing '\"') at 1:1"},
        {"[\"ok\",\n \"abc\\\"]", "unterminated string (no closing '\"') at 2:2"},
        {"\"a\\qb\"", "invalid escape '\\q' in string at 1:3"},
        {"\"\\u12G4\"", "expected 4 hex digits after \\u at 1:2"},
        {"\"\\u12\"", "expected 4 hex digits after \\u at 1:2"},
        {"\"\\uD800\"", "unpaired UTF-16 surrogate \\uD800 in string at 1:2"},
        {"\"\\uD800\\u0041\"", "unpaired UTF-16 surrogate \\uD800 in string at 1:2"},
        {"\"x\\uDC00\"", "unpaired UTF-16 surrogate \\uDC00 in string at 1:3"},
        {"\"a\nb\"", "control character 0x0a in string (write it as an escape such as \\n or "
                     "\\u000a) at 1:3"},
        {"\"\xff\"", "invalid UTF-8 byte 0xff in string at 1:2"},
        {"\"\xC0\x80\"", "invalid UTF-8 byte 0xc0 in string at 1:2"},       /* overlong NUL */
        {"\"\xED\xA0\x80\"", "invalid UTF-8 byte 0xed in string at 1:2"},   /* surrogate */
        {"\"\xF4\x90\x80\x80\"", "invalid UTF-8 byte 0xf4 in string at 1:2"}, /* > U+10FFFF */
        {"\"\xE2\x82\"", "invalid UTF-8 byte 0xe2 in string at 1:2"},       /* truncated */
        {"{\"a\":1,\"b\":2,\"a\":3}", "duplicate key \"a\" in object at 1:14"},
        {"{\"k\":{\"x\":1,\n \"x\":2, \"x\":3}}", "duplicate key \"x\" in object at 2:2"},
        {"tru", "unknown literal 'tru' (expected true, false or null) at 1:1"},
        {"[NaN]", "unknown literal 'NaN' (expected true, false or null) at 1:2"},
        {"[-Infinity]", "expected a digit after '-' at 1:3"},
        {"nullx", "unknown literal 'nullx' (expected true, false or null) at 1:1"},
        {"// comment\n1", "expected a value at 1:1"},
        {"[\"\xC3\xA9\", x]", "unknown literal 'x' (expected true, false or null) at 1:7"},
        {"[1,\r\n2,\r\n]", "expected a value at 3:1"},
        {"{\"a\":}", "expected a value at 1:6"},
    };
    char err[200];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        JsonValue *v = parse(cases[i].text, err, sizeof(err));
        CHECK(v == NULL && !strcmp(err, cases[i].error), "case %zu: got \"%s\", expected \"%s\"",
              i, v ? "(parsed)" : err, cases[i].error);
        json_free(v);
    }
    /* a NUL byte outside strings is refused where it stands */
    JsonValue *v = json_parse("[1,\0]", 5, err, sizeof(err));
    CHECK(!v && !strcmp(err, "expected a value at 1:4"), "NUL: %s", err);
    json_free(v);
    /* a short error buffer is truncated, not overrun; NULL err is allowed */
    char tiny[8];
    v = parse("[1,", tiny, sizeof(tiny));
    CHECK(!v && strlen(tiny) == 7, "tiny buffer: %s", tiny);
    CHECK(parse("[1,", NULL, 0) == NULL, "NULL err");
}

static void json_limits(void)
{
    char err[200], doc[4 * JSON_MAX_DEPTH];
    for (int depth = JSON_MAX_DEPTH; depth <= JSON_MAX_DEPTH + 1; depth++) {
        memset(doc, '[', (size_t)depth);
        memset(doc + depth, ']', (size_t)depth);
        doc[2 * depth] = 0;
        JsonValue *v = parse(doc, err, sizeof(err));
        if (depth == JSON_MAX_DEPTH) {
            CHECK(v != NULL, "depth %d refused: %s", depth, err);
            const JsonValue *w = v;
            int d = 0;
            while (json_array_length(w) == 1) w = json_array_at(w, 0), d++;
            CHECK(d == depth - 1, "nesting %d", d);
        } else {
            char want[100];
            snprintf(want, sizeof(want), "nesting deeper than %d levels at 1:%d", JSON_MAX_DEPTH,
                     JSON_MAX_DEPTH + 1);
            CHECK(!v && !strcmp(err, want), "depth %d: %s", depth, v ? "(parsed)" : err);
        }
        json_free(v);
    }
    /* the size limit is checked before the text is read */
    static const char one[1] = {'1'};
    JsonValue *v = json_parse(one, JSON_MAX_BYTES + 1, err, sizeof(err));
    CHECK(!v && strstr(err, "larger than the limit"), "size limit: %s", err);
    v = json_parse_file("/nonexistent/dir/x.json", err, sizeof(err));
    CHECK(!v && !strcmp(err, "cannot read: No such file or directory"), "missing file: %s", err);
    v = json_parse_file("/", err, sizeof(err));
    CHECK(!v && !strcmp(err, "cannot read: Is a directory"), "directory: %s", err);
    /* a wide array and a wide object (growth, sorted index) */
    const int n = 5000;
    char *big = malloc((size_t)n * 24 + 16);
    size_t k = 0;
    big[k++] = '{';
    for (int i = 0; i < n; i++) k += (size_t)sprintf(big + k, "%s\"k%d\":[%d]", i ? "," : "", n - i, i);
    big[k++] = '}';
    v = json_parse(big, k, err, sizeof(err));
    CHECK(v && json_object_count(v) == (size_t)n, "wide object: %s", v ? "" : err);
    int found = 1;
    for (int i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%d", n - i);
        found &= json_path_integer(json_array_at(json_get(v, key), 0), "", -1) == i;
    }
    CHECK(found, "every key found by binary search");
    json_free(v);
    free(big);
}

/* What our writer writes, our reader reads back exactly. */
static void json_round_trip_with_writer(void)
{
    char path[] = "/tmp/cigl_json_rt_XXXXXX";
    const int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w+");
    JsonWriter w;
    json_begin(&w, f, 1);
    json_object_begin(&w, NULL);
    json_string(&w, "s", "tab\there \"q\" back\\slash \x01 caf\xC3\xA9");
    json_double(&w, "pi", 3.141592653589793);
    json_double(&w, "tiny", 4.9406564584124654e-324);
    json_double(&w, "nan", NAN);
    json_int(&w, "big", -9007199254740993LL);
    json_bool(&w, "yes", 1);
    json_array_begin(&w, "arr");
    json_double(&w, NULL, 0.1);
    json_object_begin(&w, NULL);
    json_object_end(&w);
    json_array_end(&w);
    json_object_end(&w);
    json_end(&w);
    fclose(f);
    char err[200];
    JsonValue *v = json_parse_file(path, err, sizeof(err));
    unlink(path);
    CHECK(v != NULL, "parse: %s", err);
    if (!v) return;
    CHECK(!strcmp(json_path_string(v, "s", ""), "tab\there \"q\" back\\slash \x01 caf\xC3\xA9"),
          "string");
    CHECK(json_path_number(v, "pi", 0) == 3.141592653589793, "pi");
    CHECK(json_path_number(v, "tiny", 0) == 4.9406564584124654e-324, "denormal");
    CHECK(json_type(json_get(v, "nan")) == JSON_NULL, "NaN written as null");
    CHECK(json_path_integer(v, "big", 0) == -9007199254740993LL, "big int");
    CHECK(json_path_bool(v, "yes", 0) == 1, "bool");
    CHECK(json_path_number(v, "arr.0", 0) == 0.1 && json_type(json_path(v, "arr.1")) == JSON_OBJECT,
          "array");
    json_free(v);
}

/* ---- report: synthetic runs ----------------------------------------------------------- */

typedef struct {
    const char *name, *method;
    double sparsity;
    int seed;
    double label_smoothing, random_mask_rate;
    int mixup;       /* -1: no "mixup" member (older runs); else its value */
    int flat;        /* final.json layout: 0 nested "test" object, 1 flat test_* members */
    double acc, ece, ece10, nll, brier;
    double scaled_ece; /* > 0: also a "test_scaled" object */
    int finished;
} RunSpec;

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void write_run(const char *root, const RunSpec *r)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/%s", root, r->name);
    mkdir(root, 0777);
    mkdir(dir, 0777);
    char path[1100];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\n  \"data\": \"/somewhere/%s/fm.h5\",\n  \"model\": \"mlp\",\n  \"out\": \"%s\",\n"
            "  \"epochs\": 3,\n  \"seed\": %d,\n  \"threads\": %d,\n  \"label-smoothing\": %.17g,\n",
            r->name, dir, r->seed, 1 + r->seed % 3, r->label_smoothing);
    if (r->mixup >= 0) fprintf(f, "  \"mixup\": %d,\n", r->mixup);
    fprintf(f, "  \"method\": \"%s\",\n  \"sparsity\": %.17g,\n  \"distribution\": \"erk\",\n"
            "  \"random-mask-rate\": %.17g,\n  \"rescale-kept\": true,\n  \"no-averaging\": false,\n"
            "  \"provenance\": {\"git_commit\": \"%d\"}\n}\n",
            r->method, strcmp(r->method, "dense") ? r->sparsity : 0.9, r->random_mask_rate,
            r->seed);
    fclose(f);
    if (!r->finished) return;
    snprintf(path, sizeof(path), "%s/final.json", dir);
    f = fopen(path, "w");
    fprintf(f, "{\n  \"model\": \"mlp\",\n  \"steps\": 60,\n");
    if (r->flat)
        fprintf(f, "  \"test_accuracy\": %.17g,\n  \"test_nll\": %.17g,\n  \"test_ece\": %.17g,\n"
                "  \"test_ece10\": %.17g,\n  \"test_brier\": %.17g,\n", r->acc, r->nll, r->ece,
                r->ece10, r->brier);
    else
        fprintf(f, "  \"test_accuracy\": %.17g,\n  \"test_nll\": %.17g,\n  \"test\": {\"accuracy\": "
                "%.17g, \"nll\": %.17g, \"brier\": %.17g, \"ece\": %.17g, \"ece10\": %.17g, "
                "\"mce\": 0.5, \"conventions\": {\"ece\": \"15 bins\"}},\n",
                r->acc + 0.5, r->nll + 0.5, r->acc, r->nll, r->brier, r->ece, r->ece10);
    if (r->scaled_ece > 0)
        fprintf(f, "  \"temperature\": 1.5,\n  \"test_scaled\": {\"accuracy\": %.17g, \"nll\": "
                "%.17g, \"brier\": %.17g, \"ece\": %.17g, \"ece10\": %.17g},\n", r->acc,
                r->nll - 0.05, r->brier, r->scaled_ece, r->scaled_ece);
    fprintf(f, "  \"method\": {\"name\": \"%s\"", r->method);
    if (strcmp(r->method, "dense"))
        fprintf(f, ", \"distribution\": \"erk\", \"sparsity_target\": %.17g, "
                "\"update_interval\": 20", r->sparsity);
    if (!strcmp(r->method, "cigl"))
        fprintf(f, ", \"random_mask_rate\": %.17g, \"rescale_kept\": true, \"averaging\": true",
                r->random_mask_rate);
    fprintf(f, "},\n  \"sparsity_measured\": %.17g\n}\n", r->sparsity);
    fclose(f);
}

/* name, method, sparsity, seed, ls, rmr, mixup, flat, acc, ece, ece10, nll, brier, scaled, done */
static const RunSpec synthetic[] = {
    {"dense_s0", "dense", 0, 0, 0, 0.01, -1, 0, 0.88, 0.030, 0.031, 0.35, 0.18, 0, 1},
    {"dense_s1", "dense", 0, 1, 0, 0.01, -1, 0, 0.90, 0.040, 0.041, 0.33, 0.16, 0, 1},
    {"rigl_90_s0", "rigl", 0.9, 0, 0, 0.01, -1, 0, 0.80, 0.10, 0.11, 0.5, 0.30, 0, 1},
    {"rigl_90_s1", "rigl", 0.9, 1, 0, 0.01, 0, 0, 0.82, 0.12, 0.13, 0.6, 0.31, 0, 1},
    {"rigl_90_s2", "rigl", 0.9, 2, 0, 0.01, -1, 1, 0.84, 0.14, 0.15, 0.7, 0.32, 0, 1},
    {"rigl_ls_90_s0", "rigl", 0.9, 0, 0.1, 0.01, -1, 0, 0.81, 0.09, 0.09, 0.55, 0.29, 0, 1},
    {"cigl_90_s0", "cigl", 0.9, 0, 0, 0.01, -1, 0, 0.83, 0.05, 0.06, 0.45, 0.28, 0.02, 1},
    {"cigl_90_s1", "cigl", 0.9, 1, 0, 0.01, -1, 0, 0.84, 0.06, 0.07, 0.44, 0.27, 0.03, 1},
    {"cigl_90_s2", "cigl", 0.9, 2, 0, 0.01, -1, 0, 0.85, 0.07, 0.08, 0.43, 0.26, 0.04, 1},
    {"cigl_p10_90_s0", "cigl", 0.9, 0, 0, 0.1, -1, 0, 0.82, 0.08, 0.08, 0.46, 0.28, 0, 1},
    {"cigl_p10_90_s1", "cigl", 0.9, 1, 0, 0.1, -1, 0, 0.83, 0.09, 0.09, 0.47, 0.29, 0, 1},
    {"rigl_95_s0", "rigl", 0.95, 0, 0, 0.01, -1, 0, 0.78, 0.20, 0.21, 0.8, 0.35, 0, 1},
    {"cigl_95_s0", "cigl", 0.95, 0, 0, 0.01, -1, 0, 0.80, 0.10, 0.11, 0.6, 0.33, 0, 1},
    {"cigl_95_s1", "cigl", 0.95, 1, 0, 0.01, -1, 0, 0.80, 0.10, 0.11, 0.6, 0.33, 0, 0},
};
#define N_SYNTHETIC (int)(sizeof(synthetic) / sizeof(synthetic[0]))
/* the plot's series: dense, rigl, rigl+ls, cigl (P 0.01, the default: no option named), cigl
 * (P 0.01) scaled, cigl P 0.1 */
static const char *const synthetic_series[] = {
    "dense", "rigl", "rigl label-smoothing=0.1", "cigl",
    "cigl temperature-scaled", "cigl random-mask-rate=0.1"};
#define N_SERIES 6

static int make_synthetic(const char *root, char **argv, int max)
{
    static char paths[N_SYNTHETIC][512];
    int n = 0;
    for (int i = 0; i < N_SYNTHETIC && n < max; i++) {
        write_run(root, &synthetic[i]);
        snprintf(paths[i], sizeof(paths[i]), "%s/%s", root, synthetic[i].name);
        argv[n++] = paths[i];
    }
    return n;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    const size_t k = fread(s, 1, (size_t)n, f);
    s[k] = 0;
    fclose(f);
    return s;
}

/* The table line that starts with `prefix`, copied into line (without the newline). */
static int find_line(const char *text, const char *prefix, char *line, size_t len)
{
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        const size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n >= strlen(prefix) && !strncmp(p, prefix, strlen(prefix))) {
            snprintf(line, len, "%.*s", (int)n, p);
            return 1;
        }
        p = nl ? nl + 1 : NULL;
    }
    line[0] = 0;
    return 0;
}

static char tmp_root[256];

/* Runs report_run with argv and the markdown into a temporary file; returns its text. */
static char *run_report(int argc, char **argv, int *rc)
{
    FILE *out = tmpfile();
    *rc = report_run(argc, argv, out);
    fflush(out);
    const long n = ftell(out);
    rewind(out);
    char *s = malloc((size_t)n + 1);
    const size_t k = fread(s, 1, (size_t)n, out);
    s[k] = 0;
    fclose(out);
    return s;
}

/* Runs report_run with stderr captured; returns the captured text. */
static char *run_report_stderr(int argc, char **argv, int *rc)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/stderr.txt", tmp_root);
    fflush(stderr);
    const int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
    FILE *out = fopen("/dev/null", "w");
    *rc = report_run(argc, argv, out);
    fclose(out);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    return read_all(path);
}

static void report_table_values(void)
{
    char root[300], outdir[300];
    snprintf(root, sizeof(root), "%s/table", tmp_root);
    snprintf(outdir, sizeof(outdir), "%s/table_out", tmp_root);
    char *argv[N_SYNTHETIC + 8] = {"report"};
    int argc = 1 + make_synthetic(root, argv + 1, N_SYNTHETIC);
    argv[argc++] = "--out";
    argv[argc++] = outdir;
    int rc;
    char *md = run_report(argc, argv, &rc);
    CHECK(rc == 0, "report_run returned %d", rc);
    char line[1024];
    static const struct {
        const char *prefix, *want;
    } rows[] = {
        {"| mlp | dense | — | 0 | 2 |",
         "| mlp | dense | — | 0 | 2 | 89.00 ± 1.41 | 0.0350 ± 0.0071 | 0.0360 ± 0.0071 | "
         "0.3400 ± 0.0141 | 0.1700 ± 0.0141 |"},
        /* mixed layouts (nested, flat) and mixup absent vs 0 still group together */
        {"| mlp | rigl | — | 0.9 |",
         "| mlp | rigl | — | 0.9 | 3 | 82.00 ± 2.00 | 0.1200 ± 0.0200 | 0.1300 ± 0.0200 | "
         "0.6000 ± 0.1000 | 0.3100 ± 0.0100 |"},
        {"| mlp | rigl | label-smoothing=0.1 | 0.9 |",
         "| mlp | rigl | label-smoothing=0.1 | 0.9 | 1 | 81.00 ± — | 0.0900 ± — | 0.0900 ± — | "
         "0.5500 ± — | 0.2900 ± — |"},
        {"| mlp | cigl | — | 0.9 |",
         "| mlp | cigl | — | 0.9 | 3 | 84.00 ± 1.00 | 0.0600 ± 0.0100 | "
         "0.0700 ± 0.0100 | 0.4400 ± 0.0100 | 0.2700 ± 0.0100 |"},
        {"| mlp | cigl | temperature-scaled | 0.9 |",
         "| mlp | cigl | temperature-scaled | 0.9 | 3 | 84.00 ± 1.00 | "
         "0.0300 ± 0.0100 | 0.0300 ± 0.0100 | 0.3900 ± 0.0100 | 0.2700 ± 0.0100 |"},
        {"| mlp | cigl | random-mask-rate=0.1 | 0.9 |",
         "| mlp | cigl | random-mask-rate=0.1 | 0.9 | 2 | 82.50 ± 0.71 | 0.0850 ± 0.0071 | "
         "0.0850 ± 0.0071 | 0.4650 ± 0.0071 | 0.2850 ± 0.0071 |"},
        {"| mlp | rigl | — | 0.95 |",
         "| mlp | rigl | — | 0.95 | 1 | 78.00 ± — | 0.2000 ± — | 0.2100 ± — | 0.8000 ± — | "
         "0.3500 ± — |"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        find_line(md, rows[i].prefix, line, sizeof(line));
        CHECK(!strcmp(line, rows[i].want), "row %zu:\n    got  %s\n    want %s", i, line,
              rows[i].want);
    }
    /* table order: by sparsity, then method */
    const char *d = strstr(md, "| mlp | dense"), *r = strstr(md, "| mlp | rigl | — | 0.9 |"),
               *c = strstr(md, "| mlp | cigl | — | 0.95 |");
    CHECK(d && r && c && d < r && r < c, "row order");
    CHECK(strstr(md, "13 finished runs in 8 groups (1 unfinished skipped)"), "summary line");
    CHECK(strstr(md, "## Unfinished runs (no final.json), skipped\n\n- ") &&
          strstr(md, "/cigl_95_s1\n"), "unfinished run listed");
    /* ECE relative to rigl: cigl 0.06 vs rigl 0.12 is -50 %; the interval holds it */
    CHECK(find_line(md, "| mlp | cigl | — | 0.9 | 3 | — | 3 | -50.0 | [", line,
                    sizeof(line)), "relative row missing");
    double lo = 0, hi = 0;
    const char *br = strrchr(line, '[');
    CHECK(br && sscanf(br, "[%lf, %lf]", &lo, &hi) == 2 && lo <= -50.0 && -50.0 <= hi && lo < hi,
          "interval [%g, %g] around -50 in %s", lo, hi, line);
    /* single seeds on both sides: a degenerate interval */
    CHECK(find_line(md, "| mlp | cigl | — | 0.95 | 1 | — | 1 | -50.0 | "
                    "[-50.0, -50.0] |", line, sizeof(line)), "degenerate interval row");
    /* rigl with label smoothing is compared with plain rigl; plain rigl is not listed */
    CHECK(find_line(md, "| mlp | rigl | label-smoothing=0.1 | 0.9 | 1 | — | 3 | -25.0 | [", line,
                    sizeof(line)), "rigl+ls row");
    CHECK(!find_line(md, "| mlp | rigl | — | 0.9 | 3 | — |", line, sizeof(line)), "no self row");
    CHECK(!find_line(md, "| mlp | dense | — | 0 | 2 | — |", line, sizeof(line)),
          "dense has no rigl at sparsity 0");
    /* --out: report.md is the table plus the plot, sparsity.svg has one line per series */
    char path[400];
    snprintf(path, sizeof(path), "%s/report.md", outdir);
    char *file = read_all(path);
    CHECK(file && !strncmp(file, md, strlen(md)) &&
          !strcmp(file + strlen(md), "\n![Test accuracy and ECE against sparsity, per method]"
                                     "(sparsity.svg)\n"), "report.md = stdout + plot link");
    snprintf(path, sizeof(path), "%s/sparsity.svg", outdir);
    char *svg = read_all(path);
    int polylines = 0;
    for (const char *p = svg; p && (p = strstr(p, "<polyline")); p++) polylines++;
    CHECK(svg && polylines == 2 * N_SERIES, "%d polylines, expected %d", polylines, 2 * N_SERIES);
    CHECK(svg && !strncmp(svg, "<?xml", 5) && strstr(svg, "viewBox=\"0 0 ") &&
          strstr(svg, "</svg>\n"), "svg frame");
    for (int s = 0; s < N_SERIES && svg; s++) {
        char want[200];
        snprintf(want, sizeof(want), ">%s</text>", synthetic_series[s]);
        CHECK(strstr(svg, want), "legend entry %s", synthetic_series[s]);
    }
    free(svg);
    free(file);
    /* the same input gives the same bytes (the bootstrap is deterministic); argument order
     * does not matter */
    for (int i = 1, j = N_SYNTHETIC; i < j; i++, j--) {
        char *t = argv[i];
        argv[i] = argv[j];
        argv[j] = t;
    }
    char *md2 = run_report(argc, argv, &rc);
    CHECK(rc == 0 && !strcmp(md, md2), "second run differs");
    free(md2);
    free(md);
}

static void report_bootstrap(void)
{
    const double x[] = {0.05, 0.06, 0.07}, b[] = {0.10, 0.12, 0.14};
    RelativeChange r1, r2;
    CHECK(report_relative_change(x, 3, b, 3, REPORT_BOOTSTRAP_RESAMPLES, &r1) == 0, "rc");
    CHECK(report_relative_change(x, 3, b, 3, REPORT_BOOTSTRAP_RESAMPLES, &r2) == 0, "rc");
    CHECK_CLOSE(r1.estimate, -50.0, 1e-12, 0, "estimate");
    CHECK(r1.lo == r2.lo && r1.hi == r2.hi && r1.estimate == r2.estimate,
          "not deterministic: [%.17g, %.17g] vs [%.17g, %.17g]", r1.lo, r1.hi, r2.lo, r2.hi);
    CHECK(r1.lo < r1.estimate && r1.estimate < r1.hi, "[%g, %g] must hold %g", r1.lo, r1.hi,
          r1.estimate);
    /* Bounds of the resampled change: group mean in [0.05, 0.07], baseline in [0.10, 0.14]. */
    CHECK(r1.lo >= 100 * (0.05 - 0.14) / 0.14 - 1e-9 && r1.hi <= 100 * (0.07 - 0.10) / 0.10 + 1e-9,
          "[%g, %g] outside the possible range", r1.lo, r1.hi);
    /* The x = b case: symmetric values give an interval around 0. */
    RelativeChange z;
    report_relative_change(b, 3, b, 3, 2000, &z);
    CHECK(z.estimate == 0 && z.lo < 0 && z.hi > 0, "self comparison [%g, %g]", z.lo, z.hi);
    /* single seeds: degenerate, exactly the estimate */
    const double one = 0.08, base = 0.1;
    RelativeChange d;
    report_relative_change(&one, 1, &base, 1, REPORT_BOOTSTRAP_RESAMPLES, &d);
    CHECK(d.lo == d.estimate && d.hi == d.estimate, "degenerate [%.17g, %.17g] vs %.17g", d.lo,
          d.hi, d.estimate);
    CHECK_CLOSE(d.estimate, -20.0, 1e-12, 0, "single-seed estimate");
    /* one side with one seed: the interval comes from the other side alone */
    report_relative_change(&one, 1, b, 3, REPORT_BOOTSTRAP_RESAMPLES, &d);
    CHECK(d.lo < d.estimate && d.estimate < d.hi, "one-sided [%g, %g] %g", d.lo, d.hi, d.estimate);
    /* mean and sample std */
    double m, s;
    const double v[] = {1, 2, 3, 4};
    report_mean_std(v, 4, &m, &s);
    CHECK(m == 2.5 && fabs(s - sqrt(5.0 / 3.0)) < 1e-15, "mean %g std %g", m, s);
    report_mean_std(v, 1, &m, &s);
    CHECK(m == 1 && isnan(s), "n = 1: std NaN");
}

static void report_bad_input(void)
{
    char root[300], dir[400], path[500];
    snprintf(root, sizeof(root), "%s/bad", tmp_root);
    mkdir(root, 0777);
    const RunSpec ok = {"ok", "rigl", 0.9, 0, 0, 0.01, -1, 0, 0.8, 0.1, 0.1, 0.5, 0.3, 0, 1};
    write_run(root, &ok);
    char okdir[400];
    snprintf(okdir, sizeof(okdir), "%s/ok", root);
    int rc;
    char *err;
    /* a directory without config.json */
    snprintf(dir, sizeof(dir), "%s/empty", root);
    mkdir(dir, 0777);
    char *a1[] = {"report", okdir, dir};
    err = run_report_stderr(3, a1, &rc);
    snprintf(path, sizeof(path), "cigl: report: %s/config.json: no such file", dir);
    CHECK(rc == 2 && err && !strncmp(err, path, strlen(path)) && strchr(err, '\n') == err + strlen(err) - 1,
          "no config.json: rc %d, %s", rc, err);
    free(err);
    /* malformed config.json: file name and line:column */
    snprintf(dir, sizeof(dir), "%s/badconfig", root);
    mkdir(dir, 0777);
    write_text(dir, "config.json", "{\n  \"model\": \"mlp\",\n  \"method\": \"rigl\"\n  \"seed\": 0\n}\n");
    char *a2[] = {"report", dir};
    err = run_report_stderr(2, a2, &rc);
    snprintf(path, sizeof(path), "cigl: report: %s/config.json: expected ',' or '}' at 4:3; fix "
             "the file or leave the run out\n", dir);
    CHECK(rc == 2 && err && !strcmp(err, path), "malformed config: rc %d, %s", rc, err);
    free(err);
    /* malformed final.json */
    snprintf(dir, sizeof(dir), "%s/badfinal", root);
    mkdir(dir, 0777);
    write_text(dir, "config.json", "{\"model\": \"mlp\", \"method\": \"rigl\", \"seed\": 1}");
    write_text(dir, "final.json", "{\"test\": {\"ece\": 0.1,}}");
    char *a3[] = {"report", okdir, dir};
    err = run_report_stderr(3, a3, &rc);
    snprintf(path, sizeof(path), "cigl: report: %s/final.json: expected a string key at 1:22; "
             "fix the file or leave the run out\n", dir);
    CHECK(rc == 2 && err && !strcmp(err, path), "malformed final: rc %d, %s", rc, err);
    free(err);
    /* final.json without a test accuracy */
    write_text(dir, "final.json", "{\"test\": {\"ece\": 0.1}}");
    err = run_report_stderr(3, a3, &rc);
    CHECK(rc == 2 && err && strstr(err, "final.json: no test accuracy"), "no accuracy: %s", err);
    free(err);
    /* config.json without a seed, or not an object */
    write_text(dir, "config.json", "{\"model\": \"mlp\", \"method\": \"rigl\", \"seed\": 1.5}");
    err = run_report_stderr(3, a3, &rc);
    CHECK(rc == 2 && err && strstr(err, "config.json: no integer \"seed\""), "seed: %s", err);
    free(err);
    write_text(dir, "config.json", "[]");
    err = run_report_stderr(3, a3, &rc);
    CHECK(rc == 2 && err && strstr(err, "config.json: expected a JSON object, got array"), "%s", err);
    free(err);
    /* not a directory, missing directory */
    snprintf(path, sizeof(path), "%s/config.json", okdir);
    char *a4[] = {"report", path};
    err = run_report_stderr(2, a4, &rc);
    CHECK(rc == 2 && err && strstr(err, "is not a directory"), "file: %s", err);
    free(err);
    snprintf(dir, sizeof(dir), "%s/nope", root);
    char *a5[] = {"report", dir};
    err = run_report_stderr(2, a5, &rc);
    CHECK(rc == 2 && err && strstr(err, "No such file or directory"), "missing dir: %s", err);
    free(err);
    /* the same run twice */
    char *a6[] = {"report", okdir, okdir};
    err = run_report_stderr(3, a6, &rc);
    CHECK(rc == 2 && err && strstr(err, "with the same seed 0; pass each run once"), "dup: %s", err);
    free(err);
    /* arguments */
    char *a7[] = {"report"};
    err = run_report_stderr(1, a7, &rc);
    CHECK(rc == 2 && err && strstr(err, "no run directories given"), "no dirs: %s", err);
    free(err);
    char *a8[] = {"report", okdir, "--frobnicate"};
    err = run_report_stderr(3, a8, &rc);
    CHECK(rc == 2 && err && strstr(err, "unknown option '--frobnicate'"), "flag: %s", err);
    free(err);
    char *a9[] = {"report", okdir, "--out"};
    err = run_report_stderr(3, a9, &rc);
    CHECK(rc == 2 && err && strstr(err, "--out needs a value"), "--out: %s", err);
    free(err);
    /* --help prints the usage and succeeds; --baseline=cigl compares with cigl */
    char *a10[] = {"report", "--help"};
    char *help = run_report(2, a10, &rc);
    static const char usage_line[] = "usage: cigl report RUN_DIR... [--out DIR] [--baseline "
                                     "METHOD]\n";
    CHECK(rc == 0 && !strncmp(help, usage_line, strlen(usage_line)), "help: %s", help);
    free(help);
    char *a11[] = {"report", okdir, "--baseline=cigl"};
    char *md = run_report(3, a11, &rc);
    CHECK(rc == 0 && strstr(md, "## ECE relative to cigl") &&
          strstr(md, "No group has a cigl group (with ECE)"), "baseline: %s", md);
    free(md);
}

/* Runs from older binaries (no ECE at all) still report, with n/a. */
static void report_old_layout(void)
{
    char root[300];
    snprintf(root, sizeof(root), "%s/old", tmp_root);
    mkdir(root, 0777);
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/r", root);
    mkdir(dir, 0777);
    write_text(dir, "config.json", "{\"model\": \"mlp\", \"method\": \"rigl\", \"seed\": 0, "
               "\"sparsity\": 0.8}");
    write_text(dir, "final.json", "{\"test_accuracy\": 0.758, \"test_nll\": 0.6348, "
               "\"method\": {\"name\": \"rigl\"}}");
    char *argv[] = {"report", dir};
    int rc;
    char *md = run_report(2, argv, &rc);
    char line[512];
    find_line(md, "| mlp | rigl |", line, sizeof(line));
    CHECK(rc == 0 && !strcmp(line, "| mlp | rigl | — | 0.8 | 1 | 75.80 ± — | n/a | n/a | "
                                   "0.6348 ± — | n/a |"), "old layout: %s", line);
    free(md);
}

static int svg_mode(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) { /* the runs could not be written */
        fprintf(stderr, "test_report: --svg '%s' is not a directory; create it first "
                "(mkdir -p '%s')\n", dir, dir);
        return 2;
    }
    char root[600], out[600], path[700];
    snprintf(root, sizeof(root), "%s/runs", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    char *argv[N_SYNTHETIC + 4] = {"report"};
    int argc = 1 + make_synthetic(root, argv + 1, N_SYNTHETIC);
    argv[argc++] = "--out";
    argv[argc++] = out;
    FILE *null = fopen("/dev/null", "w");
    const int rc = report_run(argc, argv, null);
    fclose(null);
    snprintf(path, sizeof(path), "%s/series.txt", dir);
    FILE *f = fopen(path, "w");
    for (int s = 0; f && s < N_SERIES; s++) fprintf(f, "%s\n", synthetic_series[s]);
    if (f) fclose(f);
    return rc;
}

static void remove_tree(const char *root)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--svg")) return svg_mode(argv[2]);
    snprintf(tmp_root, sizeof(tmp_root), "/tmp/cigl_test_report_XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(json_valid_document);
    RUN(json_escapes);
    RUN(json_numbers);
    RUN(json_malformed_positions);
    RUN(json_limits);
    RUN(json_round_trip_with_writer);
    RUN(report_bootstrap);
    RUN(report_table_values);
    RUN(report_bad_input);
    RUN(report_old_layout);
    remove_tree(tmp_root);
    return CHECK_SUMMARY();
}
