/* Compact model files (`cigl compact`): prunable weights stored as CSR (row pointers, column
 * indices, values) instead of dense tensors plus masks; format in src/model_compact.c. */
#ifndef CIGL_MODEL_COMPACT_H
#define CIGL_MODEL_COMPACT_H
#include "cigl/model_io.h"

#include <hdf5.h>

/* Writes `out` from the model file `in`; the two file sizes in bytes come back. */
int model_compact(const char *in, const char *out, long long *bytes_in, long long *bytes_out);
/* `cigl compact IN OUT` (argv after the command name). */
int compact_main(int argc, char **argv);

#endif
