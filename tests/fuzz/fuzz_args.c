/* Fuzz target: the `cigl train` command-line parser and validation (src/config.c): the input
 * is split at NUL bytes into up to 64 arguments. */
#include "fuzz.h"

#include "cigl/config.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char *argv[65];
    int argc = 0;
    for (size_t i = 0; i <= size && argc < 64; i += strlen(text + i) + 1) argv[argc++] = text + i;
    argv[argc] = NULL;
    Config c;
    config_defaults(&c);
    if (config_parse_args(&c, argc, argv) == 0) config_validate(&c);
    free(text);
    return 0;
}
