/* Options from JSON files: `--config FILE` and the options saved in checkpoints. Any run's
 * config.json is a valid file: its "provenance" member is ignored, and so are the options that
 * say how a run starts (resume, overwrite, config, dry-run) rather than what it computes. */
#include "cigl/config.h"

#include "cigl/error.h"
#include "cigl/json.h"
#include "cigl/json_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int starts_run(const char *key)
{
    static const char *const keys[] = {"resume", "overwrite", "config", "dry-run", NULL};
    for (int i = 0; keys[i]; i++)
        if (!strcmp(keys[i], key)) return 1;
    return 0;
}

/* The JSON value as the text the command line would carry; 0 when its type does not fit. */
static int value_text(const OptionSpec *s, const JsonValue *v, char *buf, size_t cap)
{
    double d;
    long long i;
    int b;
    if (s->type == OPT_STRING) {
        const char *str = json_string_value(v);
        if (!str || strlen(str) != json_string_length(v)) return 0;
        snprintf(buf, cap, "%s", str);
        return 1;
    }
    if ((s->type == OPT_FLAG || s->type == OPT_FLAG_OFF) && json_boolean(v, &b)) {
        snprintf(buf, cap, "%d", s->type == OPT_FLAG ? b : !b);
        return 1;
    }
    if (s->type == OPT_LLONG && json_integer(v, &i)) {
        snprintf(buf, cap, "%lld", i);
        return 1;
    }
    if (s->type != OPT_FLAG && s->type != OPT_FLAG_OFF && json_number(v, &d)) {
        snprintf(buf, cap, "%.17g", d);
        return 1;
    }
    return 0;
}

static int differs_from_default(const OptionSpec *s, const Config *c, const Config *def)
{
    const char *a = (const char *)c + s->offset, *b = (const char *)def + s->offset;
    return s->type == OPT_STRING ? strcmp(a, b) != 0 : memcmp(a, b, s->size) != 0;
}

int config_apply_json(Config *c, const JsonValue *obj, const char *source)
{
    if (json_type(obj) != JSON_OBJECT)
        return cigl_fail(CIGL_ERR_USAGE, "%s: expected a JSON object of options, like a run's "
                         "config.json", source);
    Config def;
    config_defaults(&def);
    for (size_t k = 0; k < json_object_count(obj); k++) {
        const char *key = json_object_key(obj, k);
        const JsonValue *v = json_object_value(obj, k);
        if (!strcmp(key, "provenance") || starts_run(key)) continue;
        const OptionSpec *s = options_find(train_options, key, strlen(key));
        if (!s)
            return cigl_fail(CIGL_ERR_USAGE, "%s:%d: unknown option '%s'; see 'cigl train "
                             "--help' for the list", source, json_line(v), key);
        char text[600];
        if (!value_text(s, v, text, sizeof text))
            return cigl_fail(CIGL_ERR_USAGE, "%s:%d: option '%s' must be %s, not %s", source,
                             json_line(v), key,
                             s->type == OPT_STRING ? "a string"
                             : s->type == OPT_FLAG || s->type == OPT_FLAG_OFF ? "true or false"
                                                                              : "a number",
                             json_type_name(json_type(v)));
        char where[600];
        snprintf(where, sizeof where, "%s:%d: ", source, json_line(v));
        const int rc = options_set(c, s, text, where);
        if (rc) return rc;
        if (differs_from_default(s, c, &def)) c->given[s - train_options] = 1;
        c->loaded[s - train_options] = 1;
    }
    return CIGL_OK;
}

void config_mark_unversioned_legacy(Config *c, const JsonValue *obj)
{
    if (json_get(obj, "mechanics")) return;
    snprintf(c->mechanics, sizeof c->mechanics, "legacy");
    const OptionSpec *s = options_find(train_options, "mechanics", strlen("mechanics"));
    if (s) c->loaded[s - train_options] = 1;
}

int config_load_file(Config *c, const char *path)
{
    char err[256];
    JsonValue *root = json_parse_file(path, err, sizeof err);
    if (!root)
        return cigl_fail(CIGL_ERR_USAGE, "--config '%s': %s; give a JSON object of options "
                         "such as a run's config.json", path, err);
    int rc = config_apply_json(c, root, path);
    /* a run's own config.json (it has provenance) from before --mechanics ran cigl's own values */
    if (!rc && json_get(root, "provenance")) config_mark_unversioned_legacy(c, root);
    json_free(root);
    return rc;
}

char *config_json_text(const Config *c, int pretty)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) return NULL;
    JsonWriter w;
    json_begin(&w, mem, pretty);
    json_object_begin(&w, NULL);
    config_write_json(c, &w);
    json_object_end(&w);
    if (pretty) json_end(&w);
    if (fclose(mem)) {
        free(text);
        return NULL;
    }
    return text;
}

/* Options given on the command line are applied after the --config file's, so they win. */
int config_resolve_args(Config *c, int argc, char **argv)
{
    config_defaults(c);
    int rc = config_parse_args(c, argc, argv);
    if (rc || !c->config_file[0]) return rc;
    char path[sizeof c->config_file];
    snprintf(path, sizeof path, "%s", c->config_file);
    config_defaults(c);
    rc = config_load_file(c, path);
    if (!rc) rc = config_parse_args(c, argc, argv);
    return rc;
}
