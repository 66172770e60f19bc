/* The sparse kernels (include/cigl/sparse.h) against dense double-precision computations on the
 * masked weights: the three kernels for random shapes, densities 0.5%..50%, batches 1..256,
 * forced empty rows and columns, with and without a step mask; the linear and conv layers on
 * sparse kernels against the same layers on dense kernels (forward, input gradient, weight
 * gradient at stored positions, several conv geometries and chunkings); the per-layer choice
 * string; the random mask drawn at stored entries only equals the dense draw bit for bit; and
 * training equivalence: 50 steps of RigL and CigL on mlp and lenet5 with sparse
 * kernels give the weights of dense masked compute to float tolerance. */
#include "check.h"
#include "cigl/conv.h"
#include "cigl/conv_backend.h"
#include "cigl/method.h"
#include "cigl/rng.h"
#include "cigl/sparse.h"
#include "cigl/train.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static uint64_t lcg;
static double unif(void)
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(lcg >> 11) * 0x1.0p-53;
}
static float frand(void) { return (float)(2.0 * unif() - 1.0); }

/* A random mask of the given density with rows `er` and columns `ec` forced empty (every 7th
 * row / 5th column when asked). */
static uint8_t *random_mask(int rows, int cols, double density, int empties)
{
    uint8_t *m = malloc((size_t)rows * cols);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            int on = unif() < density;
            if (empties && (i % 7 == 3 || j % 5 == 2)) on = 0;
            m[(size_t)i * cols + j] = (uint8_t)on;
        }
    return m;
}

/* |got - ref| <= 1e-5 * scale + 1e-6, where scale is the sum of |terms| of that element. */
static int close_to(double got, double ref, double scale)
{
    return fabs(got - ref) <= 1e-5 * scale + 1e-6;
}

static void check_kernels_case(int rows, int cols, double density, int n, int empties,
                               int use_act)
{
    uint8_t *mask = random_mask(rows, cols, density, empties);
    uint8_t *act = malloc((size_t)rows * cols);
    float *w = malloc(sizeof(float) * rows * cols);
    for (size_t i = 0; i < (size_t)rows * cols; i++) {
        w[i] = frand();
        act[i] = (uint8_t)(mask[i] && unif() < 0.8);
    }
    SparseMatrix s;
    memset(&s, 0, sizeof(s));
    CHECK(sparse_matrix_build(&s, mask, rows, cols) == 0, "build");
    /* pattern invariants */
    size_t nnz = 0;
    for (size_t i = 0; i < (size_t)rows * cols; i++) nnz += mask[i];
    CHECK(s.nnz == nnz, "nnz %zu vs %zu", s.nnz, nnz);
    int bad_pat = 0;
    uint8_t *in_used = calloc((size_t)cols + 1, 1), *has_entry = calloc((size_t)cols + 1, 1);
    for (int u = 0; u < s.n_used; u++) {
        if (u > 0 && s.used[u] <= s.used[u - 1]) bad_pat++;
        in_used[s.used[u]] = 1;
    }
    for (int i = 0; i < rows; i++)
        for (int32_t k = s.row_ptr[i]; k < s.row_ptr[i + 1]; k++) {
            if (!mask[(size_t)i * cols + s.col[k]]) bad_pat++;
            if (k > s.row_ptr[i] && s.col[k] <= s.col[k - 1]) bad_pat++;
            has_entry[s.col[k]] = 1;
        }
    for (int j = 0; j < cols; j++) bad_pat += in_used[j] != has_entry[j]; /* used = columns with entries */
    free(in_used);
    free(has_entry);
    CHECK(bad_pat == 0, "%d pattern errors", bad_pat);
    const uint8_t *a = use_act ? act : NULL;
    /* effective dense weights: stored and (when a step mask is given) active */
    double *we = calloc((size_t)rows * cols, sizeof(double));
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        if (mask[i] && (!a || a[i])) we[i] = w[i];
    /* B: cols x n (X^T); D: rows x n (dY^T) */
    float *B = malloc(sizeof(float) * cols * n), *D = malloc(sizeof(float) * rows * n);
    for (size_t i = 0; i < (size_t)cols * n; i++) B[i] = frand();
    for (size_t i = 0; i < (size_t)rows * n; i++) D[i] = frand();
    /* forward, in two row ranges and two column ranges (as threads split them) */
    float *C = malloc(sizeof(float) * rows * n);
    for (size_t i = 0; i < (size_t)rows * n; i++) C[i] = 12345.0f; /* overwritten */
    int r0, r1, r2, r3;
    sparse_split_rows(&s, 0, 2, &r0, &r1);
    sparse_split_rows(&s, 1, 2, &r2, &r3);
    CHECK(r0 == 0 && r1 == r2 && r3 == rows, "split %d %d %d %d", r0, r1, r2, r3);
    const size_t h = (size_t)n / 2;
    sparse_mm(&s, w, 1.0f, a, NULL, r0, r1, B, n, 0, h, C, n, 0);
    sparse_mm(&s, w, 1.0f, a, NULL, r0, r1, B, n, h, n, C, n, 0);
    sparse_mm(&s, w, 1.0f, a, NULL, r2, r3, B, n, 0, n, C, n, 0);
    int bad = 0;
    for (int i = 0; i < rows; i++)
        for (int b = 0; b < n; b++) {
            double ref = 0, sc = 0;
            for (int j = 0; j < cols; j++) {
                ref += we[(size_t)i * cols + j] * B[(size_t)j * n + b];
                sc += fabs(we[(size_t)i * cols + j] * B[(size_t)j * n + b]);
            }
            bad += !close_to(C[(size_t)i * n + b], ref, sc);
        }
    CHECK(bad == 0, "forward: %d of %d wrong (%dx%d d=%g n=%d)", bad, rows * n, rows, cols,
          density, n);
    /* rows found through row offsets (packed used rows, in reverse order) give the same */
    float *Bc = malloc(sizeof(float) * ((size_t)s.n_used + 1) * n);
    for (int u = 0; u < s.n_used; u++) {
        s.row_off[s.used[u]] = (size_t)(s.n_used - 1 - u) * n;
        memcpy(Bc + s.row_off[s.used[u]], B + (size_t)s.used[u] * n, sizeof(float) * n);
    }
    float *C2 = malloc(sizeof(float) * rows * n);
    sparse_mm(&s, w, 1.0f, a, s.row_off, 0, rows, Bc, 0, 0, n, C2, n, 0);
    CHECK(!memcmp(C, C2, sizeof(float) * rows * n), "forward through row offsets differs");
    /* the same bits as each column alone: an element depends on its row's entries and their
     * order only, never on the column range a call covers (callers split and tile columns) */
    float *C1 = malloc(sizeof(float) * rows * n);
    for (int b = 0; b < n; b++) sparse_mm(&s, w, 1.0f, a, NULL, 0, rows, B, n, b, b + 1, C1, n, 0);
    CHECK(!memcmp(C, C1, sizeof(float) * rows * n), "forward: bits differ from each column alone");
    free(C1);
    /* input gradient */
    float *E = calloc((size_t)cols * n, sizeof(float));
    sparse_mm_t(&s, w, 1.0f, a, NULL, 0, rows, D, n, 0, h, E, n);
    sparse_mm_t(&s, w, 1.0f, a, NULL, 0, rows, D, n, h, n, E, n);
    bad = 0;
    for (int j = 0; j < cols; j++)
        for (int b = 0; b < n; b++) {
            double ref = 0, sc = 0;
            for (int i = 0; i < rows; i++) {
                ref += we[(size_t)i * cols + j] * D[(size_t)i * n + b];
                sc += fabs(we[(size_t)i * cols + j] * D[(size_t)i * n + b]);
            }
            bad += !close_to(E[(size_t)j * n + b], ref, sc);
        }
    CHECK(bad == 0, "input gradient: %d of %d wrong (%dx%d d=%g n=%d)", bad, cols * n, rows,
          cols, density, n);
    /* weight gradient at stored entries; 0 at inactive ones; accumulation */
    float *g = malloc(sizeof(float) * (s.nnz + 1));
    sparse_sddmm(&s, a, NULL, 0, rows, D, n, B, n, n, g, 0);
    bad = 0;
    for (int i = 0; i < rows; i++)
        for (int32_t k = s.row_ptr[i]; k < s.row_ptr[i + 1]; k++) {
            const int j = s.col[k];
            double ref = 0, sc = 0;
            for (int b = 0; b < n; b++) {
                ref += (double)D[(size_t)i * n + b] * B[(size_t)j * n + b];
                sc += fabs((double)D[(size_t)i * n + b] * B[(size_t)j * n + b]);
            }
            if (a && !a[(size_t)i * cols + j]) ref = sc = 0;
            bad += !close_to(g[k], ref, sc) || (a && !a[(size_t)i * cols + j] && g[k] != 0.0f);
        }
    CHECK(bad == 0, "weight gradient: %d of %zu wrong (%dx%d d=%g n=%d)", bad, s.nnz, rows, cols,
          density, n);
    float *g2 = malloc(sizeof(float) * (s.nnz + 1));
    memcpy(g2, g, sizeof(float) * s.nnz);
    sparse_sddmm(&s, a, s.row_off, 0, rows, D, n, Bc, 0, n, g2, 1);
    bad = 0;
    for (size_t k = 0; k < s.nnz; k++) bad += g2[k] != g[k] + g[k];
    CHECK(bad == 0, "accumulated weight gradient through row offsets: %d wrong", bad);
    /* the same bits as each entry alone: the kernel forms up to four products per pass, each
     * in the lanes and order of a lone entry's */
    int32_t one_ptr[2] = {0, 1}, one_col[1];
    SparseMatrix one = {.rows = 1, .cols = cols, .nnz = 1, .row_ptr = one_ptr, .col = one_col};
    bad = 0;
    for (int i = 0; i < rows; i++)
        for (int32_t k = s.row_ptr[i]; k < s.row_ptr[i + 1]; k++) {
            if (a && !a[(size_t)i * cols + s.col[k]]) continue;
            float alone;
            one_col[0] = s.col[k];
            sparse_sddmm(&one, NULL, NULL, 0, 1, D + (size_t)i * n, n, B, n, n, &alone, 0);
            bad += memcmp(&alone, &g[k], sizeof alone) != 0;
        }
    CHECK(bad == 0, "weight gradient: %d entries differ in bits from the entry alone", bad);
    sparse_matrix_free(&s);
    free(mask); free(act); free(w); free(we); free(B); free(D); free(C); free(C2); free(Bc);
    free(E); free(g); free(g2);
}

static void test_kernels_random(void)
{
    lcg = 1;
    static const double dens[] = {0.005, 0.02, 0.1, 0.5};
    static const int batches[] = {1, 3, 64, 600}; /* 600: a long column range */
    for (int di = 0; di < 4; di++)
        for (int bi = 0; bi < 4; bi++) {
            const int rows = 1 + (int)(unif() * 90), cols = 1 + (int)(unif() * 300);
            check_kernels_case(rows, cols, dens[di], batches[bi], (di + bi) % 2, bi % 2);
        }
    /* all-empty, one entry, fully dense */
    check_kernels_case(5, 9, 0.0, 8, 0, 0);
    check_kernels_case(1, 1, 1.0, 1, 0, 0);
    check_kernels_case(16, 144, 1.0, 17, 0, 1);
}

/* ---- layers ------------------------------------------------------------------------------- */

/* One-layer model (conv or linear); returns its layer index 0. */
static int one_layer(Model *m, int conv, Shape in, int out, int k, int s, int p, int batch)
{
    model_init_empty(m, "t", in, out);
    if (conv) model_add_conv(m, "c", -1, out, k, s, p, 1);
    else model_add_linear(m, "l", -1, out, 1);
    return model_finalize(m, batch);
}

/* Sparse layer vs dense layer on the same masked weights (zeros outside the mask), with the
 * given thread count and workspace (ws_floats 0: the model's own). */
static void check_layer(int conv, Shape in, int out, int k, int s, int p, int n, double density,
                        int threads, size_t ws_floats, int use_act)
{
    omp_set_num_threads(threads);
    Model m;
    CHECK(one_layer(&m, conv, in, out, k, s, p, n) == 0, "model");
    Layer *l = &m.layers[0];
    const size_t wl = l->weight_len, numel = shape_numel(in), onumel = shape_numel(l->y);
    uint8_t *mask = malloc(m.n_params), *act = malloc(m.n_params);
    memset(mask, 1, m.n_params);
    memset(act, 1, m.n_params);
    for (size_t i = 0; i < wl; i++) {
        mask[l->weight_off + i] = (uint8_t)(unif() < density);
        if (i % 11 == 0) mask[l->weight_off + i] = 0;
        act[l->weight_off + i] = (uint8_t)(mask[l->weight_off + i] && unif() < 0.7);
    }
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = mask[i] ? frand() : 0.0f;
    /* the weights the step reads: CigL's effective weights when a step mask is used */
    float *weff = malloc(sizeof(float) * m.n_params);
    for (size_t i = 0; i < m.n_params; i++)
        weff[i] = (!use_act || act[i]) ? m.params[i] * (use_act ? 1.25f : 1.0f) : 0.0f;
    float *x = malloc(sizeof(float) * numel * n), *dy = malloc(sizeof(float) * onumel * n);
    for (size_t i = 0; i < numel * n; i++) x[i] = frand();
    for (size_t i = 0; i < onumel * n; i++) dy[i] = frand();
    float *y_d = malloc(sizeof(float) * onumel * n), *y_s = malloc(sizeof(float) * onumel * n);
    float *dx_d = malloc(sizeof(float) * numel * n), *dx_s = malloc(sizeof(float) * numel * n);
    float *g_d = malloc(sizeof(float) * m.n_params);
    for (size_t i = 0; i < numel * n; i++) dx_d[i] = dx_s[i] = 0.5f; /* accumulated into */
    float *ws = ws_floats ? malloc(sizeof(float) * ws_floats) : NULL;
    LayerCtx ctx = {.weights = weff, .grads = m.grads, .bn_stats = m.bn_stats,
                    .workspace = ws ? ws : m.workspace,
                    .workspace_floats = ws ? ws_floats : m.workspace_floats, .n = n, .train = 1,
                    .wgrad_scale = 1.25f, .conv_slots = ws ? 1 : m.conv_slots};
    l->ops->forward(l, &ctx, x, NULL, y_d);
    l->ops->backward(l, &ctx, x, NULL, y_d, dy, dx_d, NULL);
    memcpy(g_d, m.grads, sizeof(float) * m.n_params);
    /* a conv that writes its dx first stores it (layer.h): the old contents must not show */
    float *dx_d1 = malloc(sizeof(float) * numel * n), *dx_s1 = malloc(sizeof(float) * numel * n);
    for (size_t i = 0; i < numel * n; i++) dx_d1[i] = dx_s1[i] = 777.0f;
    if (conv) {
        l->dx_first = 1;
        l->ops->backward(l, &ctx, x, NULL, y_d, dy, dx_d1, NULL);
        l->dx_first = 0;
    }
    CHECK(sparse_model_setup(&m, KERNELS_SPARSE, mask) == 0, "setup");
    CHECK(l->sparse != NULL, "layer not sparse");
    CHECK(sparse_model_step(&m, mask, 0, use_act ? act : NULL, weff, 0) == 0, "step");
    for (size_t i = 0; i < m.n_params; i++) m.grads[i] = 777.0f; /* must be overwritten */
    l->ops->forward(l, &ctx, x, NULL, y_s);
    l->ops->backward(l, &ctx, x, NULL, y_s, dy, dx_s, NULL);
    double ey = 0, sy = 0, ex = 0, sx = 0, eg = 0, sg = 0;
    for (size_t i = 0; i < onumel * n; i++) {
        ey = fmax(ey, fabs(y_s[i] - y_d[i]));
        sy = fmax(sy, fabs(y_d[i]));
    }
    for (size_t i = 0; i < numel * n; i++) {
        ex = fmax(ex, fabs(dx_s[i] - dx_d[i]));
        sx = fmax(sx, fabs(dx_d[i]));
    }
    int bad_zero = 0;
    for (size_t i = l->weight_off; i < l->weight_off + wl; i++) {
        const int live = mask[i] && (!use_act || act[i]);
        if (live) {
            eg = fmax(eg, fabs(m.grads[i] - g_d[i]));
            sg = fmax(sg, fabs(g_d[i]));
        } else {
            bad_zero += m.grads[i] != 0.0f;
        }
    }
    double eb = 0;
    for (size_t i = l->bias_off; i < l->bias_off + l->bias_len; i++)
        eb = fmax(eb, fabs(m.grads[i] - g_d[i]));
    const char *what = conv ? "conv" : "linear";
    CHECK(ey <= 2e-6 * (1 + sy), "%s y: max err %g (max %g)", what, ey, sy);
    CHECK(ex <= 2e-6 * (1 + sx), "%s dx: max err %g (max %g)", what, ex, sx);
    CHECK(eg <= 2e-6 * (1 + sg), "%s dW: max err %g (max %g)", what, eg, sg);
    CHECK(eb == 0.0, "%s bias gradient differs by %g", what, eb);
    CHECK(bad_zero == 0, "%s: %d gradients outside the live entries are not 0", what, bad_zero);
    if (conv) {
        CHECK(l->ops->writes_first, "the sparse conv does not store a dx it writes first");
        l->dx_first = 1;
        l->ops->backward(l, &ctx, x, NULL, y_s, dy, dx_s1, NULL);
        l->dx_first = 0;
        double e1 = 0, s1 = 0;
        for (size_t i = 0; i < numel * n; i++) {
            e1 = fmax(e1, fabs(dx_s1[i] - dx_d1[i]));
            s1 = fmax(s1, fabs(dx_d1[i]));
        }
        CHECK(e1 <= 2e-6 * (1 + s1) && s1 < 700.0, "conv dx stored first: max err %g (max %g)",
              e1, s1);
    }
    /* without the step's weights pointer the step mask does not apply (evaluation) */
    if (use_act) {
        float *y_e = malloc(sizeof(float) * onumel * n);
        LayerCtx ev = ctx;
        ev.weights = m.params;
        l->ops->forward(l, &ev, x, NULL, y_e);
        LayerCtx dv = ev;
        sparse_model_free(&m);
        float *y_r = malloc(sizeof(float) * onumel * n);
        l->ops->forward(l, &dv, x, NULL, y_r);
        double ee = 0;
        for (size_t i = 0; i < onumel * n; i++) ee = fmax(ee, fabs(y_e[i] - y_r[i]));
        CHECK(ee <= 2e-6 * (1 + sy), "%s evaluation forward: max err %g", what, ee);
        free(y_e);
        free(y_r);
    }
    model_free(&m);
    free(mask); free(act); free(weff); free(x); free(dy); free(y_d); free(y_s); free(dx_d);
    free(dx_s); free(g_d); free(ws); free(dx_d1); free(dx_s1);
}

static void test_linear_layer(void)
{
    lcg = 7;
    check_layer(0, (Shape){37, 1, 1}, 23, 0, 0, 0, 1, 0.3, 2, 0, 0);
    check_layer(0, (Shape){300, 1, 1}, 100, 0, 0, 0, 128, 0.05, 2, 0, 1);
    check_layer(0, (Shape){1, 28, 28}, 300, 0, 0, 0, 256, 0.005, 2, 0, 0);
    check_layer(0, (Shape){64, 1, 1}, 10, 0, 0, 0, 33, 0.5, 1, 0, 1);
}

static void test_conv_layer(void)
{
    lcg = 9;
    check_layer(1, (Shape){3, 9, 9}, 8, 3, 1, 1, 5, 0.2, 2, 0, 0);
    check_layer(1, (Shape){16, 8, 8}, 32, 3, 2, 1, 16, 0.05, 2, 0, 1);
    check_layer(1, (Shape){8, 8, 8}, 16, 1, 2, 0, 7, 0.5, 2, 0, 0);
    check_layer(1, (Shape){1, 12, 12}, 6, 5, 1, 2, 3, 0.5, 1, 0, 1);
    check_layer(1, (Shape){6, 10, 10}, 16, 5, 1, 0, 4, 0.02, 2, 0, 0);
    /* a workspace of one slot that fits one sample: many chunks of 1 */
    check_layer(1, (Shape){4, 6, 6}, 5, 3, 1, 1, 6, 0.3, 2, (size_t)(36 + 5) * 36 + 16 + 180, 1);
    check_layer(1, (Shape){16, 16, 16}, 16, 3, 1, 1, 64, 0.01, 2, 0, 1);
    /* direct (padded-plane) path: non-square planes, no padding, odd batches split in chunks */
    check_layer(1, (Shape){5, 7, 11}, 6, 3, 1, 0, 13, 0.3, 2, 0, 1);
    check_layer(1, (Shape){3, 4, 9}, 7, 3, 1, 1, 9, 0.6, 2, 0, 0);
    check_layer(1, (Shape){2, 6, 5}, 4, 5, 1, 2, 11, 0.4, 1, 0, 1);
}

/* One threshold of the auto rule: sparse at `yes` (skipped when negative), dense at `no`. */
typedef struct {
    int layer;
    double yes, no;
} RuleCase;

static void check_rule(const Model *m, const RuleCase *cases, size_t n, const char *backend)
{
    for (size_t i = 0; i < n; i++) {
        const Layer *l = &m->layers[cases[i].layer];
        if (cases[i].yes >= 0)
            CHECK(sparse_auto_choice(l, cases[i].yes) == 1, "%s: %s at %g: dense", backend,
                  l->name, cases[i].yes);
        CHECK(sparse_auto_choice(l, cases[i].no) == 0, "%s: %s at %g: sparse", backend, l->name,
              cases[i].no);
    }
}

/* The model the auto-rule cases are read on: conv output planes 32x32, 16x16 (strided) and
 * 8x8 (strided), a 16384-weight linear layer and a 320-weight head. */
typedef struct {
    Model m;
    int big, mid, small, flat, fc, head;
} RuleModel;

static void rule_model(RuleModel *r)
{
    model_init_empty(&r->m, "rule", (Shape){4, 32, 32}, 10);
    r->big = model_add_conv(&r->m, "c32", -1, 8, 3, 1, 1, 0);            /* 32x32 out */
    r->mid = model_add_conv(&r->m, "c16", r->big, 8, 3, 2, 1, 0);        /* 16x16 */
    r->small = model_add_conv(&r->m, "c8", r->mid, 8, 3, 2, 1, 0);       /* 8x8 */
    r->flat = model_add_flatten(&r->m, "flat", r->small);
    r->fc = model_add_linear(&r->m, "fc", r->flat, 32, 0);                /* 16384 weights */
    r->head = model_add_linear(&r->m, "head", r->fc, 10, 0);              /* 320 */
}

/* The auto rule (sparse_rule.h) against the own kernels: thresholds by kind and output plane,
 * at and past each. */
static void test_auto_rule(void)
{
    RuleModel r;
    rule_model(&r);
    Model m = r.m;
    const int big = r.big, mid = r.mid, small = r.small, flat = r.flat, fc = r.fc, head = r.head;
    const RuleCase own[] = {
        {big, 0.40, 0.41}, {mid, 0.30, 0.31}, {small, 0.15, 0.16}, {fc, 0.12, 0.13},
        {head, -1, 0.01}, /* too small for sparse kernels at any density */
    };
    check_rule(&m, own, sizeof(own) / sizeof(own[0]), "own");
    CHECK(sparse_auto_choice(&m.layers[flat], 0.01) == 0, "a flatten chose sparse kernels");
    model_free(&m);
}

/* The same against oneDNN's dense convolutions: lower conv thresholds, by layout; linear
 * unchanged. */
static void test_auto_rule_onednn(void)
{
    if (!conv_backend_onednn_built()) SKIP_CASE("built without oneDNN (ONEDNN=0)");
    RuleModel r;
    rule_model(&r);
    Model m = r.m;
    const int mid = r.mid, small = r.small, big = r.big, fc = r.fc;
    const int pw = model_add_conv(&m, "pw", mid, 8, 1, 2, 0, 0);          /* 1x1, 8x8 */
    const int mid1 = model_add_conv(&m, "c16s1", mid, 8, 3, 1, 1, 0);     /* 16x16 stride 1 */
    const int small1 = model_add_conv(&m, "c8s1", small, 8, 3, 1, 1, 0);  /* 8x8 stride 1 */
    const RuleCase onednn[] = {
        {big, 0.30, 0.31}, {mid1, 0.15, 0.16}, {small1, 0.10, 0.11}, {mid, 0.02, 0.03},
        {small, 0.05, 0.06}, {pw, 0.30, 0.31}, {fc, 0.12, 0.13},
    };
    CHECK(conv_backend_set(CONV_BACKEND_ONEDNN) == 0, "oneDNN built in but not selectable");
    check_rule(&m, onednn, sizeof(onednn) / sizeof(onednn[0]), "onednn");
    /* Fashion-MNIST's planes (28, 14, 7) fall in the tiers of CIFAR's (32, 16, 8) */
    Model f;
    model_init_empty(&f, "rule28", (Shape){4, 28, 28}, 10);
    const int c28 = model_add_conv(&f, "c28", -1, 8, 3, 1, 1, 0);       /* 784 */
    const int c14s = model_add_conv(&f, "c14s", c28, 8, 3, 2, 1, 0);    /* 196, strided */
    const int c14 = model_add_conv(&f, "c14", c14s, 8, 3, 1, 1, 0);     /* 196 */
    const int c7s = model_add_conv(&f, "c7s", c14, 8, 3, 2, 1, 0);      /* 49, strided */
    const int c7 = model_add_conv(&f, "c7", c7s, 8, 3, 1, 1, 0);        /* 49 */
    const RuleCase fm[] = {
        {c28, 0.30, 0.31}, {c14s, 0.02, 0.03}, {c14, 0.15, 0.16}, {c7s, 0.05, 0.06},
        {c7, 0.10, 0.11},
    };
    check_rule(&f, fm, sizeof(fm) / sizeof(fm[0]), "onednn, 28x28");
    model_free(&f);
    conv_backend_set(CONV_BACKEND_OWN);
    model_free(&m);
}

static void test_choice_string(void)
{
    Model m;
    CHECK(model_build(&m, "lenet5", (Shape){1, 28, 28}, 10, 4, 1) == 0, "build");
    uint8_t *mask = malloc(m.n_params);
    memset(mask, 1, m.n_params);
    CHECK(sparse_model_setup(&m, KERNELS_SPARSE, mask) == 0, "setup");
    char buf[256];
    CHECK(sparse_choice_format(&m, buf, sizeof(buf)) > 0, "format");
    CHECK(!strcmp(buf, "sparse,sparse,sparse,sparse,sparse"), "got %s", buf);
    CHECK(sparse_model_setup_choice(&m, "dense,sparse,dense,dense,sparse", mask) == 0, "parse");
    sparse_choice_format(&m, buf, sizeof(buf));
    CHECK(!strcmp(buf, "dense,sparse,dense,dense,sparse"), "got %s", buf);
    CHECK(sparse_model_setup_choice(&m, "dense,sparse", mask) != 0, "short string accepted");
    CHECK(sparse_model_setup_choice(&m, "sparse", mask) == 0, "one word");
    sparse_choice_format(&m, buf, sizeof(buf));
    CHECK(!strcmp(buf, "sparse,sparse,sparse,sparse,sparse"), "got %s", buf);
    CHECK(sparse_model_setup(&m, KERNELS_DENSE, mask) == 0 && m.sparse == NULL, "dense mode");
    sparse_choice_format(&m, buf, sizeof(buf));
    CHECK(!strcmp(buf, "dense,dense,dense,dense,dense"), "got %s", buf);
    CHECK(sparse_choice_format(&m, buf, 8) == -1, "small buffer");
    CHECK(sparse_kernels_parse("auto") == KERNELS_AUTO && sparse_kernels_parse("x") == -1, "parse");
    free(mask);
    model_free(&m);
}

/* The random mask drawn for sparse-kernel layers (Philox only at stored entries) is the dense
 * draw bit for bit: effective weights and the step mask, CigL (frozen drops) and W-DP. */
static void check_draw(const char *method, const char *model)
{
    omp_set_num_threads(2);
    Model m;
    CHECK(model_build(&m, model, (Shape){1, 28, 28}, 10, 4, 2) == 0, "build");
    Config c;
    config_defaults(&c);
    snprintf(c.method, sizeof(c.method), "%s", method);
    c.sparsity = 0.8;
    c.random_mask_rate = 0.3;
    c.dropout_rate = 0.3;
    c.average_every = 2;
    MethodState s;
    CHECK(method_init(&s, &c, &m, 100, 10) == 0, "method_init");
    const size_t n = m.n_params;
    float *we = malloc(sizeof(float) * n);
    uint8_t *act = malloc(n);
    for (long step = 3; step < 6; step++) {
        sparse_model_free(&m);
        const float *wd = method_before_forward(&s, &m, step);
        memcpy(we, wd, sizeof(float) * n);
        memcpy(act, s.active, n);
        CHECK(sparse_model_setup(&m, KERNELS_SPARSE, s.mask) == 0, "setup");
        const float *ws = method_before_forward(&s, &m, step);
        /* the sparse kernels read W and 1 / keep (sparse_step_weights) instead of effective
         * weights: the same floats */
        size_t differ = 0;
        for (int ti = 0; ti < m.n_tensors; ti++) {
            const ParamTensor *t = &m.tensors[ti];
            const Layer *l = &m.layers[t->layer];
            const int sparse = t->prunable && l->sparse;
            float scale = 1.0f;
            const float *src = sparse ? sparse_step_weights(l, &(LayerCtx){.weights = ws}, &scale)
                                      : ws + t->off;
            CHECK(!sparse || scale == s.inv_keep, "kernel scale %g, inv_keep %g", scale, s.inv_keep);
            for (size_t i = 0; i < t->len; i++) {
                const float got = sparse ? (s.active[t->off + i] ? src[i] * scale : 0.0f) : src[i];
                differ += memcmp(&got, &we[t->off + i], sizeof got) != 0;
            }
        }
        CHECK(differ == 0, "%s %s step %ld: %zu effective weights differ", method, model, step,
              differ);
        CHECK(!memcmp(s.active, act, n), "%s %s step %ld: step masks differ", method, model, step);
    }
    size_t dropped = 0;
    for (size_t i = 0; i < n; i++) dropped += s.mask[i] && we[i] == 0.0f;
    CHECK(dropped > 0, "no weight dropped");
    free(we);
    free(act);
    method_free(&s);
    model_free(&m);
}

static void test_random_mask_draw_matches_dense(void)
{
    check_draw("cigl", "mlp");
    check_draw("cigl", "lenet5");
    check_draw("rigl-wdp", "mlp");
}

/* A chain of linear layers with every mix of kernels: the feature-major hand-off (layer.h)
 * goes exactly where a linear layer's only reader is a linear layer and one of the two is
 * sparse, and logits and gradients match the all-dense model, with sparse and with dense weight
 * gradients (a mask-update step). fc2's output also feeds an add, so it is not handed off. */
static void check_chain(const char *choice, int dense_wgrad, const char *expect_t)
{
    enum { N = 19, IN = 40, CLASSES = 7 };
    Model m;
    model_init_empty(&m, "chain", (Shape){IN, 1, 1}, CLASSES);
    int x = model_add_relu(&m, "r1", model_add_linear(&m, "fc1", -1, 33, 1));
    x = model_add_relu(&m, "r2", model_add_linear(&m, "fc2", x, 29, 1));
    const int a = model_add_linear(&m, "fc3", x, 29, 0);
    x = model_add_add(&m, "add", a, x);
    x = model_add_relu(&m, "r4", model_add_linear(&m, "fc4", x, 31, 1));
    model_add_linear(&m, "fc5", x, CLASSES, 1);
    CHECK(model_finalize(&m, N) == 0, "model");
    uint8_t *mask = malloc(m.n_params);
    for (size_t i = 0; i < m.n_params; i++) mask[i] = 1;
    for (int t = 0; t < m.n_tensors; t++)
        if (m.tensors[t].prunable)
            for (size_t i = m.tensors[t].off; i < m.tensors[t].off + m.tensors[t].len; i++)
                mask[i] = (uint8_t)(unif() < 0.3);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = mask[i] ? frand() : 0.0f;
    float *x_in = malloc(sizeof(float) * IN * N), *dl = malloc(sizeof(float) * CLASSES * N);
    for (int i = 0; i < IN * N; i++) x_in[i] = frand();
    for (int i = 0; i < CLASSES * N; i++) dl[i] = frand();
    float *ref = malloc(sizeof(float) * CLASSES * N), *g_ref = malloc(sizeof(float) * m.n_params);
    memcpy(ref, model_forward(&m, m.params, x_in, N, 1), sizeof(float) * CLASSES * N);
    model_backward(&m, m.params, x_in, dl, N);
    memcpy(g_ref, m.grads, sizeof(float) * m.n_params);
    CHECK(sparse_model_setup_choice(&m, choice, mask) == 0, "setup %s", choice);
    CHECK(sparse_model_step(&m, mask, 0, NULL, NULL, dense_wgrad) == 0, "step");
    char got_t[32] = {0};
    int k = 0;
    for (int i = 0; i < m.n_layers; i++)
        if (m.layers[i].kind == LAYER_LINEAR)
            got_t[k++] = (char)('0' + m.layers[i].in_t * 2 + m.layers[i].out_t);
    CHECK(!strcmp(got_t, expect_t), "%s: hand-offs (in_t*2 + out_t per linear) %s, expected %s",
          choice, got_t, expect_t);
    for (size_t i = 0; i < m.n_params; i++) m.grads[i] = 777.0f; /* must be overwritten */
    const float *logits = model_forward(&m, m.params, x_in, N, 1);
    model_backward(&m, m.params, x_in, dl, N);
    double ey = 0, eg = 0, sg = 0;
    for (int i = 0; i < CLASSES * N; i++) ey = fmax(ey, fabs(logits[i] - ref[i]));
    for (size_t i = 0; i < m.n_params; i++) {
        if (!mask[i] && !dense_wgrad) continue; /* the sparse gradient is 0 there */
        eg = fmax(eg, fabs(m.grads[i] - g_ref[i]));
        sg = fmax(sg, fabs(g_ref[i]));
    }
    CHECK(ey <= 1e-5, "%s: logits differ by %g", choice, ey);
    CHECK(eg <= 2e-6 * (1 + sg), "%s (dense wgrad %d): gradients differ by %g", choice,
          dense_wgrad, eg);
    model_free(&m);
    free(mask); free(x_in); free(dl); free(ref); free(g_ref);
}

static void test_linear_chain_layouts(void)
{
    lcg = 13;
    omp_set_num_threads(2);
    /* per linear layer fc1..fc5: in_t * 2 + out_t (fc2 -> fc3 never: fc2 has two readers) */
    check_chain("sparse,sparse,sparse,sparse,sparse", 0, "12012");
    check_chain("sparse,sparse,sparse,sparse,sparse", 1, "12012");
    check_chain("sparse,dense,dense,dense,sparse", 0, "12012");
    check_chain("dense,sparse,dense,sparse,dense", 1, "12012");
    check_chain("sparse,dense,dense,dense,dense", 1, "12000");
    check_chain("dense,dense,sparse,dense,dense", 0, "00000");
    check_chain("dense", 0, "00000");
}

/* Evaluation-mode BN folded into sparse convs (layer.h fold_bn): resnet20 gives the same
 * logits bit for bit with and without the fold, in evaluation (running statistics made
 * non-trivial by a few training passes) and in training, and the fold is where it should be
 * (every stride-1 and strided conv of resnet20 feeds a BN alone; the direct path and the
 * im2col path are both covered). */
static void test_eval_bn_fold(void)
{
    enum { N = 3 };
    omp_set_num_threads(2);
    Model m;
    CHECK(model_build(&m, "resnet20", (Shape){3, 32, 32}, 10, N, 11) == 0, "build");
    uint8_t *mask = malloc(m.n_params);
    lcg = 21;
    for (size_t i = 0; i < m.n_params; i++) mask[i] = 1;
    for (int t = 0; t < m.n_tensors; t++)
        if (m.tensors[t].prunable)
            for (size_t i = m.tensors[t].off; i < m.tensors[t].off + m.tensors[t].len; i++)
                mask[i] = (uint8_t)(unif() < 0.2);
    for (size_t i = 0; i < m.n_params; i++)
        if (!mask[i]) m.params[i] = 0.0f;
    for (size_t i = 0; i < m.n_params; i++) /* non-trivial BN scales and shifts */
        if (mask[i] && m.params[i] == 1.0f) m.params[i] = 0.5f + (float)unif();
    float *x = malloc(sizeof(float) * 3 * 32 * 32 * N);
    for (int i = 0; i < 3 * 32 * 32 * N; i++) x[i] = frand();
    for (int k = 0; k < 3; k++) model_forward(&m, m.params, x, N, 1); /* running statistics */
    float got[2][2][10 * N];
    int folds = 0;
    for (int v = 0; v < 2; v++) {
        m.no_eval_fold = v;
        CHECK(sparse_model_setup(&m, KERNELS_SPARSE, mask) == 0, "setup");
        CHECK(sparse_model_step(&m, mask, 0, NULL, NULL, 0) == 0, "step");
        if (v == 0)
            for (int i = 0; i < m.n_layers; i++) folds += m.layers[i].fold_bn != NULL;
        float *stats = malloc(sizeof(float) * m.n_bn_stats);
        memcpy(stats, m.bn_stats, sizeof(float) * m.n_bn_stats);
        memcpy(got[v][0], model_forward(&m, m.params, x, N, 0), sizeof(got[v][0]));
        memcpy(got[v][1], model_forward(&m, m.params, x, N, 1), sizeof(got[v][1]));
        memcpy(m.bn_stats, stats, sizeof(float) * m.n_bn_stats); /* same state for both */
        free(stats);
    }
    CHECK(folds == 21, "%d folded convs (resnet20 has 19 3x3 + 2 1x1 convs, each before a BN)",
          folds);
    CHECK(!memcmp(got[0][0], got[1][0], sizeof(got[0][0])), "evaluation logits differ");
    CHECK(!memcmp(got[0][1], got[1][1], sizeof(got[0][1])), "training logits differ");
    int moved = 0;
    for (int i = 0; i < 10 * N; i++) moved += got[0][0][i] != got[0][1][i];
    CHECK(moved > 0, "evaluation and training logits are equal: the running statistics unused?");
    model_free(&m);
    free(mask);
    free(x);
}

/* ---- training equivalence ------------------------------------------------------------------ */

enum { TBATCH = 32, TSTEPS = 50 };

/* mechanics: "cigl" or "authors" (--mechanics: every option where cigl and the authors' code
 * differ, --z-timing authors included) */
static void train_run_once(const char *method, const char *model, const char *mechanics,
                           int sparse, float *out_w, uint8_t *out_mask, size_t *n_out)
{
    omp_set_num_threads(2);
    Model m;
    const Shape in = {1, 28, 28};
    CHECK(model_build(&m, model, in, 10, TBATCH, 5) == 0, "build");
    Config c;
    config_defaults(&c);
    snprintf(c.method, sizeof(c.method), "%s", method);
    c.sparsity = 0.9;
    c.update_interval = 20;
    c.update_end = 0.9;
    c.average_start = 0.9;
    c.average_every = 2;
    c.random_mask_rate = 0.1;
    c.seed = 3;
    snprintf(c.mechanics, sizeof(c.mechanics), "%s", mechanics);
    CHECK(method_resolve_mechanics(&c) == 0, "mechanics %s", mechanics);
    Sgd opt;
    sgd_init(&opt, &m, 0.9, 5e-4, 1, 0);
    MethodState s;
    CHECK(method_init(&s, &c, &m, TSTEPS, 10) == 0, "method_init");
    if (sparse) {
        CHECK(sparse_model_setup(&m, KERNELS_SPARSE, s.mask) == 0, "setup");
        int n_sparse = 0;
        for (int i = 0; i < m.n_layers; i++) n_sparse += m.layers[i].sparse != NULL;
        CHECK(n_sparse == (strcmp(model, "mlp") ? 5 : 3), "%d sparse layers", n_sparse);
    }
    const size_t numel = shape_numel(in);
    float *x = malloc(sizeof(float) * numel * TBATCH), *dl = malloc(sizeof(float) * 10 * TBATCH);
    int32_t y[TBATCH];
    for (long step = 0; step < TSTEPS; step++) {
        for (size_t i = 0; i < numel * TBATCH; i++)
            x[i] = (float)rng_normal(5, RNG_AUGMENT, (uint64_t)step, i);
        for (int i = 0; i < TBATCH; i++) y[i] = (int32_t)rng_below(5, RNG_MIXUP, (uint64_t)step, i, 10);
        int correct;
        method_train_step(&s, &m, &opt, x, y, TBATCH, 1.0f / TBATCH, 0.05, NULL, step, dl, &correct);
    }
    CHECK(s.updates_done == (strcmp(method, "static") ? 2 : 0), "%ld mask updates", s.updates_done);
    CHECK((s.held != NULL) == (!strcmp(mechanics, "authors") && !strcmp(method, "cigl")),
          "%s %s: the authors' Z timing is on exactly for CigL under their mechanics", method,
          mechanics);
    memcpy(out_w, m.params, sizeof(float) * m.n_params);
    memcpy(out_mask, s.mask, m.n_params);
    *n_out = m.n_params;
    free(x);
    free(dl);
    method_free(&s);
    sgd_free(&opt);
    model_free(&m);
}

static void check_training_mechanics(const char *method, const char *model,
                                     const char *mechanics)
{
    enum { CAP = 1 << 20 };
    float *wd = malloc(sizeof(float) * CAP), *ws = malloc(sizeof(float) * CAP);
    uint8_t *md = malloc(CAP), *msk = malloc(CAP);
    size_t n = 0, n2 = 0;
    train_run_once(method, model, mechanics, 0, wd, md, &n);
    train_run_once(method, model, mechanics, 1, ws, msk, &n2);
    CHECK(n == n2 && n <= CAP, "sizes");
    size_t mask_diff = 0;
    double err = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        mask_diff += md[i] != msk[i];
        err = fmax(err, fabs(wd[i] - ws[i]));
        mx = fmax(mx, fabs(wd[i]));
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += fabs(wd[i]);
    printf("     %s %s (%s mechanics): 50 steps, max |w_sparse - w_dense| = %.3g (max |w| %.3g, sum |w| %.6g), "
           "masks differ at %zu\n", method, model, mechanics, err, mx, sum, mask_diff);
    CHECK(mask_diff == 0, "%s %s: masks differ at %zu positions", method, model, mask_diff);
    CHECK(err <= 1e-4 * (1 + mx), "%s %s: weights differ by %g", method, model, err);
    free(wd); free(ws); free(md); free(msk);
}

static void check_training(const char *method, const char *model)
{
    check_training_mechanics(method, model, "cigl");
}

static void test_training_rigl_mlp(void) { check_training("rigl", "mlp"); }
static void test_training_cigl_mlp(void) { check_training("cigl", "mlp"); }
static void test_training_rigl_lenet5(void) { check_training("rigl", "lenet5"); }
static void test_training_cigl_lenet5(void) { check_training("cigl", "lenet5"); }
/* --z-timing authors on the sparse kernels: the patterns follow M, a Z-dropped weight enters
 * the forward pass with what it holds, and the gradient of every weight of M comes back */
static void test_training_authors_mechanics(void)
{
    check_training_mechanics("cigl", "lenet5", "authors");
    check_training_mechanics("cigl", "mlp", "authors");
    check_training_mechanics("rigl", "lenet5", "authors");
}

static void test_training_other_methods(void)
{
    check_training("set", "lenet5");
    check_training("rigl-wdp", "mlp");
    check_training("static", "mlp");
}

int main(void)
{
    RUN(test_kernels_random);
    RUN(test_linear_layer);
    RUN(test_conv_layer);
    RUN(test_linear_chain_layouts);
    RUN(test_eval_bn_fold);
    RUN(test_auto_rule);
    RUN(test_auto_rule_onednn);
    RUN(test_choice_string);
    RUN(test_random_mask_draw_matches_dense);
    RUN(test_training_rigl_mlp);
    RUN(test_training_cigl_mlp);
    RUN(test_training_rigl_lenet5);
    RUN(test_training_cigl_lenet5);
    RUN(test_training_other_methods);
    RUN(test_training_authors_mechanics);
    return CHECK_SUMMARY();
}
