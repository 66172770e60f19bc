/* Conv layers on the sparse kernels (include/cigl/sparse.h).
 *
 * The dense layer's plan (contiguous sample ranges per thread, cache-sized chunks, per-thread
 * workspace slots; src/layer_conv.c) with the three GEMMs replaced by the sparse kernels, which
 * read each stored weight's input rows through row offsets (SparseMatrix.row_off). Two ways to
 * lay those rows out:
 *
 * Direct (stride 1, kernel > 1: every 3x3 and 5x5 layer of the model zoo's stride-1 convs).
 * The chunk's input is copied once into zero-padded planes of width WP = w + 2p, and the output
 * is computed in the same row width, WP - OW garbage columns per row that are dropped when the
 * output is copied out. Then the input tap (c, kh, kw) of every output position is one flat
 * shift of the padded image: row j = (c, kh, kw) of the virtual im2col matrix starts at
 * c * ch_stride + kh * WP + kw, and no im2col matrix is built at all. The input gradient
 * accumulates into padded planes the same way and its interior is added to dx (stored, when
 * the layer writes dx first); the output gradient is expanded with zeros in the garbage
 * columns, so they contribute exactly nothing (w * 0) to the input and weight gradients. Per
 * sample this moves C + OC padded planes instead of the used taps' n_used (up to 9C) planes of
 * im2col, at the price of the garbage columns (13% of a 32x32 plane, 56% of an 8x8 one).
 *
 * im2col of the used columns (strided and 1x1 convs): only the columns of W that hold an entry
 * are built, and col2im adds only those rows back.
 *
 * Weight-gradient partials per thread are summed in thread order, so results depend on the
 * thread count only as the dense path's do. */
#include "cigl/conv.h"
#include "cigl/sparse.h"

#include <omp.h>
#include <string.h>

/* How one call lays out a chunk of nb <= chunk samples in a thread's workspace slot. */
typedef struct {
    int direct, chunk;
    int wp, hp;             /* direct: padded width and height */
    size_t plane;           /* direct: hp * wp, one padded (sample, channel) plane */
    size_t ch_stride;       /* direct: floats between the channels of a padded chunk */
    size_t row_stride;      /* floats between the rows of the column/output matrices */
} SparsePlan;

/* Columns of a chunk of nb samples: nb * OHW (im2col), or up to the last sample's last output
 * row (direct). */
static size_t chunk_columns(const Layer *l, const SparsePlan *sp, int nb)
{
    if (!sp->direct) return (size_t)nb * l->y.h * l->y.w;
    return (size_t)(nb - 1) * sp->plane + (size_t)l->y.h * sp->wp;
}

/* Floats of workspace a direct chunk needs: padded input, output gradient, input gradient
 * (the forward pass uses less: padded input and output rows). */
static size_t direct_floats(const Layer *l, const SparsePlan *sp)
{
    return 2 * (size_t)l->x.c * sp->ch_stride + (size_t)l->y.c * sp->row_stride;
}

static SparsePlan sparse_plan(const Layer *l, const ConvPlan *pl)
{
    const size_t ohw = (size_t)l->y.h * l->y.w, avail = pl->stride - pl->dw_floats;
    SparsePlan sp = {0};
    if (l->stride == 1 && l->k > 1) {
        sp.direct = 1;
        sp.wp = l->x.w + 2 * l->pad;
        sp.hp = l->x.h + 2 * l->pad;
        sp.plane = (size_t)sp.hp * sp.wp;
        for (sp.chunk = pl->chunk; sp.chunk >= 1; sp.chunk--) {
            /* the last taps read k - 1 floats past a channel's planes (garbage columns only) */
            sp.ch_stride = (size_t)sp.chunk * sp.plane + (size_t)l->k;
            sp.row_stride = (size_t)sp.chunk * sp.plane;
            if (direct_floats(l, &sp) <= avail) return sp;
        }
        sp.direct = 0; /* a workspace too small for one padded sample: im2col below */
    }
    /* one sample per chunk when its output plane is long enough for the kernels' rows: the
     * output is then written in NCHW directly and dY read in place (no chunk transposes) */
    sp.chunk = ohw >= 256 ? 1 : pl->chunk;
    sp.row_stride = (size_t)sp.chunk * ohw;
    return sp;
}

/* Where each used column's row starts in the chunk's input (or input-gradient) matrix. */
static void fill_row_offsets(const Layer *l, SparseMatrix *s, const SparsePlan *sp)
{
    const int k = l->k;
    for (int u = 0; u < s->n_used; u++) {
        const int j = s->used[u], c = j / (k * k), kh = (j / k) % k, kw = j % k;
        s->row_off[j] = sp->direct ? (size_t)c * sp->ch_stride + (size_t)kh * sp->wp + (size_t)kw
                                   : (size_t)u * sp->row_stride;
    }
}

/* The chunk's input as zero-padded planes, channel-major: xp[c][b][hp][wp], then k zeros after
 * each channel's nb planes. */
static void pad_chunk(const Layer *l, const SparsePlan *sp, const float *x, int nb, float *xp)
{
    const int c = l->x.c, h = l->x.h, w = l->x.w, p = l->pad, wp = sp->wp;
    for (int ch = 0; ch < c; ch++) {
        float *dst = xp + (size_t)ch * sp->ch_stride;
        for (int b = 0; b < nb; b++, dst += sp->plane) {
            const float *src = x + ((size_t)b * c + ch) * h * w;
            memset(dst, 0, sizeof(float) * ((size_t)p * wp + p));
            for (int iy = 0; iy < h; iy++) {
                float *row = dst + (size_t)(iy + p) * wp + p;
                memcpy(row, src + (size_t)iy * w, sizeof(float) * w);
                /* right pad of this row and left pad of the next */
                memset(row + w, 0, sizeof(float) * 2 * p);
            }
            memset(dst + (size_t)(h + p) * wp + p, 0, sizeof(float) * ((size_t)p * wp - p));
        }
        memset(dst, 0, sizeof(float) * (size_t)l->k);
    }
}

/* y[b][o] (+ bias) from the output rows out[o][b*plane + oy*wp + ox] (direct) or the chunk
 * matrix (im2col, nb > 1). With `bn` (evaluation, layer.h fold_bn; the conv has no bias) y
 * receives BN(conv) instead: in the direct copy-out, or in place while the chunk is in cache. */
static void write_output(const Layer *l, const SparsePlan *sp, const float *out, int nb,
                         const float *bias, const Layer *bn, const LayerCtx *ctx, float *y)
{
    const int oc = l->y.c, oh = l->y.h, ow = l->y.w;
    const size_t ohw = (size_t)oh * ow;
    if (sp->direct) {
        for (int b = 0; b < nb; b++)
            for (int o = 0; o < oc; o++) {
                const float *src = out + (size_t)o * sp->row_stride + (size_t)b * sp->plane;
                float *dst = y + ((size_t)b * oc + o) * ohw;
                if (bn) {
                    bn_eval_plane(bn, ctx, o, src, (size_t)sp->wp, oh, ow, dst);
                    continue;
                }
                for (int oy = 0; oy < oh; oy++)
                    memcpy(dst + (size_t)oy * ow, src + (size_t)oy * sp->wp, sizeof(float) * ow);
            }
        if (bias) conv_add_bias(l, bias, nb, y);
        return;
    }
    if (out != y) chunk_to_nchw(out, nb, oc, ohw, y);
    if (bias) conv_add_bias(l, bias, nb, y);
    for (int b = 0; bn && b < nb; b++)
        for (int o = 0; o < oc; o++) {
            float *plane = y + ((size_t)b * oc + o) * ohw;
            bn_eval_plane(bn, ctx, o, plane, ohw, 1, (int)ohw, plane);
        }
}

/* The output gradient in the kernels' row layout (direct: zeros in the garbage columns and
 * rows); returns where it is (dy itself for one sample per im2col chunk). */
static const float *read_output_grad(const Layer *l, const SparsePlan *sp, const float *dy,
                                     int nb, float *buf)
{
    const int oc = l->y.c, oh = l->y.h, ow = l->y.w;
    const size_t ohw = (size_t)oh * ow;
    if (!sp->direct) {
        if (nb == 1) return dy;
        nchw_to_chunk(dy, nb, oc, ohw, buf);
        return buf;
    }
    const size_t ncols = chunk_columns(l, sp, nb);
    for (int o = 0; o < oc; o++) {
        float *row = buf + (size_t)o * sp->row_stride;
        memset(row, 0, sizeof(float) * ncols);
        for (int b = 0; b < nb; b++)
            for (int oy = 0; oy < oh; oy++)
                memcpy(row + (size_t)b * sp->plane + (size_t)oy * sp->wp,
                       dy + ((size_t)b * oc + o) * ohw + (size_t)oy * ow, sizeof(float) * ow);
    }
    return buf;
}

/* dx[b][c] += the interior of the padded input-gradient planes (direct) or col2im of the used
 * rows (im2col); = instead of += when the layer writes dx first (layer.h: dx_first), which
 * saves the model's zeroing pass and this pass's read of dx. */
static void add_input_grad(const Layer *l, const SparseMatrix *s, const SparsePlan *sp,
                           const float *g, int nb, float *dx)
{
    const int c = l->x.c, h = l->x.h, w = l->x.w, p = l->pad;
    if (!sp->direct) {
        if (l->dx_first) /* col2im adds: the chunk's dx is zeroed while hot */
            memset(dx, 0, sizeof(float) * (size_t)nb * shape_numel(l->x));
        for (int u = 0; u < s->n_used; u++)
            col2im_row_add(g + (size_t)u * sp->row_stride, nb, l->x, l->k, l->stride, l->pad,
                           l->y.h, l->y.w, s->used[u], dx);
        return;
    }
    const int store = l->dx_first;
    for (int b = 0; b < nb; b++)
        for (int ch = 0; ch < c; ch++) {
            const float *src = g + (size_t)ch * sp->ch_stride + (size_t)b * sp->plane;
            float *dst = dx + ((size_t)b * c + ch) * h * w;
            for (int iy = 0; iy < h; iy++) {
                const float *restrict sr = src + (size_t)(iy + p) * sp->wp + p;
                float *restrict dr = dst + (size_t)iy * w;
                if (store) memcpy(dr, sr, sizeof(float) * w);
                else
                    for (int ix = 0; ix < w; ix++) dr[ix] += sr[ix];
            }
        }
}

/* The chunk's input rows: padded planes (direct) or the used im2col rows. */
static void build_input_rows(const Layer *l, const SparseMatrix *s, const SparsePlan *sp,
                             const float *x, int nb, float *rows)
{
    if (sp->direct) {
        pad_chunk(l, sp, x, nb, rows);
        return;
    }
    for (int u = 0; u < s->n_used; u++)
        im2col_row(x, nb, l->x, l->k, l->stride, l->pad, l->y.h, l->y.w, s->used[u],
                   rows + (size_t)u * sp->row_stride);
}

static size_t input_rows_floats(const Layer *l, const SparseMatrix *s, const SparsePlan *sp)
{
    return sp->direct ? (size_t)l->x.c * sp->ch_stride : (size_t)s->n_used * sp->row_stride;
}

void sparse_conv_forward(Layer *l, const LayerCtx *ctx, const float *x, float *y)
{
    SparseLayer *sl = l->sparse;
    SparseMatrix *s = &sl->s;
    const int oc = l->y.c, n = ctx->n;
    const size_t in_numel = shape_numel(l->x), out_numel = oc * (size_t)l->y.h * l->y.w;
    const ConvPlan pl = conv_plan(l, ctx);
    const SparsePlan sp = sparse_plan(l, &pl);
    float scale;
    const float *w = sparse_step_weights(l, ctx, &scale);
    const float *bias = l->bias_len ? ctx->weights + l->bias_off : NULL;
    const uint8_t *act = sparse_step_active(l, ctx);
    const Layer *bn = ctx->train ? NULL : l->fold_bn; /* y is then the BN's output */
    fill_row_offsets(l, s, &sp);
#pragma omp parallel num_threads(pl.threads) if (pl.threads > 1)
    for (int t = omp_get_thread_num(); t < pl.threads; t += omp_get_num_threads()) {
        float *rows = ctx->workspace + (size_t)t * pl.stride + pl.dw_floats;
        float *out = rows + input_rows_floats(l, s, &sp);
        const int s0 = (int)((long)t * n / pl.threads), s1 = (int)((long)(t + 1) * n / pl.threads);
        for (int b0 = s0; b0 < s1; b0 += sp.chunk) {
            const int nb = s1 - b0 < sp.chunk ? s1 - b0 : sp.chunk;
            const size_t ncols = chunk_columns(l, &sp, nb);
            float *yb = y + (size_t)b0 * out_numel;
            float *dst = !sp.direct && nb == 1 ? yb : out;
            build_input_rows(l, s, &sp, x + (size_t)b0 * in_numel, nb, rows);
            /* direct rows are row_stride apart; im2col output blocks are chunk matrices */
            sparse_mm(s, w, scale, act, s->row_off, 0, oc, rows, 0, 0, ncols, dst,
                      sp.direct ? sp.row_stride : ncols, 0);
            write_output(l, &sp, dst, nb, bias, bn, ctx, yb);
        }
    }
}

void sparse_conv_backward(Layer *l, const LayerCtx *ctx, const float *x, const float *dy,
                          float *dx)
{
    SparseLayer *sl = l->sparse;
    SparseMatrix *s = &sl->s;
    const int oc = l->y.c, n = ctx->n;
    const size_t ohw = (size_t)l->y.h * l->y.w, in_numel = shape_numel(l->x), out_numel = oc * ohw;
    const ConvPlan pl = conv_plan(l, ctx);
    const SparsePlan sp = sparse_plan(l, &pl);
    float scale;
    const float *w = sparse_step_weights(l, ctx, &scale);
    const uint8_t *act = sparse_step_active(l, ctx);
    float *grad = ctx->grads + l->weight_off;
    const int clear = !sl->clean, threads = pl.threads <= sl->parts ? pl.threads : sl->parts;
    fill_row_offsets(l, s, &sp);
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        for (int t = omp_get_thread_num(); t < threads; t += omp_get_num_threads()) {
            /* [input rows][output gradient][padded input gradient (direct)]; im2col reuses the
             * input rows for the input gradient's columns */
            float *rows = ctx->workspace + (size_t)t * pl.stride + pl.dw_floats;
            const size_t in_rows = input_rows_floats(l, s, &sp);
            float *dyrows = rows + in_rows, *drows = sp.direct ? dyrows + oc * sp.row_stride : rows;
            float *g = sl->gpart + (size_t)t * s->nnz;
            const int s0 = (int)((long)t * n / threads), s1 = (int)((long)(t + 1) * n / threads);
            if (s0 == s1) memset(g, 0, sizeof(float) * s->nnz);
            for (int b0 = s0; b0 < s1; b0 += sp.chunk) {
                const int nb = s1 - b0 < sp.chunk ? s1 - b0 : sp.chunk;
                const size_t ncols = chunk_columns(l, &sp, nb);
                const float *dmat = read_output_grad(l, &sp, dy + (size_t)b0 * out_numel, nb,
                                                     dyrows);
                const size_t ld = sp.direct ? sp.row_stride : ncols;
                build_input_rows(l, s, &sp, x + (size_t)b0 * in_numel, nb, rows);
                sparse_sddmm(s, act, s->row_off, 0, oc, dmat, ld, rows, 0, ncols, g, b0 != s0);
                if (!dx) continue;
                memset(drows, 0, sizeof(float) * in_rows);
                sparse_mm_t(s, w, scale, act, s->row_off, 0, oc, dmat, ld, 0, ncols, drows, 0);
                add_input_grad(l, s, &sp, drows, nb, dx + (size_t)b0 * in_numel);
            }
        }
        if (threads > 1) {
#pragma omp barrier
        }
        /* partials summed in thread order, then written as the gradient, split over rows */
#pragma omp for schedule(static)
        for (int i = 0; i < oc; i++) {
            float *gr = grad + (size_t)i * s->cols;
            if (clear) memset(gr, 0, sizeof(float) * s->cols);
            for (int32_t k = s->row_ptr[i]; k < s->row_ptr[i + 1]; k++) {
                float sum = sl->gpart[k];
                for (int t = 1; t < threads; t++) sum += sl->gpart[(size_t)t * s->nnz + k];
                gr[s->col[k]] = ctx->wgrad_scale * sum;
            }
        }
    }
    sl->clean = 1;
    if (l->bias_len) conv_bias_grad(l, ctx, dy);
}
