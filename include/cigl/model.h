/* A model: a list of layers forming a DAG by producer index, with all parameters in one
 * contiguous buffer and all gradients in another of the same layout (llm.c), so that one
 * allreduce, one checkpoint write and one mask pass cover all of them. */
#ifndef CIGL_MODEL_H
#define CIGL_MODEL_H
#include "cigl/layer.h"

typedef enum { PARAM_WEIGHT, PARAM_BIAS, PARAM_BN_GAMMA, PARAM_BN_BETA } ParamKind;

/* One named parameter tensor inside the parameter buffer. */
typedef struct {
    char name[48];          /* e.g. "layer3.conv1.weight" */
    ParamKind kind;
    int layer;
    int prunable;           /* conv and linear weights */
    int ndim, shape[4];     /* conv: out, in, kh, kw; linear: out, in */
    size_t off, len;
} ParamTensor;

typedef struct {
    char name[32];
    Shape input;
    int classes;
    int max_batch;

    Layer *layers;
    int n_layers, cap_layers;

    ParamTensor *tensors;
    int n_tensors, cap_tensors;

    float *params, *grads;  /* n_params each */
    size_t n_params;
    float *bn_stats;        /* running means and variances of every BN layer */
    size_t n_bn_stats;

    float **act, **dact;    /* per layer: output and its gradient, max_batch x numel(y) */
    /* The gradient buffers proper: layers whose gradients are never live at the same time in
     * backward share one (model_finalize); dact[i] points into them. */
    float **grad_slots;
    int n_grad_slots;
    float *workspace;
    size_t workspace_floats;
    int conv_slots;         /* the workspace holds this many per-thread convolution slots */
    float wgrad_scale;      /* conv/linear weight gradients are multiplied by this (1 unless a
                             * method rescales kept weights: dL/dW = dL/dW_eff / keep) */
    /* Called after each layer's backward (gradient buckets start communicating as soon as
     * their layers are done); NULL: none. */
    void (*backward_hook)(void *ctx, int layer);
    void *backward_hook_ctx;
    struct SparseModel *sparse; /* per-layer kernel choice and step state (sparse.h); NULL:
                                 * every layer dense */
    /* Set by sparse_model_setup: frees m->sparse (model_free calls it, so that nn/ does not
     * depend on the sparse kernels); NULL: nothing to free. */
    void (*sparse_free)(void *model);
    int unfused;            /* set before model_finalize: no ReLU fusion (layer.h; tests compare
                             * the two) */
    int no_eval_fold;       /* set before sparse_model_setup: no evaluation-mode BN fold into
                             * sparse convs (layer.h fold_bn; tests compare the two) */
} Model;

/* Names of the architectures model_build knows, NULL-terminated. */
extern const char *const model_names[];

/* Builds `name` for inputs of shape `input` and `classes` classes, allocates buffers for
 * batches up to max_batch and initialises parameters from `seed` (Kaiming normal, docs/cli.md).
 * Unknown names are refused with the list of known ones (CIGL_ERR_USAGE). */
int model_build(Model *m, const char *name, Shape input, int classes, int max_batch,
                uint64_t seed);
void model_free(Model *m);

/* Kaiming-normal weights, zero biases, BN gamma 1 / beta 0, running mean 0 / var 1. */
void model_init_params(Model *m, uint64_t seed);
/* Scale 0 for the last batch norm of every residual branch of the resnets (--zero-init-residual);
 * returns how many were set (0: the model has no such branch). */
int model_zero_init_residual(Model *m);

/* Forward pass over n <= max_batch samples of x (n x input). `weights` is the buffer the
 * layers read (m->params for dense training). Returns the logits (n x classes), which live in
 * the model's activation buffers. */
const float *model_forward(Model *m, const float *weights, const float *x, int n, int train);

/* Backward pass from dlogits; writes m->grads (overwritten, not accumulated). */
void model_backward(Model *m, const float *weights, const float *x, const float *dlogits, int n);

/* The pieces of model_forward/model_backward, for code that times or inspects single layers
 * (tests/bench/bench_train.c): the layers' context, one layer's forward (in order 0..n-1),
 * the zeroed activation gradients with dlogits as the last one, one layer's backward (in
 * order n-1..0). A fused ReLU layer's calls do nothing. */
LayerCtx model_ctx(const Model *m, const float *weights, int n, int train);
void model_forward_layer(Model *m, const LayerCtx *ctx, int i, const float *x);
void model_seed_backward(Model *m, const float *dlogits, int n);
void model_backward_layer(Model *m, const LayerCtx *ctx, int i, const float *x);

/* A flatten is a view, not a pass: the same floats as its input (NCHW per sample), so its
 * readers read its source's buffers and it has none of its own (act/dact NULL; the mlp's
 * 128 x 784 batch is not copied); as the last layer it is a copy. The layer whose output
 * buffer layer `in` reads (-1: the model input), following views. */
int model_view_source(const Model *m, int in);
/* Graph construction (used by model_build and by tests that build single layers). */
void model_init_empty(Model *m, const char *name, Shape input, int classes);
int model_add_linear(Model *m, const char *name, int in, int out_features, int bias);
int model_add_conv(Model *m, const char *name, int in, int out_c, int k, int stride, int pad,
                   int bias);
int model_add_batchnorm(Model *m, const char *name, int in);
int model_add_relu(Model *m, const char *name, int in);
int model_add_maxpool(Model *m, const char *name, int in, int k, int stride, int pad);
int model_add_global_avgpool(Model *m, const char *name, int in);
int model_add_add(Model *m, const char *name, int in, int in2);
int model_add_flatten(Model *m, const char *name, int in);
/* Allocates parameters, gradients, statistics, activations and workspace. */
int model_finalize(Model *m, int max_batch);

/* Output shape of layer index `i` (-1: the model input). */
Shape model_shape(const Model *m, int i);

/* Counts: all parameters, prunable weights. */
size_t model_prunable_count(const Model *m);

#endif
