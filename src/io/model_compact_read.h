/* Reading a compact model file (format: src/io/model_compact.c), model_load's part; apart from
 * the writer so that model_load (which the writer calls) and the writer do not call each other. */
#ifndef CIGL_IO_MODEL_COMPACT_READ_H
#define CIGL_IO_MODEL_COMPACT_READ_H
#include "cigl/model.h"

#include <hdf5.h>
#include <stdint.h>

/* The parameters, BN statistics and masks of a compact file (positions outside the pattern get
 * 0); refuses a malformed or foreign file (CIGL_ERR_USAGE). */
int model_compact_read(hid_t f, const Model *m, float *params, float *bn_stats, uint8_t *mask,
                       const char *path);

#endif
