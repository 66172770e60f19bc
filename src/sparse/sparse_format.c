/* The CSR pattern of a prunable weight matrix, the per-layer kernel choice and the per-step
 * state of the sparse kernels (see include/cigl/sparse.h). */
#include "cigl/sparse.h"

#include "cigl/conv_backend.h"
#include "cigl/error.h"
#include "cigl/sparse_rule.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

int sparse_matrix_build(SparseMatrix *s, const uint8_t *mask, int rows, int cols)
{
    size_t nnz = 0;
    const size_t len = (size_t)rows * cols;
    if (mask) {
#pragma omp simd reduction(+ : nnz)
        for (size_t i = 0; i < len; i++) nnz += mask[i] != 0;
    } else {
        nnz = len;
    }
    if (!s->row_ptr || s->rows != rows || s->cols != cols) {
        free(s->row_ptr);
        free(s->used);
        free(s->row_off);
        s->row_ptr = cigl_malloc(sizeof(int32_t) * ((size_t)rows + 1), "sparse row pointers");
        s->used = cigl_malloc(sizeof(int32_t) * ((size_t)cols + 1), "sparse used columns");
        s->row_off = cigl_malloc(sizeof(size_t) * ((size_t)cols + 1), "sparse row offsets");
        if (!s->row_ptr || !s->used || !s->row_off) return CIGL_ERR_RUNTIME;
    }
    if (nnz + 1 > s->cap || !s->col) { /* + 1: the branch-free build writes one past */
        free(s->col);
        s->cap = nnz + 1;
        s->col = cigl_malloc(sizeof(int32_t) * s->cap, "sparse column indices");
        if (!s->col) return CIGL_ERR_RUNTIME;
    }
    s->rows = rows;
    s->cols = cols;
    s->nnz = nnz;
    /* used[] doubles as a "column holds an entry" map while building */
    int32_t *map = s->used;
    for (int j = 0; j < cols; j++) map[j] = -1;
    size_t k = 0;
    s->row_ptr[0] = 0;
    for (int i = 0; i < rows; i++) {
        const uint8_t *mr = mask ? mask + (size_t)i * cols : NULL;
        for (int j = 0; j < cols; j++) { /* branch-free: the mask looks random (mispredicts) */
            const int on = !mr || mr[j];
            s->col[k] = j; /* kept when on; else overwritten next (col has nnz + 1 slots) */
            k += (size_t)on;
            map[j] &= on - 1; /* -1 stays -1 unless the column holds an entry: 0 */
        }
        s->row_ptr[i + 1] = (int32_t)k;
    }
    int u = 0;
    for (int j = 0; j < cols; j++) /* compact: used[u] = j, in place (u <= j) */
        if (map[j] == 0) map[u++] = j;
    s->n_used = u;
    return CIGL_OK;
}

void sparse_matrix_free(SparseMatrix *s)
{
    free(s->row_ptr);
    free(s->col);
    free(s->used);
    free(s->row_off);
    memset(s, 0, sizeof(*s));
}

int sparse_kernels_parse(const char *name)
{
    if (!strcmp(name, "auto")) return KERNELS_AUTO;
    if (!strcmp(name, "dense")) return KERNELS_DENSE;
    if (!strcmp(name, "sparse")) return KERNELS_SPARSE;
    return -1;
}

const uint8_t *sparse_step_active(const Layer *l, const LayerCtx *ctx)
{
    const SparseModel *sm = l->sparse->model;
    if (!sm->active || ctx->weights != sm->step_weights) return NULL;
    return sm->active + l->weight_off;
}

const float *sparse_step_weights(const Layer *l, const LayerCtx *ctx, float *scale)
{
    const SparseModel *sm = l->sparse->model;
    const int step = sm->step_weights && ctx->weights == sm->step_weights;
    *scale = step ? sm->step_scale : 1.0f;
    return (step ? sm->step_source : ctx->weights) + l->weight_off;
}

/* A dense backend's conv thresholds (sparse_rule.h): output-plane tiers, and per layout
 * (direct stride-1 k > 1, strided k > 1, 1x1) the maximum density of each tier. */
typedef struct {
    long large_plane, medium_plane;
    double direct[3], strided[3], pointwise[3]; /* large, medium, small plane */
} ConvRule;

/* the own kernels' thresholds were measured by plane only: every layout has the same tiers */
#define OWN_TIERS                                                                               \
    {SPARSE_AUTO_CONV_LARGE_MAX_DENSITY, SPARSE_AUTO_CONV_MEDIUM_MAX_DENSITY,                    \
     SPARSE_AUTO_CONV_SMALL_MAX_DENSITY}
static const ConvRule conv_rules[2] = {
    [CONV_BACKEND_OWN] = {SPARSE_AUTO_CONV_LARGE_PLANE, SPARSE_AUTO_CONV_MEDIUM_PLANE, OWN_TIERS,
                          OWN_TIERS, OWN_TIERS},
    [CONV_BACKEND_ONEDNN] = {SPARSE_AUTO_ONEDNN_LARGE_PLANE, SPARSE_AUTO_ONEDNN_MEDIUM_PLANE,
                             {SPARSE_AUTO_ONEDNN_LARGE_MAX_DENSITY,
                              SPARSE_AUTO_ONEDNN_MEDIUM_MAX_DENSITY,
                              SPARSE_AUTO_ONEDNN_SMALL_MAX_DENSITY},
                             {SPARSE_AUTO_ONEDNN_STRIDED_MEDIUM_MAX_DENSITY,
                              SPARSE_AUTO_ONEDNN_STRIDED_MEDIUM_MAX_DENSITY,
                              SPARSE_AUTO_ONEDNN_STRIDED_SMALL_MAX_DENSITY},
                             {SPARSE_AUTO_ONEDNN_POINTWISE_MAX_DENSITY,
                              SPARSE_AUTO_ONEDNN_POINTWISE_MAX_DENSITY,
                              SPARSE_AUTO_ONEDNN_POINTWISE_MAX_DENSITY}},
};
#undef OWN_TIERS

int sparse_auto_choice(const Layer *l, double density)
{
    if (l->kind == LAYER_LINEAR)
        return density <= SPARSE_AUTO_LINEAR_MAX_DENSITY &&
               l->weight_len >= SPARSE_AUTO_LINEAR_MIN_WEIGHTS;
    if (l->kind != LAYER_CONV2D) return 0;
    const ConvRule *r = &conv_rules[conv_backend_get()];
    const long plane = (long)l->y.h * l->y.w;
    const int tier = plane >= r->large_plane ? 0 : plane >= r->medium_plane ? 1 : 2;
    const double *max = l->k == 1 ? r->pointwise : l->stride > 1 ? r->strided : r->direct;
    return density <= max[tier];
}

static int prunable_layer(const Layer *l)
{
    return (l->kind == LAYER_LINEAR || l->kind == LAYER_CONV2D) && l->weight_len > 0;
}

static int layer_rows(const Layer *l) { return l->kind == LAYER_LINEAR ? l->out_features : l->y.c; }

/* The layer whose buffer holds layer j's output (a fused ReLU shares its producer's). */
static int buffer_of(const Model *m, int j) { return m->layers[j].fused ? m->layers[j].in : j; }

/* The only layer that reads layer p's output buffer, or -1 (none: the model's output; or
 * several). */
static int sole_reader(const Model *m, int p)
{
    int readers = 0, reader = -1;
    for (int j = 0; j < m->n_layers; j++) {
        const Layer *lj = &m->layers[j];
        if (lj->fused) continue;
        const int r = (lj->in >= 0 && buffer_of(m, lj->in) == p) +
                      (lj->in2 >= 0 && buffer_of(m, lj->in2) == p);
        readers += r;
        if (r) reader = j;
    }
    return readers == 1 ? reader : -1;
}

/* Feature-major hand-off (layer.h): a linear layer whose output buffer's only reader is a
 * linear layer, with sparse kernels on at least one side, passes it features x batch. (Both
 * dense: GEMM reads either layout at the same cost, so nothing is changed.) */
static void plan_layouts(Model *m)
{
    for (int p = 0; p < m->n_layers; p++) {
        Layer *lp = &m->layers[p];
        if (lp->kind != LAYER_LINEAR || lp->fused) continue;
        const int c = sole_reader(m, p);
        if (c < 0 || m->layers[c].kind != LAYER_LINEAR || (!lp->sparse && !m->layers[c].sparse))
            continue;
        lp->out_t = m->layers[c].in_t = 1;
    }
}

/* Evaluation-mode BN folds (layer.h): a sparse conv without bias whose output buffer's only
 * reader is a BN layer applies that BN while it writes its output (unless m->no_eval_fold). */
static void plan_bn_folds(Model *m)
{
    for (int p = 0; p < m->n_layers && !m->no_eval_fold; p++) {
        Layer *lp = &m->layers[p];
        if (lp->kind != LAYER_CONV2D || !lp->sparse || lp->bias_len || lp->relu_fused) continue;
        const int c = sole_reader(m, p);
        if (c < 0 || m->layers[c].kind != LAYER_BATCHNORM) continue;
        lp->fold_bn = &m->layers[c];
        m->layers[c].eval_folded = 1;
    }
}

void sparse_model_free(Model *m)
{
    if (!m->layers) return;
    for (int i = 0; i < m->n_layers; i++) {
        m->layers[i].in_t = m->layers[i].out_t = 0;
        m->layers[i].fold_bn = NULL;
        m->layers[i].eval_folded = 0;
    }
    for (int i = 0; i < m->n_layers; i++) {
        SparseLayer *sl = m->layers[i].sparse;
        if (!sl) continue;
        sparse_matrix_free(&sl->s);
        free(sl->xt);
        free(sl->yt);
        free(sl->dxt);
        free(sl->gpart);
        free(sl);
        m->layers[i].sparse = NULL;
        m->layers[i].ops = layer_ops(m->layers[i].kind);
    }
    if (m->sparse) free(m->sparse->kind);
    free(m->sparse);
    m->sparse = NULL;
}

/* The operation tables of a layer on the sparse kernels: sparse_model_setup swaps them in and
 * sparse_model_free restores layer_ops, so the dense layers never look at l->sparse. Backward
 * takes the dense layer's path while the weight gradient must be dense (dense_wgrad). */
static void conv_forward_sparse(Layer *l, const LayerCtx *ctx, const float *x, const float *x2,
                                float *y)
{
    (void)x2;
    sparse_conv_forward(l, ctx, x, y);
}

static void conv_backward_sparse(Layer *l, const LayerCtx *ctx, const float *x, const float *x2,
                                 const float *y, const float *dy, float *dx, float *dx2)
{
    if (sparse_layer_backward_sparse(l))
        sparse_conv_backward(l, ctx, x, dy, dx);
    else
        layer_ops(LAYER_CONV2D)->backward(l, ctx, x, x2, y, dy, dx, dx2);
}

static void linear_forward_sparse(Layer *l, const LayerCtx *ctx, const float *x,
                                  const float *x2, float *y)
{
    (void)x2;
    sparse_linear_forward(l, ctx, x, y);
}

static void linear_backward_sparse(Layer *l, const LayerCtx *ctx, const float *x,
                                   const float *x2, const float *y, const float *dy, float *dx,
                                   float *dx2)
{
    if (sparse_layer_backward_sparse(l))
        sparse_linear_backward(l, ctx, x, dy, dx);
    else
        layer_ops(LAYER_LINEAR)->backward(l, ctx, x, x2, y, dy, dx, dx2);
}

/* the sparse conv stores into a dx it writes first, as the dense one does; the sparse linear
 * adds, so the model zeroes such a buffer for it (layer.h) */
static const LayerOps sparse_conv_ops = {"conv2d", conv_forward_sparse, conv_backward_sparse, 0,
                                         1};
static const LayerOps sparse_linear_ops = {"linear", linear_forward_sparse,
                                           linear_backward_sparse, 0, 0};

static int layer_build(Layer *l, const uint8_t *mask)
{
    SparseLayer *sl = l->sparse;
    const int rows = layer_rows(l), cols = (int)(l->weight_len / (size_t)rows);
    int rc = sparse_matrix_build(&sl->s, mask ? mask + l->weight_off : NULL, rows, cols);
    if (rc) return rc;
    sl->clean = 0;
    if ((size_t)sl->parts * sl->s.nnz > sl->gpart_cap || !sl->gpart) {
        free(sl->gpart);
        sl->gpart_cap = (size_t)sl->parts * sl->s.nnz;
        sl->gpart = cigl_malloc(sizeof(float) * (sl->gpart_cap ? sl->gpart_cap : 1),
                                "sparse weight-gradient partials");
        if (!sl->gpart) return CIGL_ERR_RUNTIME;
    }
    return CIGL_OK;
}

int sparse_model_rebuild(Model *m, const uint8_t *mask)
{
    for (int i = 0; i < m->n_layers; i++) {
        if (!m->layers[i].sparse) continue;
        const int rc = layer_build(&m->layers[i], mask);
        if (rc) return rc;
    }
    return CIGL_OK;
}

static void free_hook(void *m) { sparse_model_free(m); }

/* Allocates the state for the layers with kind[i] set and builds their patterns. */
static int setup_kinds(Model *m, const uint8_t *kind, const uint8_t *mask)
{
    sparse_model_free(m);
    int any = 0;
    for (int i = 0; i < m->n_layers; i++) any |= kind[i];
    if (!any) return CIGL_OK;
    m->sparse_free = free_hook;
    m->sparse = cigl_calloc(1, sizeof(SparseModel), "sparse kernels");
    if (!m->sparse) return CIGL_ERR_RUNTIME;
    m->sparse->kind = cigl_calloc((size_t)m->n_layers, 1, "kernel choices");
    if (!m->sparse->kind) return CIGL_ERR_RUNTIME;
    memcpy(m->sparse->kind, kind, (size_t)m->n_layers);
    m->sparse->version = -1;
    const int parts = m->conv_slots > 0 ? m->conv_slots : 1;
    for (int i = 0; i < m->n_layers; i++) {
        if (!kind[i]) continue;
        Layer *l = &m->layers[i];
        SparseLayer *sl = cigl_calloc(1, sizeof(SparseLayer), "sparse layer");
        if (!sl) return CIGL_ERR_RUNTIME;
        l->sparse = sl;
        l->ops = l->kind == LAYER_CONV2D ? &sparse_conv_ops : &sparse_linear_ops;
        sl->model = m->sparse;
        sl->w_off = l->weight_off;
        sl->parts = l->kind == LAYER_CONV2D ? parts : 1;
        if (l->kind == LAYER_LINEAR) {
            const size_t b = (size_t)(m->max_batch > 0 ? m->max_batch : 1);
            const size_t in = shape_numel(l->x), out = (size_t)l->out_features;
            sl->xt = cigl_malloc(sizeof(float) * b * in, "sparse linear buffers");
            sl->dxt = cigl_malloc(sizeof(float) * b * in, "sparse linear buffers");
            sl->yt = cigl_malloc(sizeof(float) * b * out, "sparse linear buffers");
            if (!sl->xt || !sl->dxt || !sl->yt) return CIGL_ERR_RUNTIME;
        }
        const int rc = layer_build(l, mask);
        if (rc) return rc;
    }
    plan_layouts(m); /* the flags start cleared: sparse_model_free above */
    plan_bn_folds(m);
    return CIGL_OK;
}

int sparse_model_setup(Model *m, KernelsMode mode, const uint8_t *mask)
{
    uint8_t *kind = cigl_calloc((size_t)m->n_layers + 1, 1, "kernel choices");
    if (!kind) return CIGL_ERR_RUNTIME;
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        if (!prunable_layer(l) || mode == KERNELS_DENSE) continue;
        if (mode == KERNELS_SPARSE) {
            kind[i] = 1;
            continue;
        }
        size_t a = l->weight_len;
        if (mask) {
            a = 0;
            for (size_t j = 0; j < l->weight_len; j++) a += mask[l->weight_off + j] != 0;
        }
        kind[i] = (uint8_t)sparse_auto_choice(l, (double)a / (double)l->weight_len);
    }
    const int rc = setup_kinds(m, kind, mask);
    free(kind);
    if (rc) sparse_model_free(m);
    return rc;
}

int sparse_choice_parse(const Model *m, const char *choice, uint8_t *kind)
{
    const char *p = choice;
    memset(kind, 0, (size_t)m->n_layers);
    /* one word for every layer (checkpoints from before the per-layer choice say "dense") */
    if (!strcmp(choice, "dense") || !strcmp(choice, "sparse")) {
        for (int i = 0; i < m->n_layers; i++)
            kind[i] = (uint8_t)(prunable_layer(&m->layers[i]) && choice[0] == 's');
        return 0;
    }
    for (int i = 0; i < m->n_layers; i++) {
        if (!prunable_layer(&m->layers[i])) continue;
        if (!strncmp(p, "dense", 5)) {
            p += 5;
        } else if (!strncmp(p, "sparse", 6)) {
            kind[i] = 1;
            p += 6;
        } else {
            return -1;
        }
        if (*p == ',') p++;
        else if (*p) return -1;
    }
    return *p ? -1 : 0;
}

int sparse_model_setup_choice(Model *m, const char *choice, const uint8_t *mask)
{
    uint8_t *kind = cigl_calloc((size_t)m->n_layers + 1, 1, "kernel choices");
    if (!kind) return CIGL_ERR_RUNTIME;
    int rc = CIGL_OK;
    if (sparse_choice_parse(m, choice, kind))
        rc = cigl_fail(CIGL_ERR_USAGE, "kernel choice '%s' does not name dense or sparse for "
                       "each of the model's conv and linear layers; the file does not belong "
                       "to this model", choice);
    if (!rc) rc = setup_kinds(m, kind, mask);
    free(kind);
    if (rc) sparse_model_free(m);
    return rc;
}

int sparse_choice_format(const Model *m, char *buf, size_t len)
{
    size_t at = 0;
    if (len) buf[0] = 0;
    for (int i = 0; i < m->n_layers; i++) {
        if (!prunable_layer(&m->layers[i])) continue;
        const char *k = sparse_layer_kernel(m, i);
        const size_t need = strlen(k) + (at ? 1 : 0);
        if (at + need + 1 > len) return -1;
        if (at) buf[at++] = ',';
        memcpy(buf + at, k, strlen(k) + 1);
        at += strlen(k);
    }
    return (int)at;
}

const char *sparse_layer_kernel(const Model *m, int layer)
{
    return m->layers[layer].sparse ? "sparse" : "dense";
}

int sparse_model_step(Model *m, const uint8_t *mask, long version, const uint8_t *active,
                      const float *step_weights, int dense_wgrad)
{
    SparseModel *sm = m->sparse;
    if (!sm) return CIGL_OK;
    if (sm->version != version) {
        const int rc = sparse_model_rebuild(m, mask);
        if (rc) return rc;
        sm->version = version;
    }
    sm->active = active;
    sm->step_weights = step_weights;
    sm->step_source = step_weights;
    sm->step_scale = 1.0f;
    sm->dense_wgrad = dense_wgrad;
    if (dense_wgrad) /* the dense backward writes every gradient position */
        for (int i = 0; i < m->n_layers; i++)
            if (m->layers[i].sparse) m->layers[i].sparse->clean = 0;
    return CIGL_OK;
}

void sparse_model_step_source(Model *m, const float *source, float scale)
{
    if (!m->sparse) return;
    m->sparse->step_source = source;
    m->sparse->step_scale = scale;
}

int sparse_layer_backward_sparse(const Layer *l)
{
    return l->sparse && !l->sparse->model->dense_wgrad;
}
