/* Layers, loss, one ResNet basic block and three SGD steps against PyTorch reference results
 * stored in tests/fixtures/torch_layers.h5 (written by tests/fixtures/make_fixtures.py; the
 * directory may be overridden with CIGL_FIXTURES). Every case prints the largest absolute
 * difference it saw, per quantity, before its ok/FAIL line. A missing or incomplete fixture
 * file fails every case that needs it, with the command that regenerates it. */
#include "check.h"
#include "cigl/conv.h"
#include "cigl/conv_backend.h"
#include "cigl/layer.h"
#include "cigl/loss.h"
#include "cigl/model.h"
#include "cigl/optim.h"

#include <hdf5.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define REGENERATE "/usr/bin/python3 tests/fixtures/make_fixtures.py"

/* single layers: 1e-5 absolute + 1e-4 relative; the block: 1e-4 + 1e-3 */
#define ATOL 1e-5
#define RTOL 1e-4
#define BLOCK_ATOL 1e-4
#define BLOCK_RTOL 1e-3

static hid_t fx = H5I_INVALID_HID;
static char fx_path[4096];

/* ---- per-case bookkeeping: max |diff| per quantity, buffers freed at the end of the case -- */

static double case_max;
static char case_detail[4096];
static void *owned[128];
static int n_owned;

static void *keep(void *p)
{
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    if (n_owned == (int)(sizeof(owned) / sizeof(owned[0]))) {
        fprintf(stderr, "test_torch_fixtures: raise owned[]\n");
        exit(2);
    }
    owned[n_owned++] = p;
    return p;
}

static float *zalloc(size_t n) { return keep(calloc(n ? n : 1, sizeof(float))); }

static void case_reset(void)
{
    case_max = 0;
    case_detail[0] = 0;
}

static void note(const char *what, double d)
{
    size_t len = strlen(case_detail);
    snprintf(case_detail + len, sizeof(case_detail) - len, "%s%s %.3g", len ? ", " : "", what, d);
    if (d > case_max || isnan(d)) case_max = isnan(d) ? INFINITY : (d > case_max ? d : case_max);
}

static void case_end(const char *name)
{
    if (case_detail[0])
        printf("  max_abs_diff %-20s %.3e  (%s)\n", name, case_max, case_detail);
    else
        printf("  max_abs_diff %-20s n/a (nothing compared)\n", name);
    while (n_owned) free(owned[--n_owned]);
}

/* got vs want elementwise: |got - want| <= atol + rtol |want|; reports the first mismatches */
static void cmp(const char *what, const float *got, const float *want, size_t n, double atol,
                double rtol)
{
    double mx = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        const double g = got[i], w = want[i], d = fabs(g - w);
        const int ok = d <= atol + rtol * fabs(w) && !isnan(g);
        if (!ok && bad++ < 4)
            CHECK(ok, "%s[%zu]: got %.9g, expected %.9g (|diff| %.3g)", what, i, g, w, d);
        if (isnan(d)) mx = INFINITY;
        else if (d > mx) mx = d;
    }
    CHECK(bad == 0, "%s: %zu of %zu elements out of tolerance (atol %g, rtol %g)", what, bad, n,
          atol, rtol);
    note(what, mx);
}

static void cmp1(const char *what, double got, double want, double atol, double rtol)
{
    CHECK_CLOSE(got, want, atol, rtol, what);
    note(what, fabs(got - want));
}

/* ---- fixture reading ---------------------------------------------------------------------- */

static int fixture_ok(const char *what)
{
    CHECK(fx >= 0, "%s: fixture file %s is not available; regenerate it with: %s", what, fx_path,
          REGENERATE);
    return fx >= 0;
}

/* Dataset grp/name as `type`; fails (and returns zeros) when absent or of another size. */
static void *rd_typed(const char *grp, const char *name, size_t expect, hid_t type, size_t esz)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", grp, name);
    void *buf = keep(calloc(expect ? expect : 1, esz));
    if (!fixture_ok(path)) return buf;
    if (H5Lexists(fx, path, H5P_DEFAULT) <= 0) {
        CHECK(0, "dataset %s missing from %s; regenerate with: %s", path, fx_path, REGENERATE);
        return buf;
    }
    hid_t d = H5Dopen2(fx, path, H5P_DEFAULT);
    hid_t s = H5Dget_space(d);
    hssize_t numel = H5Sget_simple_extent_npoints(s);
    if (numel != (hssize_t)expect)
        CHECK(0, "dataset %s has %lld elements, expected %zu", path, (long long)numel, expect);
    else
        CHECK(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0, "reading %s", path);
    H5Sclose(s);
    H5Dclose(d);
    return buf;
}

static float *rdf(const char *grp, const char *name, size_t expect)
{
    return rd_typed(grp, name, expect, H5T_NATIVE_FLOAT, sizeof(float));
}

static int32_t *rdi(const char *grp, const char *name, size_t expect)
{
    return rd_typed(grp, name, expect, H5T_NATIVE_INT32, sizeof(int32_t));
}

/* The dataset's dimensions must be exactly these. */
static void dims_are(const char *grp, const char *name, int ndim, ...)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", grp, name);
    if (fx < 0 || H5Lexists(fx, path, H5P_DEFAULT) <= 0) return; /* reported by rd_typed */
    hsize_t dims[8] = {0};
    hid_t d = H5Dopen2(fx, path, H5P_DEFAULT), s = H5Dget_space(d);
    int nd = H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s);
    H5Dclose(d);
    va_list ap;
    va_start(ap, ndim);
    int same = nd == ndim;
    char want[96] = "", got[96] = "";
    for (int i = 0; i < ndim; i++) {
        int v = va_arg(ap, int);
        size_t l = strlen(want);
        snprintf(want + l, sizeof(want) - l, "%s%d", i ? "x" : "", v);
        if (i < nd && dims[i] != (hsize_t)v) same = 0;
    }
    va_end(ap);
    for (int i = 0; i < nd && i < 8; i++) {
        size_t l = strlen(got);
        snprintf(got + l, sizeof(got) - l, "%s%llu", i ? "x" : "", (unsigned long long)dims[i]);
    }
    CHECK(same, "%s: fixture shape %s, cigl shape %s", path, got, want);
}

static int attr_read(const char *grp, const char *name, hid_t type, void *out)
{
    if (!fixture_ok(grp)) return -1;
    if (H5Lexists(fx, grp, H5P_DEFAULT) <= 0 ||
        H5Aexists_by_name(fx, grp, name, H5P_DEFAULT) <= 0) {
        CHECK(0, "attribute %s@%s missing from %s; regenerate with: %s", grp, name, fx_path,
              REGENERATE);
        return -1;
    }
    hid_t a = H5Aopen_by_name(fx, grp, name, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = H5Aread(a, type, out);
    H5Aclose(a);
    CHECK(st >= 0, "reading attribute %s@%s", grp, name);
    return st >= 0 ? 0 : -1;
}

static int attr_i(const char *grp, const char *name)
{
    int v = 0;
    attr_read(grp, name, H5T_NATIVE_INT, &v);
    return v;
}

static double attr_d(const char *grp, const char *name)
{
    double v = 0;
    attr_read(grp, name, H5T_NATIVE_DOUBLE, &v);
    return v;
}

/* Variable-length string attribute of the root group, copied into out ("" when absent). */
static void attr_s(const char *name, char *out, size_t cap)
{
    out[0] = 0;
    if (fx < 0 || H5Aexists_by_name(fx, "/", name, H5P_DEFAULT) <= 0) return;
    hid_t a = H5Aopen_by_name(fx, "/", name, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    char *s = NULL;
    if (H5Aread(a, t, &s) >= 0 && s) {
        snprintf(out, cap, "%s", s);
        H5free_memory(s);
    }
    H5Tclose(t);
    H5Aclose(a);
}

/* Starts a case on fixture group g: 0 (and one failure saying why) when the file or the group
 * is missing. */
static int case_begin(const char *g)
{
    case_reset();
    if (!fixture_ok(g)) return 0;
    if (H5Lexists(fx, g, H5P_DEFAULT) <= 0) {
        CHECK(0, "group %s missing from %s; regenerate it with: %s", g, fx_path, REGENERATE);
        return 0;
    }
    return 1;
}

/* ---- running layers ----------------------------------------------------------------------- */

static LayerCtx ctx_of(Model *m, int n, int train, size_t workspace_floats)
{
    LayerCtx c = {m->params, m->grads, m->bn_stats, m->workspace,
                  workspace_floats ? workspace_floats : m->workspace_floats, n, train, 1.0f, 0};
    return c;
}

static size_t numel_n(Shape s, int n) { return (size_t)n * shape_numel(s); }

/* Forward and backward of the model's only layer through its ops, with the input gradients
 * in buffers owned here (model_backward gives none for the model input). dx/dx2 start at zero;
 * a second backward must add the same gradient again (layers accumulate into dx) and rewrite
 * the same parameter gradients (they are written, not accumulated). */
static void run_layer(Model *m, const float *x, const float *x2, const float *dy, int n,
                      int train, size_t workspace_floats, float *y, float *dx, float *dx2)
{
    Layer *l = &m->layers[0];
    LayerCtx c = ctx_of(m, n, train, workspace_floats);
    const size_t nx = numel_n(l->x, n);
    memset(dx, 0, sizeof(float) * nx);
    if (dx2) memset(dx2, 0, sizeof(float) * nx);
    memset(m->grads, 0, sizeof(float) * m->n_params);
    l->ops->forward(l, &c, x, x2, y);
    l->ops->backward(l, &c, x, x2, y, dy, dx, dx2);

    float *dx_once = zalloc(nx), *dx2_once = zalloc(nx), *g_once = zalloc(m->n_params);
    memcpy(dx_once, dx, sizeof(float) * nx);
    if (dx2) memcpy(dx2_once, dx2, sizeof(float) * nx);
    memcpy(g_once, m->grads, sizeof(float) * m->n_params);
    for (size_t i = 0; i < m->n_params; i++) m->grads[i] = 1e3f; /* must be overwritten */
    l->ops->backward(l, &c, x, x2, y, dy, dx, dx2);
    size_t bad_dx = 0, bad_g = 0;
    for (size_t i = 0; i < nx; i++) {
        if (fabs(dx[i] - 2.0 * dx_once[i]) > 1e-6 + 1e-5 * fabs(2.0 * dx_once[i])) bad_dx++;
        dx[i] = dx_once[i];
    }
    if (dx2)
        for (size_t i = 0; i < nx; i++) {
            if (fabs(dx2[i] - 2.0 * dx2_once[i]) > 1e-6 + 1e-5 * fabs(2.0 * dx2_once[i])) bad_dx++;
            dx2[i] = dx2_once[i];
        }
    for (size_t i = 0; i < m->n_params; i++)
        if (fabs(m->grads[i] - g_once[i]) > 1e-6 + 1e-5 * fabs(g_once[i])) bad_g++;
    CHECK(bad_dx == 0, "%s: a second backward did not add the same dx again (%zu elements)",
          l->ops->kind_name, bad_dx);
    CHECK(bad_g == 0, "%s: a second backward did not rewrite the same parameter gradients "
          "(%zu elements)", l->ops->kind_name, bad_g);
}

/* Reads parameter `name` of the fixture group into the model at [off, off + len). */
static void load_param(Model *m, const char *grp, const char *name, size_t off, size_t len)
{
    memcpy(m->params + off, rdf(grp, name, len), sizeof(float) * len);
}

/* ---- cases -------------------------------------------------------------------------------- */

static void fixture_file(void)
{
    case_reset();
    CHECK(fx >= 0, "cannot open fixture file %s; regenerate it with: %s (or point "
          "CIGL_FIXTURES at the directory holding torch_layers.h5)", fx_path, REGENERATE);
    char tv[64], script[128];
    attr_s("torch_version", tv, sizeof(tv));
    attr_s("script", script, sizeof(script));
    if (fx >= 0) {
        CHECK(tv[0], "%s: root attribute torch_version missing", fx_path);
        CHECK(strcmp(script, "tests/fixtures/make_fixtures.py") == 0,
              "%s: root attribute script is '%s'", fx_path, script);
    }
    printf("  fixtures %s (torch %s, written by %s)\n", fx_path, tv[0] ? tv : "?",
           script[0] ? script : "?");
    case_end("fixture_file");
}

static void linear(void)
{
    const char *g = "/linear";
    if (!case_begin(g)) {
        case_end(g + 1);
        return;
    }
    const int n = attr_i(g, "n"), in = attr_i(g, "in_features"), out = attr_i(g, "out_features");
    if (n <= 0 || in <= 0 || out <= 0) {
        CHECK(0, "%s: bad geometry", g);
        case_end(g + 1);
        return;
    }
    Model m;
    model_init_empty(&m, "linear", (Shape){in, 1, 1}, out);
    model_add_linear(&m, "fc", -1, out, 1);
    CHECK(model_finalize(&m, n) == 0, "model_finalize");
    Layer *l = &m.layers[0];
    load_param(&m, g, "weight", l->weight_off, l->weight_len);
    load_param(&m, g, "bias", l->bias_off, l->bias_len);
    dims_are(g, "y", 2, n, out);
    float *x = rdf(g, "x", (size_t)n * in), *dy = rdf(g, "dy", (size_t)n * out);
    float *y = zalloc((size_t)n * out), *dx = zalloc((size_t)n * in);
    run_layer(&m, x, NULL, dy, n, 1, 0, y, dx, NULL);
    cmp("y", y, rdf(g, "y", (size_t)n * out), (size_t)n * out, ATOL, RTOL);
    cmp("dx", dx, rdf(g, "dx", (size_t)n * in), (size_t)n * in, ATOL, RTOL);
    cmp("dweight", m.grads + l->weight_off, rdf(g, "dweight", l->weight_len), l->weight_len,
        ATOL, RTOL);
    cmp("dbias", m.grads + l->bias_off, rdf(g, "dbias", l->bias_len), l->bias_len, ATOL, RTOL);
    model_free(&m);
    case_end(g + 1);
}

/* One conv fixture, run with the whole batch in one GEMM chunk and with one sample per chunk. */
static void conv_case(const char *g)
{
    if (!case_begin(g)) {
        case_end(g + 1);
        return;
    }
    const int n = attr_i(g, "n"), c = attr_i(g, "c"), h = attr_i(g, "h"), w = attr_i(g, "w");
    const int oc = attr_i(g, "out_c"), k = attr_i(g, "k"), s = attr_i(g, "stride");
    const int p = attr_i(g, "pad"), bias = attr_i(g, "bias");
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || oc <= 0 || k <= 0 || s <= 0) {
        CHECK(0, "%s: bad geometry", g);
        case_end(g + 1);
        return;
    }
    Model m;
    model_init_empty(&m, "conv", (Shape){c, h, w}, 0);
    model_add_conv(&m, "conv", -1, oc, k, s, p, bias);
    CHECK(model_finalize(&m, n) == 0, "model_finalize");
    Layer *l = &m.layers[0];
    CHECK((l->bias_len != 0) == (bias != 0), "bias presence");
    load_param(&m, g, "weight", l->weight_off, l->weight_len);
    if (bias) load_param(&m, g, "bias", l->bias_off, l->bias_len);
    dims_are(g, "y", 4, n, l->y.c, l->y.h, l->y.w);
    dims_are(g, "weight", 4, oc, c, k, k);
    const size_t nx = numel_n(l->x, n), ny = numel_n(l->y, n);
    float *x = rdf(g, "x", nx), *dy = rdf(g, "dy", ny);
    float *ry = rdf(g, "y", ny), *rdx = rdf(g, "dx", nx);
    float *rdw = rdf(g, "dweight", l->weight_len);
    float *rdb = bias ? rdf(g, "dbias", l->bias_len) : NULL;
    const size_t one_per_chunk = conv_workspace_floats(l, 1, 0);
    CHECK(conv_chunk(l, n, one_per_chunk) == 1, "one-sample workspace");
    for (int pass = 0; pass < 2; pass++) {
        const char *sfx = pass ? "/nb1" : "";
        char name[32];
        float *y = zalloc(ny), *dx = zalloc(nx);
        run_layer(&m, x, NULL, dy, n, 1, pass ? one_per_chunk : 0, y, dx, NULL);
        snprintf(name, sizeof(name), "y%s", sfx);
        cmp(name, y, ry, ny, ATOL, RTOL);
        snprintf(name, sizeof(name), "dx%s", sfx);
        cmp(name, dx, rdx, nx, ATOL, RTOL);
        snprintf(name, sizeof(name), "dweight%s", sfx);
        cmp(name, m.grads + l->weight_off, rdw, l->weight_len, ATOL, RTOL);
        if (bias) {
            snprintf(name, sizeof(name), "dbias%s", sfx);
            cmp(name, m.grads + l->bias_off, rdb, l->bias_len, ATOL, RTOL);
        }
    }
    model_free(&m);
    case_end(g + 1);
}

static void conv_k3s1p1(void) { conv_case("/conv_k3s1p1"); }
static void conv_k5s1p2_nobias(void) { conv_case("/conv_k5s1p2_nobias"); }
static void conv_k3s2p1(void) { conv_case("/conv_k3s2p1"); }
static void conv_k1s2p0(void) { conv_case("/conv_k1s2p0"); }
static void conv_k7s2p3(void) { conv_case("/conv_k7s2p3"); }

static void bn_case(const char *g)
{
    if (!case_begin(g)) {
        case_end(g + 1);
        return;
    }
    const int n = attr_i(g, "n"), c = attr_i(g, "c"), h = attr_i(g, "h"), w = attr_i(g, "w");
    const int train = attr_i(g, "train");
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0) {
        CHECK(0, "%s: bad geometry", g);
        case_end(g + 1);
        return;
    }
    Model m;
    model_init_empty(&m, "bn", (Shape){c, h, w}, 0);
    model_add_batchnorm(&m, "bn", -1);
    CHECK(model_finalize(&m, n) == 0, "model_finalize");
    Layer *l = &m.layers[0];
    CHECK_CLOSE(l->bn_momentum, attr_d(g, "momentum"), 1e-7, 0, "momentum");
    CHECK_CLOSE(l->bn_eps, attr_d(g, "eps"), 1e-10, 1e-6, "eps");
    load_param(&m, g, "weight", l->weight_off, l->weight_len);
    load_param(&m, g, "bias", l->bias_off, l->bias_len);
    float *mean = m.bn_stats + l->stats_off, *var = mean + c;
    const float *m0 = rdf(g, "running_mean_before", c), *v0 = rdf(g, "running_var_before", c);
    if (train) /* the fixture starts from PyTorch's defaults, which model_finalize must set */
        for (int ch = 0; ch < c; ch++)
            CHECK(mean[ch] == m0[ch] && var[ch] == v0[ch], "initial running stats of channel "
                  "%d: %g / %g, expected %g / %g", ch, mean[ch], var[ch], m0[ch], v0[ch]);
    memcpy(mean, m0, sizeof(float) * c);
    memcpy(var, v0, sizeof(float) * c);
    const size_t nx = numel_n(l->x, n);
    dims_are(g, "y", 4, n, c, h, w);
    float *x = rdf(g, "x", nx), *dy = rdf(g, "dy", nx);
    float *y = zalloc(nx), *dx = zalloc(nx);
    run_layer(&m, x, NULL, dy, n, train, 0, y, dx, NULL);
    cmp("y", y, rdf(g, "y", nx), nx, ATOL, RTOL);
    cmp("dx", dx, rdf(g, "dx", nx), nx, ATOL, RTOL);
    cmp("dgamma", m.grads + l->weight_off, rdf(g, "dweight", c), c, ATOL, RTOL);
    cmp("dbeta", m.grads + l->bias_off, rdf(g, "dbias", c), c, ATOL, RTOL);
    cmp("running_mean", mean, rdf(g, "running_mean", c), c, ATOL, RTOL);
    cmp("running_var", var, rdf(g, "running_var", c), c, ATOL, RTOL);
    model_free(&m);
    case_end(g + 1);
}

static void batchnorm_train(void) { bn_case("/batchnorm_train"); }
static void batchnorm_eval(void) { bn_case("/batchnorm_eval"); }

/* Parameter-free layers on an NCHW input: kind selects the model_add_* call. */
static void plain_case(const char *g, LayerKind kind)
{
    if (!case_begin(g)) {
        case_end(g + 1);
        return;
    }
    const int n = attr_i(g, "n"), c = attr_i(g, "c"), h = attr_i(g, "h"), w = attr_i(g, "w");
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0) {
        CHECK(0, "%s: bad geometry", g);
        case_end(g + 1);
        return;
    }
    Model m;
    model_init_empty(&m, "plain", (Shape){c, h, w}, 0);
    switch (kind) {
    case LAYER_RELU: model_add_relu(&m, "relu", -1); break;
    case LAYER_MAXPOOL:
        model_add_maxpool(&m, "pool", -1, attr_i(g, "k"), attr_i(g, "stride"), attr_i(g, "pad"));
        break;
    case LAYER_GLOBAL_AVGPOOL: model_add_global_avgpool(&m, "avgpool", -1); break;
    case LAYER_FLATTEN: model_add_flatten(&m, "flatten", -1); break;
    case LAYER_ADD: model_add_add(&m, "add", -1, -1); break;
    default: CHECK(0, "kind %d", (int)kind); model_free(&m); case_end(g + 1); return;
    }
    CHECK(model_finalize(&m, n) == 0, "model_finalize");
    Layer *l = &m.layers[0];
    if (kind == LAYER_FLATTEN)
        dims_are(g, "y", 2, n, (int)shape_numel(l->y));
    else
        dims_are(g, "y", 4, n, l->y.c, l->y.h, l->y.w);
    const size_t nx = numel_n(l->x, n), ny = numel_n(l->y, n);
    float *x = rdf(g, "x", nx), *dy = rdf(g, "dy", ny);
    float *x2 = kind == LAYER_ADD ? rdf(g, "x2", nx) : NULL;
    float *y = zalloc(ny), *dx = zalloc(nx), *dx2 = kind == LAYER_ADD ? zalloc(nx) : NULL;
    run_layer(&m, x, x2, dy, n, 1, 0, y, dx, dx2);
    cmp("y", y, rdf(g, "y", ny), ny, ATOL, RTOL);
    cmp("dx", dx, rdf(g, "dx", nx), nx, ATOL, RTOL);
    if (dx2) cmp("dx2", dx2, rdf(g, "dx2", nx), nx, ATOL, RTOL);
    model_free(&m);
    case_end(g + 1);
}

static void relu(void) { plain_case("/relu", LAYER_RELU); }
static void maxpool_k2s2p0(void) { plain_case("/maxpool_k2s2p0", LAYER_MAXPOOL); }
static void maxpool_k3s2p1(void) { plain_case("/maxpool_k3s2p1", LAYER_MAXPOOL); }
static void global_avgpool(void) { plain_case("/global_avgpool", LAYER_GLOBAL_AVGPOOL); }
static void flatten(void) { plain_case("/flatten", LAYER_FLATTEN); }
static void residual_add(void) { plain_case("/add", LAYER_ADD); }

/* softmax_xent returns the SUM of per-sample losses and scale * d(sum)/dlogits. */
static void xent_case(const char *g)
{
    if (!case_begin(g)) {
        case_end(g + 1);
        return;
    }
    const int n = attr_i(g, "n"), k = attr_i(g, "classes");
    const double eps = attr_d(g, "label_smoothing");
    if (n <= 0 || k <= 0) {
        CHECK(0, "%s: bad geometry", g);
        case_end(g + 1);
        return;
    }
    const size_t nz = (size_t)n * k;
    float *z = rdf(g, "logits", nz), *rdl = rdf(g, "dlogits", nz), *rloss = rdf(g, "loss", 1);
    int32_t *labels = rdi(g, "labels", n);
    float *dl = zalloc(nz), *dl_scaled = zalloc(nz), *rdl_scaled = zalloc(nz);
    int correct = -1;
    const double loss = softmax_xent(z, labels, n, k, eps, 1.0f, dl, &correct);
    cmp1("loss", loss, rloss[0], ATOL, RTOL);
    cmp("dlogits", dl, rdl, nz, ATOL, RTOL);
    CHECK(correct == attr_i(g, "correct"), "correct: got %d, expected %d", correct,
          attr_i(g, "correct"));
    /* scale = 1 / batch gives the gradient of the mean loss; NULL dlogits keeps the loss */
    const float scale = 1.0f / (float)n;
    const double loss2 = softmax_xent(z, labels, n, k, eps, scale, dl_scaled, NULL);
    for (size_t i = 0; i < nz; i++) rdl_scaled[i] = rdl[i] * scale;
    cmp("dlogits*scale", dl_scaled, rdl_scaled, nz, ATOL, RTOL);
    CHECK(loss2 == loss, "loss depends on scale: %.17g vs %.17g", loss2, loss);
    CHECK(softmax_xent(z, labels, n, k, eps, 1.0f, NULL, NULL) == loss, "loss without dlogits");
    case_end(g + 1);
}

static void xent_ls0(void) { xent_case("/xent_ls0"); }
static void xent_ls01(void) { xent_case("/xent_ls0.1"); }

/* One CIFAR basic block with a projection shortcut, built layer by layer exactly as
 * src/models.c basic_block does (same order and parameter names relative to the block), run
 * through model_forward / model_backward in training mode. The input gradient comes from the
 * backward ops of the layers that read the model input, fed with model_backward's output
 * gradients. */

/* The model input's gradient, summed from the backward hook (see its caller). */
typedef struct {
    Model *m;
    LayerCtx cx;
    const float *x;
    float *dx;
    int readers;
} InputGrad;

static void input_grad_hook(void *ctx, int i)
{
    InputGrad *ig = ctx;
    Layer *l = &ig->m->layers[i];
    if (l->in != -1) return;
    l->ops->backward(l, &ig->cx, ig->x, NULL, ig->m->act[i], ig->m->dact[i], ig->dx, NULL);
    ig->readers++;
}
static void resnet_block(void)
{
    const char *g = "/resnet_block";
    if (!case_begin(g)) {
        case_end(g + 1);
        return;
    }
    const int n = attr_i(g, "n"), c = attr_i(g, "c"), h = attr_i(g, "h"), w = attr_i(g, "w");
    const int oc = attr_i(g, "out_c"), s = attr_i(g, "stride");
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || oc <= 0 || s <= 0) {
        CHECK(0, "%s: bad geometry", g);
        case_end(g + 1);
        return;
    }
    Model m;
    model_init_empty(&m, "block", (Shape){c, h, w}, 0);
    int y = model_add_conv(&m, "conv1", -1, oc, 3, s, 1, 0);
    y = model_add_batchnorm(&m, "bn1", y);
    y = model_add_relu(&m, "relu1", y);
    y = model_add_conv(&m, "conv2", y, oc, 3, 1, 1, 0);
    y = model_add_batchnorm(&m, "bn2", y);
    int sc = model_add_conv(&m, "shortcut.conv", -1, oc, 1, s, 0, 0);
    sc = model_add_batchnorm(&m, "shortcut.bn", sc);
    const int out = model_add_relu(&m, "relu2", model_add_add(&m, "add", y, sc));
    const Shape ys = model_shape(&m, out);
    m.classes = (int)shape_numel(ys); /* model_backward copies n x classes output gradients */
    CHECK(model_finalize(&m, n) == 0, "model_finalize");

    /* every parameter tensor of the block is in the fixture, and nothing else */
    const char *pg = "/resnet_block/params", *gg = "/resnet_block/grads";
    const char *sg = "/resnet_block/stats";
    if (fx >= 0 && H5Lexists(fx, pg, H5P_DEFAULT) > 0) {
        H5G_info_t info;
        hid_t gp = H5Gopen2(fx, pg, H5P_DEFAULT);
        H5Gget_info(gp, &info);
        H5Gclose(gp);
        CHECK((int)info.nlinks == m.n_tensors, "fixture has %d parameter tensors, cigl %d",
              (int)info.nlinks, m.n_tensors);
    }
    for (int t = 0; t < m.n_tensors; t++) {
        const ParamTensor *pt = &m.tensors[t];
        load_param(&m, pg, pt->name, pt->off, pt->len);
        if (pt->ndim == 4)
            dims_are(pg, pt->name, 4, pt->shape[0], pt->shape[1],
                     pt->shape[2], pt->shape[3]);
    }
    dims_are(g, "y", 4, n, ys.c, ys.h, ys.w);
    const size_t nx = numel_n(m.input, n), ny = numel_n(ys, n);
    float *x = rdf(g, "x", nx), *dy = rdf(g, "dy", ny);
    const float *yy = model_forward(&m, m.params, x, n, 1);
    cmp("y", yy, rdf(g, "y", ny), ny, BLOCK_ATOL, BLOCK_RTOL);
    /* cigl never computes the model input's gradient; each layer reading the input computes
     * its share from the hook right after its own backward, while its output gradient is
     * still live (gradient buffers are reused once consumed, model.h) */
    float *dx = zalloc(nx), *scratch = zalloc(m.n_params);
    InputGrad ig = {&m, ctx_of(&m, n, 1, 0), x, dx, 0};
    ig.cx.grads = scratch; /* parameter gradients already in m.grads */
    m.backward_hook = input_grad_hook;
    m.backward_hook_ctx = &ig;
    model_backward(&m, m.params, x, dy, n);
    m.backward_hook = NULL;
    CHECK(ig.readers == 2, "%d layers read the block input, expected 2", ig.readers);
    cmp("dx", dx, rdf(g, "dx", nx), nx, BLOCK_ATOL, BLOCK_RTOL);

    for (int t = 0; t < m.n_tensors; t++) {
        const ParamTensor *pt = &m.tensors[t];
        char what[64];
        snprintf(what, sizeof(what), "d%s", pt->name);
        cmp(what, m.grads + pt->off, rdf(gg, pt->name, pt->len), pt->len,
            BLOCK_ATOL, BLOCK_RTOL);
    }
    for (int i = 0; i < m.n_layers; i++) {
        const Layer *l = &m.layers[i];
        if (l->kind != LAYER_BATCHNORM) continue;
        char name[64];
        const int ch = l->x.c;
        snprintf(name, sizeof(name), "%s.running_mean", l->name);
        cmp(name, m.bn_stats + l->stats_off, rdf(sg, name, ch), ch, BLOCK_ATOL, BLOCK_RTOL);
        snprintf(name, sizeof(name), "%s.running_var", l->name);
        cmp(name, m.bn_stats + l->stats_off + ch, rdf(sg, name, ch), ch, BLOCK_ATOL, BLOCK_RTOL);
    }
    model_free(&m);
    case_end(g + 1);
}

static void sgd_nesterov(void)
{
    const char *g = "/sgd";
    if (!case_begin(g)) {
        case_end(g + 1);
        return;
    }
    const int in = attr_i(g, "in_features"), out = attr_i(g, "out_features");
    const int n = attr_i(g, "n"), steps = attr_i(g, "steps");
    const float lr = (float)attr_d(g, "lr"), momentum = (float)attr_d(g, "momentum");
    const float wd = (float)attr_d(g, "weight_decay");
    const int nesterov = attr_i(g, "nesterov");
    CHECK(attr_d(g, "bias_weight_decay") == 0, "the fixture decays biases");
    if (in <= 0 || out <= 0 || n <= 0 || steps <= 0) {
        CHECK(0, "%s: bad geometry", g);
        case_end(g + 1);
        return;
    }
    Model m;
    model_init_empty(&m, "sgd", (Shape){in, 1, 1}, out);
    model_add_linear(&m, "fc", -1, out, 1);
    CHECK(model_finalize(&m, n) == 0, "model_finalize");
    Layer *l = &m.layers[0];
    load_param(&m, g, "weight0", l->weight_off, l->weight_len);
    load_param(&m, g, "bias0", l->bias_off, l->bias_len);
    /* weight decay on conv/linear weights only, as the authors' code (sgd_init's default) */
    Sgd opt;
    CHECK(sgd_init(&opt, &m, momentum, wd, nesterov, 0) == 0, "sgd_init");
    float *dlogits = zalloc((size_t)n * out);
    for (int s = 1; s <= steps; s++) {
        char sg[32], what[48];
        snprintf(sg, sizeof(sg), "%s/step%d", g, s);
        float *x = rdf(sg, "x", (size_t)n * in);
        int32_t *labels = rdi(sg, "labels", n);
        const float *logits = model_forward(&m, m.params, x, n, 1);
        const double loss =
            softmax_xent(logits, labels, n, out, 0.0, 1.0f / (float)n, dlogits, NULL) / n;
        model_backward(&m, m.params, x, dlogits, n);
        snprintf(what, sizeof(what), "loss%d", s);
        cmp1(what, loss, rdf(sg, "loss", 1)[0], ATOL, RTOL);
        snprintf(what, sizeof(what), "dweight%d", s);
        cmp(what, m.grads + l->weight_off, rdf(sg, "dweight", l->weight_len), l->weight_len,
            ATOL, RTOL);
        snprintf(what, sizeof(what), "dbias%d", s);
        cmp(what, m.grads + l->bias_off, rdf(sg, "dbias", l->bias_len), l->bias_len, ATOL, RTOL);
        sgd_step(&opt, m.params, m.grads, m.n_params, lr, NULL);
        snprintf(what, sizeof(what), "weight%d", s);
        cmp(what, m.params + l->weight_off, rdf(sg, "weight", l->weight_len), l->weight_len, ATOL,
            RTOL);
        snprintf(what, sizeof(what), "bias%d", s);
        cmp(what, m.params + l->bias_off, rdf(sg, "bias", l->bias_len), l->bias_len, ATOL, RTOL);
    }
    sgd_free(&opt);
    model_free(&m);
    case_end(g + 1);
}

/* The conv fixtures and the resnet block again with dense convolutions on oneDNN
 * (--conv-backend onednn), against the same PyTorch values and tolerances. */
static void conv_onednn(void)
{
    if (conv_backend_set(CONV_BACKEND_ONEDNN)) {
        printf("  built without oneDNN (ONEDNN=0): nothing to check\n");
        return;
    }
    conv_k3s1p1();
    conv_k5s1p2_nobias();
    conv_k3s2p1();
    conv_k1s2p0();
    conv_k7s2p3();
    resnet_block();
    conv_backend_set(CONV_BACKEND_OWN);
}

int main(void)
{
    const char *dir = getenv("CIGL_FIXTURES");
    snprintf(fx_path, sizeof(fx_path), "%s/torch_layers.h5",
             dir && dir[0] ? dir : "tests/fixtures");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    fx = H5Fopen(fx_path, H5F_ACC_RDONLY, H5P_DEFAULT);

    RUN(fixture_file);
    RUN(linear);
    RUN(conv_k3s1p1);
    RUN(conv_k5s1p2_nobias);
    RUN(conv_k3s2p1);
    RUN(conv_k1s2p0);
    RUN(conv_k7s2p3);
    RUN(batchnorm_train);
    RUN(batchnorm_eval);
    RUN(relu);
    RUN(maxpool_k2s2p0);
    RUN(maxpool_k3s2p1);
    RUN(global_avgpool);
    RUN(flatten);
    RUN(residual_add);
    RUN(xent_ls0);
    RUN(xent_ls01);
    RUN(resnet_block);
    RUN(sgd_nesterov);
    RUN(conv_onednn);

    if (fx >= 0) H5Fclose(fx);
    return CHECK_SUMMARY();
}
