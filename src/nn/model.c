/* Model graph construction, buffer allocation, initialisation, forward and backward. */
#include "cigl/model.h"

#include "cigl/conv.h"
#include "cigl/error.h"
#include "cigl/rng.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per thread, im2col columns plus the GEMM output of one chunk stay under this many floats
 * (512 KiB, half of one core's L2; conv_chunk caps chunks there as well, and gives a sample
 * that needs more a chunk of its own). */
#define CONV_WORKSPACE_BUDGET ((size_t)128 << 10)

/* Floats of one per-thread convolution workspace slot: the largest any conv layer needs. */
static size_t conv_slot_size(const Model *m)
{
    size_t slot = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        if (l->kind != LAYER_CONV2D) continue;
        const size_t need = conv_slot_floats(l, m->max_batch, CONV_WORKSPACE_BUDGET);
        if (need > slot) slot = need;
    }
    return slot;
}

void model_init_empty(Model *m, const char *name, Shape input, int classes)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->input = input;
    m->classes = classes;
}

Shape model_shape(const Model *m, int i) { return i < 0 ? m->input : m->layers[i].y; }

static Layer *push_layer(Model *m, LayerKind kind, const char *name, int in, int in2)
{
    if (m->n_layers == m->cap_layers) {
        int cap = m->cap_layers ? 2 * m->cap_layers : 32;
        Layer *grown = realloc(m->layers, sizeof(Layer) * cap);
        if (!grown) return NULL;
        m->layers = grown;
        m->cap_layers = cap;
    }
    Layer *l = &m->layers[m->n_layers++];
    memset(l, 0, sizeof(*l));
    l->kind = kind;
    l->ops = layer_ops(kind);
    snprintf(l->name, sizeof(l->name), "%s", name);
    l->in = in;
    l->in2 = in2;
    l->x = model_shape(m, in);
    l->y = l->x;
    return l;
}

static int push_tensor(Model *m, const char *layer_name, const char *suffix, ParamKind kind,
                       int prunable, int ndim, const int *shape, size_t *off_out, size_t *len_out)
{
    if (m->n_tensors == m->cap_tensors) {
        int cap = m->cap_tensors ? 2 * m->cap_tensors : 32;
        ParamTensor *grown = realloc(m->tensors, sizeof(ParamTensor) * cap);
        if (!grown) return -1;
        m->tensors = grown;
        m->cap_tensors = cap;
    }
    ParamTensor *t = &m->tensors[m->n_tensors++];
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s.%s", layer_name, suffix);
    t->kind = kind;
    t->layer = m->n_layers - 1;
    t->prunable = prunable;
    t->ndim = ndim;
    t->len = 1;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        t->len *= (size_t)shape[d];
    }
    t->off = m->n_params;
    m->n_params += t->len;
    *off_out = t->off;
    *len_out = t->len;
    return m->n_layers - 1;
}

int model_add_linear(Model *m, const char *name, int in, int out_features, int bias)
{
    Layer *l = push_layer(m, LAYER_LINEAR, name, in, -1);
    if (!l) return -1;
    l->out_features = out_features;
    l->y = (Shape){out_features, 1, 1};
    const int ws[2] = {out_features, (int)shape_numel(l->x)};
    push_tensor(m, name, "weight", PARAM_WEIGHT, 1, 2, ws, &l->weight_off, &l->weight_len);
    if (bias) push_tensor(m, name, "bias", PARAM_BIAS, 0, 1, ws, &l->bias_off, &l->bias_len);
    return m->n_layers - 1;
}

int model_add_conv(Model *m, const char *name, int in, int out_c, int k, int stride, int pad,
                   int bias)
{
    Layer *l = push_layer(m, LAYER_CONV2D, name, in, -1);
    if (!l) return -1;
    l->k = k;
    l->stride = stride;
    l->pad = pad;
    l->y = (Shape){out_c, conv_out_size(l->x.h, k, stride, pad),
                   conv_out_size(l->x.w, k, stride, pad)};
    const int ws[4] = {out_c, l->x.c, k, k};
    push_tensor(m, name, "weight", PARAM_WEIGHT, 1, 4, ws, &l->weight_off, &l->weight_len);
    if (bias) push_tensor(m, name, "bias", PARAM_BIAS, 0, 1, ws, &l->bias_off, &l->bias_len);
    return m->n_layers - 1;
}

int model_add_batchnorm(Model *m, const char *name, int in)
{
    Layer *l = push_layer(m, LAYER_BATCHNORM, name, in, -1);
    if (!l) return -1;
    l->bn_momentum = 0.1f;
    l->bn_eps = 1e-5f;
    l->stats_off = m->n_bn_stats;
    m->n_bn_stats += 2 * (size_t)l->x.c;
    const int cs[1] = {l->x.c};
    push_tensor(m, name, "weight", PARAM_BN_GAMMA, 0, 1, cs, &l->weight_off, &l->weight_len);
    push_tensor(m, name, "bias", PARAM_BN_BETA, 0, 1, cs, &l->bias_off, &l->bias_len);
    return m->n_layers - 1;
}

int model_add_relu(Model *m, const char *name, int in)
{
    return push_layer(m, LAYER_RELU, name, in, -1) ? m->n_layers - 1 : -1;
}

int model_add_maxpool(Model *m, const char *name, int in, int k, int stride, int pad)
{
    Layer *l = push_layer(m, LAYER_MAXPOOL, name, in, -1);
    if (!l) return -1;
    l->k = k;
    l->stride = stride;
    l->pad = pad;
    l->y = (Shape){l->x.c, conv_out_size(l->x.h, k, stride, pad),
                   conv_out_size(l->x.w, k, stride, pad)};
    return m->n_layers - 1;
}

int model_add_global_avgpool(Model *m, const char *name, int in)
{
    Layer *l = push_layer(m, LAYER_GLOBAL_AVGPOOL, name, in, -1);
    if (!l) return -1;
    l->y = (Shape){l->x.c, 1, 1};
    return m->n_layers - 1;
}

int model_add_add(Model *m, const char *name, int in, int in2)
{
    return push_layer(m, LAYER_ADD, name, in, in2) ? m->n_layers - 1 : -1;
}

int model_add_flatten(Model *m, const char *name, int in)
{
    Layer *l = push_layer(m, LAYER_FLATTEN, name, in, -1);
    if (!l) return -1;
    l->y = (Shape){(int)shape_numel(l->x), 1, 1};
    return m->n_layers - 1;
}

/* A flatten is a view of its input (model.h), except as the model's last layer, whose buffers
 * hold the logits and their gradient. */
static int is_view(const Model *m, int i)
{
    return m->layers[i].kind == LAYER_FLATTEN && i != m->n_layers - 1;
}

/* Fuses every ReLU that is the only consumer of its producer (a layer other than a ReLU or
 * the model input) into that producer (layer.h), unless m->unfused. */
static void fuse_relus(Model *m)
{
    if (m->unfused) return;
    for (int i = 0; i < m->n_layers; i++) {
        Layer *r = &m->layers[i];
        if (r->kind != LAYER_RELU || r->in < 0 || m->layers[r->in].kind == LAYER_RELU ||
            is_view(m, r->in)) /* a view writes nothing */
            continue;
        int consumers = 0;
        for (int j = 0; j < m->n_layers; j++)
            consumers += (m->layers[j].in == r->in) + (m->layers[j].in2 == r->in);
        if (consumers != 1) continue;
        r->fused = 1;
        m->layers[r->in].relu_fused = 1;
    }
}

/* The layer whose gradient buffer src is (a fused ReLU shares its producer's). */
static int grad_owner(const Model *m, int src)
{
    while (src >= 0 && m->layers[src].fused) src = m->layers[src].in;
    return src;
}

/* The gradient of layer i's output is live in backward from its first writer's call (the
 * highest-index layer reading it) to layer i's own call, which reads it; in between, the layers
 * run in reverse index order. Buffers whose live spans [i, last reader] do not intersect share
 * memory: largest first, each into the first shared buffer none of whose members it overlaps.
 * A reused buffer's old contents never show, since each first writer stores (dx_first) or gets
 * it zeroed first. On resnet50 this keeps a handful of buffers instead of one per layer.
 * Layers with no gradient to compute (needs_grad 0) keep a buffer of their own, never
 * written. Marks each buffer's first writer (dx_first, dx2_first) and sets m->dact of every
 * owner (not fused, not a view). Needs needs_grad and the fusions set. */
static int plan_gradient_buffers(Model *m, int max_batch)
{
    const int n = m->n_layers;
    int *end = cigl_malloc(sizeof(int) * (size_t)n, "gradient spans");
    int *order = cigl_malloc(sizeof(int) * (size_t)n, "gradient spans");
    int *slot_of = cigl_malloc(sizeof(int) * (size_t)n, "gradient spans");
    size_t *slot_size = cigl_malloc(sizeof(size_t) * (size_t)n, "gradient spans");
    m->grad_slots = cigl_calloc((size_t)n, sizeof(float *), "gradient buffers");
    int rc = end && order && slot_of && slot_size && m->grad_slots ? CIGL_OK : CIGL_ERR_RUNTIME;
    int owners = 0;
    for (int i = 0; !rc && i < n; i++) {
        end[i] = i == n - 1 ? i : -1; /* the logits' gradient: seeded, read by the last layer */
        slot_of[i] = -1;
        if (!m->layers[i].fused && !is_view(m, i)) order[owners++] = i;
    }
    for (int j = 0; !rc && j < n; j++) { /* readers, through views and fused ReLUs */
        const Layer *l = &m->layers[j];
        if (l->fused || is_view(m, j)) continue;
        const int a = grad_owner(m, model_view_source(m, l->in));
        const int b = grad_owner(m, model_view_source(m, l->in2));
        if (a >= 0 && j > end[a]) end[a] = j;
        if (b >= 0 && j > end[b]) end[b] = j;
    }
    /* backward runs in reverse: a buffer's last reader writes it first (layer.h: dx_first) */
    for (int j = 0; !rc && j < n; j++) {
        Layer *l = &m->layers[j];
        l->dx_first = l->dx2_first = 0;
        if (l->fused || is_view(m, j) || !l->needs_grad) continue;
        const int a = grad_owner(m, model_view_source(m, l->in));
        const int b = grad_owner(m, model_view_source(m, l->in2));
        l->dx_first = a >= 0 && m->layers[a].needs_grad && end[a] == j;
        l->dx2_first = b >= 0 && b != a && m->layers[b].needs_grad && end[b] == j;
    }
    for (int k = 1; !rc && k < owners; k++) { /* by size, largest first; stable */
        const int v = order[k];
        int q = k;
        for (; q > 0 && shape_numel(m->layers[order[q - 1]].y) < shape_numel(m->layers[v].y); q--)
            order[q] = order[q - 1];
        order[q] = v;
    }
    for (int k = 0; !rc && k < owners; k++) {
        const int i = order[k];
        const size_t floats = (size_t)max_batch * shape_numel(m->layers[i].y);
        const int span_end = end[i];
        int s = -1;
        for (int c = 0; m->layers[i].needs_grad && span_end >= 0 && s < 0 && c < m->n_grad_slots;
             c++) {
            int clash = slot_size[c] < floats;
            for (int p = 0; !clash && p < n; p++) {
                if (slot_of[p] != c) continue;
                /* a member without a gradient owns its buffer; spans are closed intervals */
                clash = !m->layers[p].needs_grad || end[p] < 0 || (p <= span_end && i <= end[p]);
            }
            if (!clash) s = c;
        }
        if (s < 0) {
            s = m->n_grad_slots++;
            slot_size[s] = floats;
            m->grad_slots[s] = cigl_malloc(sizeof(float) * floats, "activation gradients");
            if (!m->grad_slots[s]) rc = CIGL_ERR_RUNTIME;
        }
        slot_of[i] = s;
        m->dact[i] = m->grad_slots[s];
    }
    free(end);
    free(order);
    free(slot_of);
    free(slot_size);
    return rc;
}

int model_finalize(Model *m, int max_batch)
{
    m->max_batch = max_batch;
    m->wgrad_scale = 1.0f;
    m->params = cigl_calloc(m->n_params, sizeof(float), "parameters");
    m->grads = cigl_calloc(m->n_params, sizeof(float), "gradients");
    m->bn_stats = cigl_calloc(m->n_bn_stats ? m->n_bn_stats : 1, sizeof(float), "BN statistics");
    m->act = cigl_calloc(m->n_layers, sizeof(float *), "activations");
    m->dact = cigl_calloc(m->n_layers, sizeof(float *), "activation gradients");
    if (!m->params || !m->grads || !m->bn_stats || !m->act || !m->dact) return CIGL_ERR_RUNTIME;
    fuse_relus(m);
    for (int i = 0; i < m->n_layers; i++) { /* producers come first */
        Layer *l = &m->layers[i];
        l->needs_grad = l->weight_len > 0 || l->bias_len > 0 ||
                        (l->in >= 0 && m->layers[l->in].needs_grad) ||
                        (l->in2 >= 0 && m->layers[l->in2].needs_grad);
    }
    if (plan_gradient_buffers(m, max_batch)) return CIGL_ERR_RUNTIME;
    size_t ws = 1;
    for (int i = 0; i < m->n_layers; i++) {
        Layer *l = &m->layers[i];
        if (l->fused) { /* producers come first: their buffers exist */
            m->act[i] = m->act[l->in];
            m->dact[i] = m->dact[l->in];
            continue;
        }
        if (is_view(m, i)) continue; /* no buffers of its own */
        const size_t out = (size_t)max_batch * shape_numel(l->y);
        m->act[i] = cigl_malloc(sizeof(float) * out, "activations");
        if (!m->act[i]) return CIGL_ERR_RUNTIME;
        if (l->kind == LAYER_BATCHNORM) {
            l->cache2 = cigl_malloc(sizeof(float) * 2 * (size_t)l->x.c, "BN statistics");
            if (!l->cache2) return CIGL_ERR_RUNTIME;
            for (int c = 0; c < l->x.c; c++) m->bn_stats[l->stats_off + l->x.c + c] = 1.0f;
        }
        if (l->kind == LAYER_MAXPOOL) {
            l->argmax = cigl_malloc(sizeof(int32_t) * out, "max-pool indices");
            if (!l->argmax) return CIGL_ERR_RUNTIME;
        }
    }
    /* One slot per OpenMP thread (the caller sets the thread count before building the model);
     * make_ctx passes the slot count to the layers. */
    const size_t slot = conv_slot_size(m);
    m->conv_slots = omp_get_max_threads() > 0 ? omp_get_max_threads() : 1;
    if (slot) ws = slot * (size_t)m->conv_slots;
    m->workspace_floats = ws;
    m->workspace = cigl_malloc(sizeof(float) * ws, "convolution workspace");
    return m->workspace ? CIGL_OK : CIGL_ERR_RUNTIME;
}

void model_free(Model *m)
{
    if (m->sparse_free) m->sparse_free(m);
    for (int i = 0; i < m->n_layers; i++) {
        if (!m->layers[i].fused && m->act) free(m->act[i]);
        free(m->layers[i].cache2);
        free(m->layers[i].argmax);
    }
    for (int s = 0; s < m->n_grad_slots; s++) free(m->grad_slots[s]);
    free(m->grad_slots);
    free(m->act);
    free(m->dact);
    free(m->layers);
    free(m->tensors);
    free(m->params);
    free(m->grads);
    free(m->bn_stats);
    free(m->workspace);
    memset(m, 0, sizeof(*m));
}

/* Kaiming normal with gain sqrt(2): convolutions use fan_out = out_channels * k * k (as
 * torchvision's ResNets and the CigL authors' code), linear layers fan_in. Each weight is drawn
 * from its own Philox counter (its flat index), so initialisation is independent of threads. */
void model_init_params(Model *m, uint64_t seed)
{
    for (int t = 0; t < m->n_tensors; t++) {
        const ParamTensor *pt = &m->tensors[t];
        float *p = m->params + pt->off;
        if (pt->kind == PARAM_WEIGHT) {
            const double fan = pt->ndim == 4 ? (double)pt->shape[0] * pt->shape[2] * pt->shape[3]
                                             : (double)pt->shape[1];
            const double std = sqrt(2.0 / fan);
            for (size_t i = 0; i < pt->len; i++)
                p[i] = (float)(std * rng_normal(seed, RNG_INIT, 0, pt->off + i));
        } else {
            const float v = pt->kind == PARAM_BN_GAMMA ? 1.0f : 0.0f;
            for (size_t i = 0; i < pt->len; i++) p[i] = v;
        }
    }
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        if (l->kind != LAYER_BATCHNORM) continue;
        for (int c = 0; c < l->x.c; c++) {
            m->bn_stats[l->stats_off + c] = 0.0f;
            m->bn_stats[l->stats_off + l->x.c + c] = 1.0f;
        }
    }
}

LayerCtx model_ctx(const Model *m, const float *weights, int n, int train)
{
    LayerCtx ctx = {.weights = weights, .grads = m->grads, .bn_stats = m->bn_stats,
                    .workspace = m->workspace, .workspace_floats = m->workspace_floats,
                    .n = n, .train = train, .wgrad_scale = m->wgrad_scale,
                    .conv_slots = m->conv_slots};
    return ctx;
}

static long output_floats(const Model *m, int i, int n)
{
    return (long)n * (long)shape_numel(m->layers[i].y);
}

int model_view_source(const Model *m, int in)
{
    while (in >= 0 && is_view(m, in)) in = m->layers[in].in;
    return in;
}

/* The output (gradient) buffer a layer reads as its input `in`: the model input x for -1. */
static const float *input_of(const Model *m, int in, const float *x)
{
    in = model_view_source(m, in);
    return in < 0 ? x : m->act[in];
}

void model_forward_layer(Model *m, const LayerCtx *ctx, int i, const float *x)
{
    Layer *l = &m->layers[i];
    if (l->fused || is_view(m, i)) return; /* applied by its producer / a view */
    if (l->eval_folded && !ctx->train) return;          /* its conv applied it (layer.h) */
    const float *in = input_of(m, l->in, x);
    const float *in2 = l->in2 < 0 ? NULL : input_of(m, l->in2, x);
    /* a conv with a folded BN writes the BN's output in evaluation */
    float *out = l->fold_bn && !ctx->train ? m->act[l->fold_bn - m->layers] : m->act[i];
    l->ops->forward(l, ctx, in, in2, out);
    if (l->relu_fused && !l->ops->applies_relu) relu_inplace(m->act[i], output_floats(m, i, ctx->n));
}

const float *model_forward(Model *m, const float *weights, const float *x, int n, int train)
{
    const LayerCtx ctx = model_ctx(m, weights, n, train);
    for (int i = 0; i < m->n_layers; i++) model_forward_layer(m, &ctx, i, x);
    return m->act[m->n_layers - 1];
}

void model_seed_backward(Model *m, const float *dlogits, int n)
{
    /* every other gradient buffer is written by its first writer (plan_gradient_buffers) */
    memcpy(m->dact[m->n_layers - 1], dlogits, sizeof(float) * (size_t)n * m->classes);
}

void model_backward_layer(Model *m, const LayerCtx *ctx, int i, const float *x)
{
    Layer *l = &m->layers[i];
    /* a fused ReLU: its producer masks the gradient; no parameters at or before l: nothing
     * to learn from its gradient */
    if (l->fused || !l->needs_grad || is_view(m, i)) return;
    const float *in = input_of(m, l->in, x);
    const float *in2 = l->in2 < 0 ? NULL : input_of(m, l->in2, x);
    /* no gradient for the model input, nor for outputs of parameter-free layers reading it;
     * through a flatten straight into its source's gradient */
    const int src = model_view_source(m, l->in), src2 = model_view_source(m, l->in2);
    float *din = src < 0 || !m->layers[src].needs_grad ? NULL : m->dact[src];
    float *din2 = src2 < 0 || !m->layers[src2].needs_grad ? NULL : m->dact[src2];
    if (l->relu_fused && !l->ops->applies_relu)
        relu_mask_inplace(m->dact[i], m->act[i], output_floats(m, i, ctx->n));
    if (!l->ops->writes_first) { /* a kind that only adds: its first write adds to zeros */
        if (din && l->dx_first)
            memset(din, 0, sizeof(float) * (size_t)output_floats(m, src, ctx->n));
        if (din2 && l->dx2_first)
            memset(din2, 0, sizeof(float) * (size_t)output_floats(m, src2, ctx->n));
    }
    l->ops->backward(l, ctx, in, in2, m->act[i], m->dact[i], din, din2);
}

void model_backward(Model *m, const float *weights, const float *x, const float *dlogits, int n)
{
    const LayerCtx ctx = model_ctx(m, weights, n, 1);
    model_seed_backward(m, dlogits, n);
    for (int i = m->n_layers - 1; i >= 0; i--) {
        model_backward_layer(m, &ctx, i, x);
        if (m->backward_hook) m->backward_hook(m->backward_hook_ctx, i);
    }
}

size_t model_prunable_count(const Model *m)
{
    size_t n = 0;
    for (int t = 0; t < m->n_tensors; t++)
        if (m->tensors[t].prunable) n += m->tensors[t].len;
    return n;
}
