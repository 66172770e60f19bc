/* Dense convolutions on oneDNN (include/cigl/conv_backend.h).
 *
 * One cache entry per distinct geometry (input and output shapes, kernel, stride, padding,
 * bias, batch size and thread count) holds the three primitives (forward training, backward
 * data, backward weights), created with format `any` so that oneDNN picks its blocked layouts
 * (nChw16c and friends on AVX-512), plus the reorders between those and cigl's plain NCHW/OIHW
 * buffers and the blocked buffers themselves. A port whose chosen layout is the plain one uses
 * cigl's buffer directly. Primitives run on oneDNN's OpenMP runtime, the same libgomp pool
 * as cigl's loops and OpenBLAS (the Makefile's OpenMP OpenBLAS), so nothing oversubscribes.
 *
 * cigl's backward adds into dx (layer.h): oneDNN writes its input gradient into the entry's
 * own buffer, and the reorder back to NCHW adds it into dx (a reorder with a sum post-op); for
 * dx's first writer a plain reorder stores it, or oneDNN writes dx itself when it chose NCHW. The weight gradient is written, then scaled
 * by ctx->wgrad_scale when that is not 1. */
#include "cigl/conv_backend.h"

#include "cigl/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ConvBackend current = CONV_BACKEND_OWN;

int conv_backend_onednn_built(void)
{
#ifdef CIGL_ONEDNN
    return 1;
#else
    return 0;
#endif
}

int conv_backend_parse(const char *name)
{
    if (!strcmp(name, "own")) return CONV_BACKEND_OWN;
    if (!strcmp(name, "onednn")) return CONV_BACKEND_ONEDNN;
    if (!strcmp(name, "auto"))
        return conv_backend_onednn_built() ? CONV_BACKEND_ONEDNN : CONV_BACKEND_OWN;
    return -1;
}

const char *conv_backend_name(ConvBackend b) { return b == CONV_BACKEND_ONEDNN ? "onednn" : "own"; }

int conv_backend_set(ConvBackend b)
{
    if (b == CONV_BACKEND_ONEDNN && !conv_backend_onednn_built()) return -1;
    current = b;
    return 0;
}

ConvBackend conv_backend_get(void) { return current; }

int conv_backend_select(char *name, size_t cap)
{
    const int b = conv_backend_parse(name);
    if (b < 0)
        return cigl_fail(CIGL_ERR_USAGE, "--conv-backend '%s': expected auto, own or onednn",
                         name);
    if (conv_backend_set((ConvBackend)b))
        return cigl_fail(CIGL_ERR_USAGE, "--conv-backend onednn: this cigl is built without "
                         "oneDNN (ONEDNN=0, as make static does); use own or auto");
    snprintf(name, cap, "%s", conv_backend_name((ConvBackend)b));
    return CIGL_OK;
}

#ifndef CIGL_ONEDNN

int conv_onednn_forward(const Layer *l, const LayerCtx *ctx, const float *x, float *y)
{
    (void)l; (void)ctx; (void)x; (void)y;
    return 0;
}

int conv_onednn_backward(const Layer *l, const LayerCtx *ctx, const float *x, const float *dy,
                         float *dx)
{
    (void)l; (void)ctx; (void)x; (void)dy; (void)dx;
    return 0;
}

void conv_onednn_release(void) {}

#else

#include <dnnl.h>
#include <omp.h>

/* One tensor argument of a primitive: cigl's plain memory (`user`, its handle set per call) and,
 * when oneDNN chose another layout, the primitive's own memory and the reorder between them. */
typedef struct {
    dnnl_memory_t user, prim;
    dnnl_primitive_t reorder;   /* NULL: the primitive reads/writes the user memory */
    int slot;                   /* prim's buffer: the shared pool's slot, or -1: its own */
    size_t bytes;               /* prim's size in the pool */
} Port;

typedef struct {
    int n, c, h, w, oc, oh, ow, k, s, p, bias, threads;
    int failed;                 /* creation failed: the own kernels run this geometry */
    int same_diff_dst;          /* both backward primitives read dy in the same blocked layout */
    dnnl_primitive_t fwd, bwd_data, bwd_weights;
    Port f_src, f_wei, f_bias, f_dst;        /* forward */
    Port d_diff_dst, d_wei, d_diff_src;      /* backward data (d_diff_src reorders with a sum) */
    Port d_diff_src_store;                   /* the same, storing: dx's first writer (layer.h) */
    Port w_src, w_diff_dst, w_diff_wei;      /* backward weights */
    size_t src_numel;
} Entry;

/* The blocked copies of activations and their gradients live in two buffers shared by every
 * entry, sized for the largest geometry (POOL_SRC: x, dx, x again for the weight gradient;
 * POOL_DST: y, dy): one layer's pass needs at most one of each at a time, and per-entry
 * buffers took 3x the activations of every conv geometry (~170 MB for resnet20 at batch 128,
 * against 2 x 6.4 MB shared). */
enum { POOL_SRC = 0, POOL_DST = 1, POOL_OWN = -1 };
static void *pool[2];
static size_t pool_bytes[2];

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static Entry *entries;
static int n_entries, cap_entries, warned;

#define CK(call) do { if ((call) != dnnl_success) goto fail; } while (0)

static void port_free(Port *pt)
{
    if (pt->reorder) dnnl_primitive_destroy(pt->reorder);
    if (pt->prim && pt->prim != pt->user) dnnl_memory_destroy(pt->prim);
    if (pt->user) dnnl_memory_destroy(pt->user);
    memset(pt, 0, sizeof *pt);
}

/* user: cigl's plain layout; want: the primitive's. to_prim: the reorder runs user -> prim
 * (an input), else prim -> user (an output; `accumulate` adds into the user buffer). */
static int port_init(Port *pt, const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *want,
                     int to_prim, int accumulate, int slot)
{
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    CK(dnnl_memory_create(&pt->user, user_md, engine, DNNL_MEMORY_NONE));
    if (dnnl_memory_desc_equal(user_md, want) && !accumulate) {
        pt->prim = pt->user;
        return 0;
    }
    pt->slot = slot;
    pt->bytes = dnnl_memory_desc_get_size(want);
    CK(dnnl_memory_create(&pt->prim, want, engine,
                          slot == POOL_OWN ? DNNL_MEMORY_ALLOCATE : DNNL_MEMORY_NONE));
    CK(dnnl_primitive_attr_create(&attr));
    if (accumulate) {
        CK(dnnl_post_ops_create(&po));
        CK(dnnl_post_ops_append_sum(po, 1.0f));
        CK(dnnl_primitive_attr_set_post_ops(attr, po));
    }
    if (to_prim)
        CK(dnnl_reorder_primitive_desc_create(&rpd, user_md, engine, want, engine, attr));
    else
        CK(dnnl_reorder_primitive_desc_create(&rpd, want, engine, user_md, engine, attr));
    CK(dnnl_primitive_create(&pt->reorder, rpd));
    dnnl_primitive_desc_destroy(rpd);
    dnnl_primitive_attr_destroy(attr);
    if (po) dnnl_post_ops_destroy(po);
    return 0;
fail:
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (po) dnnl_post_ops_destroy(po);
    return -1;
}

static void entry_free(Entry *e)
{
    if (e->fwd) dnnl_primitive_destroy(e->fwd);
    if (e->bwd_data) dnnl_primitive_destroy(e->bwd_data);
    if (e->bwd_weights) dnnl_primitive_destroy(e->bwd_weights);
    Port *ports[] = {&e->f_src, &e->f_wei, &e->f_bias, &e->f_dst, &e->d_diff_dst, &e->d_wei,
                     &e->d_diff_src, &e->d_diff_src_store, &e->w_src, &e->w_diff_dst,
                     &e->w_diff_wei};
    for (size_t i = 0; i < sizeof ports / sizeof(Port *); i++) port_free(ports[i]);
}

static const dnnl_memory_desc_t *md_of(dnnl_primitive_desc_t pd, dnnl_query_t what)
{
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

static int entry_build(Entry *e)
{
    dnnl_memory_desc_t src, wei, bias, dst, any_src, any_wei, any_dst;
    dnnl_convolution_desc_t fd, dd, wd;
    dnnl_primitive_desc_t fpd = NULL, dpd = NULL, wpd = NULL;
    const dnnl_dims_t sd = {e->n, e->c, e->h, e->w}, wdims = {e->oc, e->c, e->k, e->k};
    const dnnl_dims_t dstd = {e->n, e->oc, e->oh, e->ow}, bd = {e->oc};
    const dnnl_dims_t strides = {e->s, e->s}, pl = {e->p, e->p};
    const dnnl_dims_t pr = {(e->oh - 1) * e->s + e->k - e->h - e->p,
                            (e->ow - 1) * e->s + e->k - e->w - e->p};
    CK(dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_f32, dnnl_nchw));
    CK(dnnl_memory_desc_init_by_tag(&wei, 4, wdims, dnnl_f32, dnnl_oihw));
    CK(dnnl_memory_desc_init_by_tag(&dst, 4, dstd, dnnl_f32, dnnl_nchw));
    CK(dnnl_memory_desc_init_by_tag(&bias, 1, bd, dnnl_f32, dnnl_x));
    CK(dnnl_memory_desc_init_by_tag(&any_src, 4, sd, dnnl_f32, dnnl_format_tag_any));
    CK(dnnl_memory_desc_init_by_tag(&any_wei, 4, wdims, dnnl_f32, dnnl_format_tag_any));
    CK(dnnl_memory_desc_init_by_tag(&any_dst, 4, dstd, dnnl_f32, dnnl_format_tag_any));
    CK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct,
                                          &any_src, &any_wei, e->bias ? &bias : NULL, &any_dst,
                                          strides, pl, pr));
    CK(dnnl_primitive_desc_create(&fpd, &fd, NULL, engine, NULL));
    CK(dnnl_convolution_backward_data_desc_init(&dd, dnnl_convolution_direct, &any_src, &any_wei,
                                                &any_dst, strides, pl, pr));
    CK(dnnl_primitive_desc_create(&dpd, &dd, NULL, engine, fpd));
    CK(dnnl_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct, &any_src,
                                                   &any_wei, NULL, &any_dst, strides, pl, pr));
    CK(dnnl_primitive_desc_create(&wpd, &wd, NULL, engine, fpd));
    CK(dnnl_primitive_create(&e->fwd, fpd));
    CK(dnnl_primitive_create(&e->bwd_data, dpd));
    CK(dnnl_primitive_create(&e->bwd_weights, wpd));
    if (port_init(&e->f_src, &src, md_of(fpd, dnnl_query_src_md), 1, 0, POOL_SRC) ||
        port_init(&e->f_wei, &wei, md_of(fpd, dnnl_query_weights_md), 1, 0, POOL_OWN) ||
        (e->bias && port_init(&e->f_bias, &bias, &bias, 1, 0, POOL_OWN)) ||
        port_init(&e->f_dst, &dst, md_of(fpd, dnnl_query_dst_md), 0, 0, POOL_DST) ||
        port_init(&e->d_diff_dst, &dst, md_of(dpd, dnnl_query_diff_dst_md), 1, 0, POOL_DST) ||
        port_init(&e->d_wei, &wei, md_of(dpd, dnnl_query_weights_md), 1, 0, POOL_OWN) ||
        port_init(&e->d_diff_src, &src, md_of(dpd, dnnl_query_diff_src_md), 0, 1, POOL_SRC) ||
        port_init(&e->d_diff_src_store, &src, md_of(dpd, dnnl_query_diff_src_md), 0, 0,
                  POOL_SRC) ||
        port_init(&e->w_src, &src, md_of(wpd, dnnl_query_src_md), 1, 0, POOL_SRC) ||
        port_init(&e->w_diff_dst, &dst, md_of(wpd, dnnl_query_diff_dst_md), 1, 0, POOL_DST) ||
        port_init(&e->w_diff_wei, &wei, md_of(wpd, dnnl_query_diff_weights_md), 0, 0, POOL_OWN))
        goto fail;
    e->same_diff_dst = e->d_diff_dst.reorder && e->w_diff_dst.reorder &&
                       dnnl_memory_desc_equal(md_of(dpd, dnnl_query_diff_dst_md),
                                              md_of(wpd, dnnl_query_diff_dst_md));
    if (getenv("CIGL_ONEDNN_VERBOSE")) {
        const char *fi = "", *di = "", *wi = "";
        dnnl_primitive_desc_query(fpd, dnnl_query_impl_info_str, 0, &fi);
        dnnl_primitive_desc_query(dpd, dnnl_query_impl_info_str, 0, &di);
        dnnl_primitive_desc_query(wpd, dnnl_query_impl_info_str, 0, &wi);
        fprintf(stderr, "conv_onednn: n%d c%d %dx%d oc%d k%d s%d p%d: fwd %s, bwd_data %s, "
                "bwd_weights %s\n", e->n, e->c, e->h, e->w, e->oc, e->k, e->s, e->p, fi, di, wi);
    }
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(dpd);
    dnnl_primitive_desc_destroy(wpd);
    return 0;
fail:
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (dpd) dnnl_primitive_desc_destroy(dpd);
    if (wpd) dnnl_primitive_desc_destroy(wpd);
    return -1;
}

static Entry *entry_for(const Layer *l, int n)
{
    if (!engine) {
        if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) return NULL;
        if (dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) {
            dnnl_engine_destroy(engine);
            engine = NULL;
            return NULL;
        }
    }
    const Entry key = {.n = n, .c = l->x.c, .h = l->x.h, .w = l->x.w, .oc = l->y.c,
                       .oh = l->y.h, .ow = l->y.w, .k = l->k, .s = l->stride, .p = l->pad,
                       .bias = l->bias_len > 0, .threads = omp_get_max_threads()};
    for (int i = 0; i < n_entries; i++) {
        const Entry *e = &entries[i];
        if (e->n == key.n && e->c == key.c && e->h == key.h && e->w == key.w &&
            e->oc == key.oc && e->oh == key.oh && e->ow == key.ow && e->k == key.k &&
            e->s == key.s && e->p == key.p && e->bias == key.bias && e->threads == key.threads)
            return e->failed ? NULL : &entries[i];
    }
    if (n_entries == cap_entries) {
        const int cap = cap_entries ? 2 * cap_entries : 16;
        Entry *grown = realloc(entries, sizeof(Entry) * (size_t)cap);
        if (!grown) return NULL;
        entries = grown;
        cap_entries = cap;
    }
    Entry *e = &entries[n_entries++];
    *e = key;
    e->src_numel = (size_t)n * key.c * key.h * key.w;
    if (entry_build(e)) {
        entry_free(e);
        *e = key;
        e->failed = 1;
        if (!warned++)
            fprintf(stderr, "cigl: oneDNN cannot run conv layer '%s' (batch %d); it and any "
                    "other such layer use cigl's own kernels\n", l->name, n);
        return NULL;
    }
    return e;
}

static int exec(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args)
{
    return dnnl_primitive_execute(p, stream, nargs, args) == dnnl_success ? 0 : -1;
}

/* Points a pooled port's memory at its pool slot, grown when too small. */
static int bind(Port *pt)
{
    if (!pt->reorder || pt->slot == POOL_OWN) return 0;
    if (pool_bytes[pt->slot] < pt->bytes) {
        free(pool[pt->slot]);
        pool_bytes[pt->slot] = 0;
        pool[pt->slot] = aligned_alloc(64, (pt->bytes + 63) & ~(size_t)63);
        if (!pool[pt->slot]) return -1;
        pool_bytes[pt->slot] = pt->bytes;
    }
    return dnnl_memory_set_data_handle(pt->prim, pool[pt->slot]) == dnnl_success ? 0 : -1;
}

/* Points the port's user memory at buf and, for an input, reorders it into the primitive's. */
static int port_in(Port *pt, const float *buf)
{
    if (dnnl_memory_set_data_handle(pt->user, (void *)buf) != dnnl_success || bind(pt))
        return -1;
    if (!pt->reorder) return 0;
    const dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, pt->user}, {DNNL_ARG_TO, pt->prim}};
    return exec(pt->reorder, 2, a);
}

static int port_out_begin(Port *pt, float *buf)
{
    return dnnl_memory_set_data_handle(pt->user, buf) == dnnl_success ? bind(pt) : -1;
}

static int port_out_end(Port *pt)
{
    if (!pt->reorder) return 0;
    const dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, pt->prim}, {DNNL_ARG_TO, pt->user}};
    return exec(pt->reorder, 2, a);
}

/* A primitive that was created but fails to run may have written part of y or added part of
 * dx: falling back would compute something else than either backend, so stop. */
static int run_failed(const Layer *l)
{
    fprintf(stderr, "cigl: a oneDNN convolution failed to run in layer '%s'\n", l->name);
    abort();
}

int conv_onednn_forward(const Layer *l, const LayerCtx *ctx, const float *x, float *y)
{
    if (current != CONV_BACKEND_ONEDNN) return 0;
    Entry *e = entry_for(l, ctx->n);
    if (!e) return 0;
    const float *w = ctx->weights + l->weight_off;
    if (port_in(&e->f_src, x) || port_in(&e->f_wei, w) ||
        (e->bias && port_in(&e->f_bias, ctx->weights + l->bias_off)) || port_out_begin(&e->f_dst, y))
        goto fail;
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, e->f_src.prim}, {DNNL_ARG_WEIGHTS, e->f_wei.prim},
                            {DNNL_ARG_DST, e->f_dst.prim}, {DNNL_ARG_BIAS, e->f_bias.prim}};
    if (exec(e->fwd, e->bias ? 4 : 3, a) || port_out_end(&e->f_dst)) goto fail;
    dnnl_stream_wait(stream);
    return 1;
fail:
    return run_failed(l);
}

int conv_onednn_backward(const Layer *l, const LayerCtx *ctx, const float *x, const float *dy,
                         float *dx)
{
    if (current != CONV_BACKEND_ONEDNN) return 0;
    /* 1x1 stride-2 projections: oneDNN's jit_1x1 backward first gathers the strided input
     * (resnet20's two shortcuts: 5.2 and 5.5 ms per step against the own kernels' 2.7 and
     * 1.6 ms, bench_train --conv-backend, tests/bench/README.md), so they stay on the own
     * kernels; a fixed rule by geometry, so results stay deterministic. */
    if (l->k == 1 && l->stride > 1) return 0;
    Entry *e = entry_for(l, ctx->n);
    if (!e) return 0;
    const float *w = ctx->weights + l->weight_off;
    float *dw = ctx->grads + l->weight_off;
    if (dx) {
        Port *ds = l->dx_first ? &e->d_diff_src_store : &e->d_diff_src;
        if (port_in(&e->d_diff_dst, dy) || port_in(&e->d_wei, w) || port_out_begin(ds, dx))
            goto fail;
        const dnnl_exec_arg_t a[] = {{DNNL_ARG_DIFF_DST, e->d_diff_dst.prim},
                                     {DNNL_ARG_WEIGHTS, e->d_wei.prim},
                                     {DNNL_ARG_DIFF_SRC, ds->prim}};
        if (exec(e->bwd_data, 3, a) || port_out_end(ds)) goto fail;
    }
    /* dy in the layout both backward primitives read is reordered once */
    dnnl_memory_t ddst = e->w_diff_dst.prim;
    if (dx && e->same_diff_dst) ddst = e->d_diff_dst.prim;
    else if (port_in(&e->w_diff_dst, dy)) goto fail;
    if (port_in(&e->w_src, x) || port_out_begin(&e->w_diff_wei, dw)) goto fail;
    const dnnl_exec_arg_t b[] = {{DNNL_ARG_SRC, e->w_src.prim}, {DNNL_ARG_DIFF_DST, ddst},
                                 {DNNL_ARG_DIFF_WEIGHTS, e->w_diff_wei.prim}};
    if (exec(e->bwd_weights, 3, b) || port_out_end(&e->w_diff_wei)) goto fail;
    dnnl_stream_wait(stream);
    if (ctx->wgrad_scale != 1.0f) {
        const size_t len = l->weight_len;
        const float sc = ctx->wgrad_scale;
#pragma omp simd
        for (size_t i = 0; i < len; i++) dw[i] *= sc;
    }
    return 1;
fail:
    return run_failed(l);
}

void conv_onednn_release(void)
{
    for (int i = 0; i < n_entries; i++) entry_free(&entries[i]);
    free(entries);
    entries = NULL;
    n_entries = cap_entries = 0;
    for (int i = 0; i < 2; i++) {
        free(pool[i]);
        pool[i] = NULL;
        pool_bytes[i] = 0;
    }
    if (stream) dnnl_stream_destroy(stream);
    if (engine) dnnl_engine_destroy(engine);
    stream = NULL;
    engine = NULL;
}

#endif
