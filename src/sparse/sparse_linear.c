/* Linear layers on the sparse kernels (include/cigl/sparse.h; conv layers: sparse_conv.c).
 *
 * X (n x K, batch-major) is transposed to X^T so every stored entry does an axpy or a dot
 * product over the batch; Y^T is transposed back. Rows of W are split over threads for the
 * forward pass and the weight gradient, the batch for the input gradient: each output element
 * is computed by one thread in a fixed order, so results do not depend on the thread count. */
#include "cigl/sparse.h"
#include "cigl/threads.h"

#include <omp.h>
#include <string.h>
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

/* One 4 x 4 tile: dst[c][r] (+)= src[r][c] for r, c < 4 (row strides ls, ld). */
static inline void transpose_tile4(const float *src, size_t ls, float *dst, size_t ld, int add)
{
#if defined(__SSE2__)
    __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + ls);
    __m128 r2 = _mm_loadu_ps(src + 2 * ls), r3 = _mm_loadu_ps(src + 3 * ls);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    if (add) {
        r0 = _mm_add_ps(_mm_loadu_ps(dst), r0);
        r1 = _mm_add_ps(_mm_loadu_ps(dst + ld), r1);
        r2 = _mm_add_ps(_mm_loadu_ps(dst + 2 * ld), r2);
        r3 = _mm_add_ps(_mm_loadu_ps(dst + 3 * ld), r3);
    }
    _mm_storeu_ps(dst, r0);
    _mm_storeu_ps(dst + ld, r1);
    _mm_storeu_ps(dst + 2 * ld, r2);
    _mm_storeu_ps(dst + 3 * ld, r3);
#else
    for (int c = 0; c < 4; c++)
        for (int r = 0; r < 4; r++)
            dst[c * ld + r] = (add ? dst[c * ld + r] : 0.0f) + src[r * ls + c];
#endif
}

/* dst (cols x rows) = (add ? dst : 0) + src (rows x cols)^T, blocks of 16 source rows split
 * over the threads of the enclosing region (orphaned omp for), in 4 x 4 register tiles (SSE
 * shuffles) and scalar edges. Each block reads its 16 rows front to back (16 sequential
 * streams the prefetchers follow) and writes whole 64-byte lines of dst; blocks of 64 columns
 * over all rows (the earlier order) read the mlp's 128 x 784 input with a page-sized stride
 * and took 14% of its sparse step. Each element is one copy or one addition either way, so
 * the results are the same. */
static void transpose_part(const float *restrict src, int rows, int cols, float *restrict dst,
                           int add)
{
    enum { RB = 16 };
    const int blocks = (rows + RB - 1) / RB, c4 = cols / 4 * 4;
#pragma omp for schedule(static)
    for (int rb = 0; rb < blocks; rb++) {
        const int r0 = rb * RB, r1 = r0 + RB < rows ? r0 + RB : rows;
        const int r4 = r0 + (r1 - r0) / 4 * 4;
        for (int c = 0; c < c4; c += 4)
            for (int r = r0; r < r4; r += 4)
                transpose_tile4(src + (size_t)r * cols + c, (size_t)cols,
                                dst + (size_t)c * rows + r, (size_t)rows, add);
        for (int r = r0; r < r1; r++) /* the edges: columns past c4, rows past r4 */
            for (int c = r < r4 ? c4 : 0; c < cols; c++) {
                float *d = dst + (size_t)c * rows + r;
                *d = (add ? *d : 0.0f) + src[(size_t)r * cols + c];
            }
    }
}

/* Writes alpha * g (one value per stored entry) into the dense gradient of rows [r0, r1); the
 * rest of those rows is zeroed once after each pattern change (nothing reads it in between). */
static void scatter_grad(const SparseLayer *sl, const float *g, float alpha, int r0, int r1,
                         float *grad, int clear)
{
    const SparseMatrix *s = &sl->s;
    for (int i = r0; i < r1; i++) {
        float *gr = grad + (size_t)i * s->cols;
        if (clear) memset(gr, 0, sizeof(float) * s->cols);
        for (int32_t k = s->row_ptr[i]; k < s->row_ptr[i + 1]; k++) gr[s->col[k]] = alpha * g[k];
    }
}

/* (stored entries + input features) x batch: above this a layer's passes split over threads.
 * Each split costs a region start and two to four barriers, and a passive thread (src/main.c)
 * sleeps at each: on the project's 2-core VM every one cost 50-90 us, and 2 threads were
 * slower than 1 for every mlp layer shape measured (fc1 forward + backward at 50% density,
 * 15M here: 5.8-6.7 ms vs 5.4 ms; at 5%: 1.0 vs 0.68 ms; bench_sparse --layers with the
 * threshold at 1 and at 2^30, tests/bench/README.md). Classifier layers like resnet50's
 * still split. */
static int worth_threads(size_t work) { return work >= ((size_t)1 << 24); }

/* ---- linear ------------------------------------------------------------------------------- */

/* Rows [r0, r1) of Y^T (n columns) start from the bias (or 0), before the kernel adds W X^T. */
static void init_rows(float *yt, int r0, int r1, int n, const float *bias)
{
    for (int i = r0; i < r1; i++) {
        float *row = yt + (size_t)i * n;
        const float b = bias ? bias[i] : 0.0f;
#pragma omp simd
        for (int c = 0; c < n; c++) row[c] = b;
    }
}

/* What one pass needs; the pass body runs inside an OpenMP region when the layer is worth
 * splitting and directly otherwise (CIGL_PARALLEL_IF: its orphaned omp for / barrier then run
 * as plain code). */
typedef struct {
    const Layer *l;
    const SparseLayer *sl;
    const SparseMatrix *s;
    int n, in, out, transpose_x, clear;
    const float *x, *xt, *w, *bias, *dy, *dyt;
    float scale; /* of w (sparse_step_weights) */
    float *y, *yt, *dx, *dxt, *g, *grad, *db;
    const uint8_t *act;
    float wgrad_scale;
} Pass;

static void forward_pass(const Pass *p)
{
    const SparseMatrix *s = p->s;
    if (p->transpose_x) transpose_part(p->x, p->n, p->in, p->sl->xt, 0);
    int r0, r1;
    sparse_split_rows(s, omp_get_thread_num(), omp_get_num_threads(), &r0, &r1);
    init_rows(p->yt, r0, r1, p->n, p->bias);
    sparse_mm(s, p->w, p->scale, p->act, NULL, r0, r1, p->xt, (size_t)p->n, 0, (size_t)p->n, p->yt,
              (size_t)p->n, 1);
    if (!p->l->out_t) {
#pragma omp barrier
        transpose_part(p->yt, p->out, p->n, p->y, 0);
    }
}

static void backward_pass(const Pass *p)
{
    const SparseMatrix *s = p->s;
    const int n = p->n;
    if (p->transpose_x) transpose_part(p->x, n, p->in, p->sl->xt, 0);
    if (!p->l->out_t) transpose_part(p->dy, n, p->out, p->sl->yt, 0);
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
    int r0, r1;
    sparse_split_rows(s, t, T, &r0, &r1);
    sparse_sddmm(s, p->act, NULL, r0, r1, p->dyt, (size_t)n, p->xt, (size_t)n, (size_t)n, p->g,
                 0);
    scatter_grad(p->sl, p->g, p->wgrad_scale, r0, r1, p->grad, p->clear);
    for (int o = r0; p->db && o < r1; o++) { /* the bias gradient: row sums of dY^T */
        double sum = 0;
        for (int i = 0; i < n; i++) sum += p->dyt[(size_t)o * n + i];
        p->db[o] = (float)sum;
    }
    if (!p->dx) return;
    const size_t c0 = (size_t)n * t / T, c1 = (size_t)n * (t + 1) / T;
    if (!p->l->in_t)
        for (int j = 0; j < p->in; j++)
            memset(p->dxt + (size_t)j * n + c0, 0, sizeof(float) * (c1 - c0));
    sparse_mm_t(s, p->w, p->scale, p->act, NULL, 0, p->out, p->dyt, (size_t)n, c0, c1, p->dxt,
                (size_t)n);
    if (!p->l->in_t) {
#pragma omp barrier
        transpose_part(p->dxt, p->in, n, p->dx, 1);
    }
}

void sparse_linear_forward(Layer *l, const LayerCtx *ctx, const float *x, float *y)
{
    SparseLayer *sl = l->sparse;
    const SparseMatrix *s = &sl->s;
    /* a feature-major input or output (layer.h) is used in place */
    float scale;
    const float *w = sparse_step_weights(l, ctx, &scale);
    const Pass p = {.l = l, .sl = sl, .s = s, .n = ctx->n, .in = s->cols, .out = s->rows,
                    .transpose_x = !l->in_t, .x = x, .xt = l->in_t ? x : sl->xt, .w = w,
                    .scale = scale,
                    .bias = l->bias_len ? ctx->weights + l->bias_off : NULL, .y = y,
                    .yt = l->out_t ? y : sl->yt, .act = sparse_step_active(l, ctx)};
    CIGL_PARALLEL_IF(worth_threads((s->nnz + (size_t)p.in) * (size_t)p.n), forward_pass(&p));
    /* backward reuses X^T when it gets the same input (the training step's pair) */
    sl->xt_src = x;
    sl->xt_n = p.n;
}

void sparse_linear_backward(Layer *l, const LayerCtx *ctx, const float *x, const float *dy,
                            float *dx)
{
    SparseLayer *sl = l->sparse;
    const SparseMatrix *s = &sl->s;
    const int n = ctx->n;
    float scale;
    const float *w = sparse_step_weights(l, ctx, &scale);
    /* feature-major buffers are used in place; the input gradient is accumulated (+=) */
    const Pass p = {.l = l, .sl = sl, .s = s, .n = n, .in = s->cols, .out = s->rows,
                    .transpose_x = !l->in_t && !(sl->xt_src == x && sl->xt_n == n),
                    .clear = !sl->clean, .x = x, .xt = l->in_t ? x : sl->xt,
                    .w = w, .scale = scale, .dy = dy, .dyt = l->out_t ? dy : sl->yt,
                    .dx = dx, .dxt = l->in_t ? dx : sl->dxt, .g = sl->gpart,
                    .grad = ctx->grads + l->weight_off,
                    .db = l->bias_len ? ctx->grads + l->bias_off : NULL,
                    .act = sparse_step_active(l, ctx), .wgrad_scale = ctx->wgrad_scale};
    CIGL_PARALLEL_IF(worth_threads((s->nnz + (size_t)p.in) * (size_t)n), backward_pass(&p));
    sl->clean = 1;
}
