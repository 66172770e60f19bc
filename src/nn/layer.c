/* The kind -> operations table. */
#include "cigl/layer.h"

#include <stddef.h>

extern const LayerOps linear_ops, conv_ops, batchnorm_ops, relu_ops, maxpool_ops,
    global_avgpool_ops, add_ops, flatten_ops;

const LayerOps *layer_ops(LayerKind kind)
{
    static const LayerOps *const table[LAYER_KIND_COUNT] = {
        [LAYER_LINEAR] = &linear_ops,   [LAYER_CONV2D] = &conv_ops,
        [LAYER_BATCHNORM] = &batchnorm_ops, [LAYER_RELU] = &relu_ops,
        [LAYER_MAXPOOL] = &maxpool_ops, [LAYER_GLOBAL_AVGPOOL] = &global_avgpool_ops,
        [LAYER_ADD] = &add_ops,         [LAYER_FLATTEN] = &flatten_ops,
    };
    return (unsigned)kind < LAYER_KIND_COUNT ? table[kind] : NULL;
}

