/* Sparse-training methods: invariants after every step of every method over several models and
 * sparsities, the random mask bit for bit, averaging by hand, BN recomputation against an
 * independent computation, and option validation. */
#include "check.h"
#include "method_test.h"
#include "cigl/loss.h"
#include "cigl/method.h"
#include "cigl/rng.h"
#include "cigl/sparse.h"
#include "cigl/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Counts active entries of every prunable tensor. */
static void active_counts(const MethodState *s, const Model *m, long *out)
{
    int l = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        if (!m->tensors[t].prunable) continue;
        long a = 0;
        for (size_t i = m->tensors[t].off; i < m->tensors[t].off + m->tensors[t].len; i++)
            a += s->mask[i];
        out[l++] = a;
    }
}

/* Runs STEPS steps of `method` on `model`, checking the invariants after each one. */
static void check_method_invariants(const char *method, const char *model, Shape in,
                                    double sparsity)
{
    Model m;
    if (model_build(&m, model, in, 5, BATCH, 3) != 0) {
        CHECK(0, "model_build %s", model);
        return;
    }
    Config c = method_test_config(method, sparsity);
    Sgd opt;
    sgd_init(&opt, &m, 0.9, 5e-4, 1, 0);
    MethodState s;
    CHECK(method_init(&s, &c, &m, STEPS, 6) == 0, "method_init");
    const size_t n = m.n_params, numel = shape_numel(in);
    float *x = malloc(sizeof(float) * numel * BATCH), *dl = malloc(sizeof(float) * 5 * BATCH);
    int32_t y[BATCH];
    float *w0 = malloc(sizeof(float) * n), *v0 = malloc(sizeof(float) * n);
    uint8_t *mask0 = malloc(n), *zdropped = calloc(n, 1), *came_back = calloc(n, 1);
    uint8_t *grown = calloc(n, 1);
    long *counts = calloc((size_t)m.n_tensors, sizeof(long)), *now = calloc((size_t)m.n_tensors, sizeof(long));
    active_counts(&s, &m, counts);
    int bad_inactive = 0, bad_count = 0, bad_state = 0, bad_new = 0, bad_frozen = 0;
    int updates = 0, late_changes = 0;
    for (long step = 0; step < STEPS; step++) {
        method_test_batch(x, y, numel, 5, (uint64_t)step);
        memcpy(w0, m.params, sizeof(float) * n);
        memcpy(v0, opt.velocity, sizeof(float) * n);
        memcpy(mask0, s.mask, n);
        int correct;
        const double loss = method_train_step(&s, &m, &opt, x, y, BATCH, 1.0f / BATCH, 0.05,
                                              NULL, step, dl, &correct);
        CHECK(isfinite(loss), "%s/%s: loss not finite at step %ld", method, model, step);
        const int updated = method_updates_at(&s, step);
        updates += updated;
        if (step + 1 >= s.t_end && memcmp(mask0, s.mask, n)) late_changes++;
        active_counts(&s, &m, now);
        for (int l = 0; l < s.n_prunable; l++) bad_count += now[l] != counts[l];
        for (int t = 0; t < m.n_tensors; t++) {
            const ParamTensor *pt = &m.tensors[t];
            if (!pt->prunable) continue;
            for (size_t i = pt->off; i < pt->off + pt->len; i++) {
                if (!s.mask[i]) {
                    bad_inactive += m.params[i] != 0.0f;
                    bad_state += opt.velocity[i] != 0.0f;
                } else if (!mask0[i]) { /* newly grown: weight 0, state 0 */
                    bad_new += m.params[i] != 0.0f || opt.velocity[i] != 0.0f;
                    grown[i] = 1;
                }
                /* dropped by the random mask this step (and untouched by a mask update):
                 * weight and state exactly unchanged */
                if (s.weff && strcmp(method, "cigl") == 0 && mask0[i] && s.mask[i] &&
                    !s.active[i]) {
                    bad_frozen += m.params[i] != w0[i] || opt.velocity[i] != v0[i];
                    zdropped[i] = 1;
                } else if (zdropped[i] && s.active[i]) {
                    came_back[i] = 1;
                }
            }
        }
    }
    CHECK(!bad_inactive, "%s/%s/%.2f: %d inactive weights not 0", method, model, sparsity, bad_inactive);
    CHECK(!bad_count, "%s/%s/%.2f: active counts changed %d times", method, model, sparsity, bad_count);
    CHECK(!bad_state, "%s/%s/%.2f: %d inactive entries with momentum", method, model, sparsity, bad_state);
    CHECK(!bad_new, "%s/%s/%.2f: %d new entries not starting at 0", method, model, sparsity, bad_new);
    CHECK(!bad_frozen, "%s/%s/%.2f: %d Z-dropped weights moved", method, model, sparsity, bad_frozen);
    CHECK(!late_changes, "%s/%s: masks changed %d times after --update-end", method, model, late_changes);
    const int expect_updates = s.ops->grow_score ? 4 : 0; /* done = 3, 6, 9, 12 < t_end = 14 */
    CHECK(updates == expect_updates && s.updates_done == expect_updates,
          "%s: %d mask updates, expected %d", method, updates, expect_updates);
    if (s.ops->grow_score) { /* grown weights learn (weight dropout once left them at 0) */
        size_t still = 0, moved = 0;
        for (size_t i = 0; i < n; i++) {
            still += grown[i] && s.mask[i];
            moved += grown[i] && s.mask[i] && m.params[i] != 0.0f;
        }
        CHECK(still > 0 && moved > still * 3 / 4, "%s/%s/%.2f: %zu of %zu grown weights moved",
              method, model, sparsity, moved, still);
    }
    if (!strcmp(method, "cigl")) {
        size_t dropped = 0, back = 0;
        for (size_t i = 0; i < n; i++) { dropped += zdropped[i]; back += came_back[i]; }
        CHECK(dropped > 0 && back > dropped / 2,
              "%s: %zu weights dropped by Z, only %zu took part again", model, dropped, back);
        CHECK(s.n_snapshots == 4, "cigl snapshots: %ld (expected 4: steps 18, 20, 22, 24)",
              s.n_snapshots);
    }
    if (!strcmp(method, "dense")) {
        size_t zeros = 0;
        for (size_t i = 0; i < n; i++) zeros += !s.mask[i];
        CHECK(zeros == 0, "dense has %zu masked weights", zeros);
    }
    free(x); free(dl); free(w0); free(v0); free(mask0); free(zdropped); free(came_back);
    free(grown); free(counts); free(now);
    method_free(&s);
    sgd_free(&opt);
    model_free(&m);
}

static void invariants_every_method(void)
{
    int n = 0;
    for (const MethodOps *o = method_table; o->name; o++, n++) {
        check_method_invariants(o->name, "mlp", (Shape){1, 6, 6}, 0.9);
        check_method_invariants(o->name, "mlp", (Shape){1, 6, 6}, 0.5);
        check_method_invariants(o->name, "lenet5", (Shape){1, 12, 12}, 0.8);
        check_method_invariants(o->name, "resnet20", (Shape){2, 6, 6}, 0.95);
    }
    CHECK(n >= 7, "the method table lists %d methods", n);
}

/* Z_i = 1 iff (double)x * 2^-32 < keep with x from Philox(ctr = (i/4, t lo, t hi, 1),
 * key = (seed lo, seed hi)), word i % 4: recomputed here from the raw generator. */
static void check_random_mask(int odd)
{
    Model m;
    if (odd) { /* tensors at offsets that are not multiples of 4; one 3 weights longer than
                * a chunk of 1024 Philox blocks */
        model_init_empty(&m, "odd", (Shape){4099, 1, 1}, 3);
        int x = model_add_relu(&m, "r1", model_add_linear(&m, "fc1", -1, 1, 1));
        x = model_add_relu(&m, "r2", model_add_linear(&m, "fc2", x, 65, 1));
        model_add_linear(&m, "fc3", x, 3, 1);
        CHECK(model_finalize(&m, BATCH) == 0, "odd model");
    } else {
        model_build(&m, "mlp", (Shape){1, 6, 6}, 5, BATCH, 1);
    }
    Config c = method_test_config("cigl", 0.5);
    c.seed = 0x1234567890abcdefLL;
    MethodState s;
    method_init(&s, &c, &m, 400, 100);
    long kept = 0, trials = 0, mismatches = 0, weff_bad = 0;
    const long steps[] = {0, 1, 7, 399, 0x100000001L};
    for (int k = 0; k < 5; k++) {
        const uint64_t t = (uint64_t)steps[k];
        if (k == 3) { /* a mask update between draws: positions leave and join the mask */
            method_forget_draws(&s); /* the helper reads the mask */
            for (int ti = 0; ti < m.n_tensors; ti++) {
                const ParamTensor *pt = &m.tensors[ti];
                for (size_t i = pt->off; pt->prunable && i < pt->off + pt->len; i += 3) {
                    s.mask[i] = !s.mask[i];
                    if (!s.mask[i]) m.params[i] = 0.0f;
                }
            }
            s.updates_done++;
        }
        const float *w = method_before_forward(&s, &m, (long)t);
        for (int ti = 0; ti < m.n_tensors; ti++) {
            const ParamTensor *pt = &m.tensors[ti];
            for (size_t i = pt->off; i < pt->off + pt->len; i++) {
                if (!pt->prunable) {
                    mismatches += !s.active[i];
                    weff_bad += w[i] != m.params[i];
                    continue;
                }
                uint32_t out[4];
                const uint32_t ctr[4] = {(uint32_t)(i / 4), (uint32_t)t, (uint32_t)(t >> 32), 1};
                const uint32_t key[2] = {(uint32_t)c.seed, (uint32_t)((uint64_t)c.seed >> 32)};
                philox4x32_10(ctr, key, out);
                const int z = (double)out[i % 4] * 0x1p-32 < 1.0 - c.random_mask_rate;
                const int expect = s.mask[i] && z;
                mismatches += s.active[i] != expect;
                weff_bad += w[i] != (expect ? m.params[i] * (float)(1.0 / (1.0 - c.random_mask_rate)) : 0.0f);
                if (s.mask[i]) { kept += z; trials++; }
            }
        }
    }
    CHECK(mismatches == 0, "%ld random-mask entries differ from the definition", mismatches);
    CHECK(weff_bad == 0, "%ld effective weights differ", weff_bad);
    const double p = 1.0 - c.random_mask_rate, rate = (double)kept / trials;
    const double sigma = sqrt(p * (1 - p) / trials);
    printf("  keep rate %.5f over %ld draws (expected %.2f, 5 sigma = %.5f)\n", rate, trials, p, 5 * sigma);
    CHECK(fabs(rate - p) < 5 * sigma, "keep rate %.5f vs %.2f", rate, p);
    method_free(&s);
    model_free(&m);
}

static void random_mask_bit_for_bit(void)
{
    check_random_mask(0);
    check_random_mask(1);
}

/* The output model equals the running mean of (W after the step) x Z / keep, computed here. */
static void averaging_matches_hand_computation(void)
{
    Model m;
    model_build(&m, "mlp", (Shape){1, 6, 6}, 5, BATCH, 2);
    Config c = method_test_config("cigl", 0.8);
    Sgd opt;
    sgd_init(&opt, &m, 0.9, 5e-4, 1, 0);
    MethodState s;
    method_init(&s, &c, &m, STEPS, 6);
    const size_t n = m.n_params;
    double *mean = calloc(n, sizeof(double));
    float x[36 * BATCH], dl[5 * BATCH];
    int32_t y[BATCH];
    int taken = 0;
    for (long step = 0; step < STEPS; step++) {
        method_test_batch(x, y, 36, 5, (uint64_t)step);
        int correct;
        method_train_step(&s, &m, &opt, x, y, BATCH, 1.0f / BATCH, 0.05, NULL, step, dl, &correct);
        if ((step + 1) >= (long)ceil(0.7 * STEPS) && (step + 1) % 2 == 0) {
            for (int ti = 0; ti < m.n_tensors; ti++) {
                const ParamTensor *pt = &m.tensors[ti];
                const double scale = pt->prunable ? 1.0 / (1.0 - c.random_mask_rate) : 1.0;
                for (size_t i = pt->off; i < pt->off + pt->len; i++) {
                    const double we = s.active[i] ? (double)(float)(m.params[i] * (float)scale) : 0.0;
                    mean[i] = (taken * mean[i] + we) / (taken + 1);
                }
            }
            taken++;
        }
    }
    CHECK(taken == 4 && s.n_snapshots == 4, "snapshots %d / %ld", taken, s.n_snapshots);
    CHECK(method_finalize(&s, &m) == 0, "finalize");
    double worst = 0;
    size_t outside = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs(m.params[i] - mean[i]) / (1e-6 + fabs(mean[i])));
        outside += !s.mask[i] && m.params[i] != 0.0f;
    }
    printf("  averaged weights vs hand running mean: max relative difference %.3g\n", worst);
    CHECK(worst < 1e-5, "averaged weights differ by %.3g", worst);
    CHECK(outside == 0, "%zu averaged weights outside the mask", outside);
    free(mean);
    method_free(&s);
    sgd_free(&opt);
    model_free(&m);
}

/* recompute_bn_statistics against the batch-size-weighted mean of every batch's mean and
 * unbiased variance of each BN layer's input, computed here in double (train-mode
 * activations do not depend on the running statistics). */
static void bn_recompute_matches_independent(void)
{
    Model m;
    const Shape in = {2, 6, 6};
    model_build(&m, "resnet20", in, 3, 16, 4);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] += 0.05f * (float)rng_normal(5, RNG_INIT, 9, i);
    enum { N = 37 };
    Dataset ds;
    memset(&ds, 0, sizeof(ds));
    ds.c = 2; ds.h = 6; ds.w = 6; ds.classes = 3;
    for (int ch = 0; ch < 2; ch++) { ds.mean[ch] = 0.4; ds.std[ch] = 0.3; }
    ds.train.n = N;
    ds.train.images = malloc(N * 72);
    ds.train.labels = malloc(sizeof(int32_t) * N);
    for (int i = 0; i < N * 72; i++) ds.train.images[i] = (uint8_t)rng_below(3, RNG_AUGMENT, 0, i, 256);
    for (int i = 0; i < N; i++) ds.train.labels[i] = i % 3;
    uint32_t idx[N];
    for (int i = 0; i < N; i++) idx[i] = (uint32_t)(N - 1 - i);
    float x[16 * 72];
    int32_t y[16];
    const int batch = 16;
    recompute_bn_statistics(&m, m.params, &ds, &ds.train, idx, N, batch, comm_single(), x, y);
    float *got = malloc(sizeof(float) * m.n_bn_stats);
    memcpy(got, m.bn_stats, sizeof(float) * m.n_bn_stats);
    double *want = calloc(m.n_bn_stats, sizeof(double));
    for (int b0 = 0; b0 < N; b0 += batch) {
        const int nb = N - b0 < batch ? N - b0 : batch;
        split_gather(&ds, &ds.train, idx + b0, nb, NULL, x, y);
        model_forward(&m, m.params, x, nb, 1);
        for (int li = 0; li < m.n_layers; li++) {
            const Layer *l = &m.layers[li];
            if (l->kind != LAYER_BATCHNORM) continue;
            const float *a = m.act[l->in];
            const size_t hw = (size_t)l->x.h * l->x.w, cnt = (size_t)nb * hw;
            for (int ch = 0; ch < l->x.c; ch++) {
                double s1 = 0, s2 = 0;
                for (int i = 0; i < nb; i++)
                    for (size_t j = 0; j < hw; j++) s1 += a[((size_t)i * l->x.c + ch) * hw + j];
                const double mu = s1 / cnt;
                for (int i = 0; i < nb; i++)
                    for (size_t j = 0; j < hw; j++) {
                        const double d = a[((size_t)i * l->x.c + ch) * hw + j] - mu;
                        s2 += d * d;
                    }
                want[l->stats_off + ch] += mu * nb / N;
                want[l->stats_off + l->x.c + ch] += s2 / (cnt - 1) * nb / N;
            }
        }
    }
    double worst = 0;
    for (size_t i = 0; i < m.n_bn_stats; i++)
        worst = fmax(worst, fabs(got[i] - want[i]) / (1e-6 + fabs(want[i])));
    printf("  BN statistics vs independent weighted average: max relative difference %.3g\n", worst);
    CHECK(worst < 1e-4, "BN recompute differs by %.3g", worst);
    free(got); free(want);
    free(ds.train.images); free(ds.train.labels);
    model_free(&m);
}

/* Mixup's loss is the lambda-mixture of the two cross-entropies, and so is its gradient. */
static void mixup_loss_is_the_mixture(void)
{
    const float logits[6] = {0.3f, -1.2f, 2.0f, 0.5f, 0.5f, -0.7f};
    const int32_t y[2] = {2, 0}, y2[2] = {1, 0};
    const double lambda = 0.3;
    float d_mix[6], d_a[6], d_b[6];
    const double mix = softmax_xent_mix(logits, y, y2, lambda, 2, 3, 0.1, 0.5f, d_mix, NULL);
    const double a = softmax_xent(logits, y, 2, 3, 0.1, 0.5f, d_a, NULL);
    const double b = softmax_xent(logits, y2, 2, 3, 0.1, 0.5f, d_b, NULL);
    CHECK_CLOSE(mix, lambda * a + (1 - lambda) * b, 1e-12, 1e-12, "mixed loss");
    for (int i = 0; i < 6; i++)
        CHECK_CLOSE(d_mix[i], lambda * d_a[i] + (1 - lambda) * d_b[i], 1e-7, 1e-6, "mixed grad");
}

static int validate_args(const char *const *args, int n, long total_steps, long spe)
{
    Config c;
    config_defaults(&c);
    int rc = config_parse_args(&c, n, (char **)args);
    return rc ? rc : method_validate(&c, total_steps, spe);
}

/* Training with the next step's mask drawn on the helper thread (--draw-ahead on) gives the
 * same weights, masks and step masks bit for bit as drawing on this thread (off), on the dense
 * path and on the sparse kernels, across mask updates (which discard the early draw). */
static void train_for_draw_ahead(const char *method, const char *model, Shape in,
                                 const char *ahead, KernelsMode kernels, float *w_out,
                                 uint8_t *act_out, int *helper)
{
    Model m;
    CHECK(model_build(&m, model, in, 5, BATCH, 3) == 0, "model_build %s", model);
    Config c = method_test_config(method, 0.8);
    snprintf(c.draw_ahead, sizeof c.draw_ahead, "%s", ahead);
    Sgd opt;
    sgd_init(&opt, &m, 0.9, 5e-4, 1, 0);
    MethodState s;
    CHECK(method_init(&s, &c, &m, STEPS, 6) == 0, "method_init");
    CHECK(sparse_model_setup(&m, kernels, s.mask) == 0, "kernels");
    const size_t numel = shape_numel(in);
    float *x = malloc(sizeof(float) * numel * BATCH), *dl = malloc(sizeof(float) * 5 * BATCH);
    int32_t y[BATCH];
    for (long step = 0; step < STEPS; step++) {
        method_test_batch(x, y, numel, 5, (uint64_t)step);
        int correct;
        method_train_step(&s, &m, &opt, x, y, BATCH, 1.0f / BATCH, 0.05, NULL, step, dl,
                          &correct);
    }
    *helper = method_draws_ahead(&s);
    memcpy(w_out, m.params, sizeof(float) * m.n_params);
    memcpy(act_out, s.active, m.n_params);
    free(x);
    free(dl);
    method_free(&s);
    sgd_free(&opt);
    model_free(&m);
}

static void draw_ahead_same_bits(void)
{
    const struct { const char *method, *model; Shape in; KernelsMode k; } runs[] = {
        {"cigl", "mlp", {1, 6, 6}, KERNELS_DENSE},
        {"cigl", "mlp", {1, 6, 6}, KERNELS_SPARSE},
        {"cigl", "lenet5", {1, 12, 12}, KERNELS_SPARSE},
        {"rigl-wdp", "mlp", {1, 6, 6}, KERNELS_SPARSE},
    };
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        Model m;
        CHECK(model_build(&m, runs[r].model, runs[r].in, 5, BATCH, 3) == 0, "build");
        const size_t n = m.n_params;
        model_free(&m);
        float *w_on = malloc(sizeof(float) * n), *w_off = malloc(sizeof(float) * n);
        uint8_t *a_on = malloc(n), *a_off = malloc(n);
        int helper_on, helper_off;
        train_for_draw_ahead(runs[r].method, runs[r].model, runs[r].in, "on", runs[r].k, w_on,
                             a_on, &helper_on);
        train_for_draw_ahead(runs[r].method, runs[r].model, runs[r].in, "off", runs[r].k, w_off,
                             a_off, &helper_off);
        CHECK(helper_on && !helper_off, "%s: helper thread on %d, off %d", runs[r].method,
              helper_on, helper_off);
        CHECK(!memcmp(w_on, w_off, sizeof(float) * n), "%s %s kernels %d: weights differ with "
              "the draw ahead", runs[r].method, runs[r].model, (int)runs[r].k);
        CHECK(!memcmp(a_on, a_off, n), "%s %s: step masks differ with the draw ahead",
              runs[r].method, runs[r].model);
        free(w_on); free(w_off); free(a_on); free(a_off);
    }
}

/* Before every forward pass the effective weights are exactly W / keep where the step mask
 * keeps a prunable weight, 0 elsewhere, and W for the other parameters, though the draw only
 * patches what the optimiser's pass left (method_draw.c): over steps with mask updates, for
 * CigL and weight dropout, on a model whose largest layer splits the draw over threads. */
static void effective_weights_follow_w(void)
{
    const char *methods[] = {"cigl", "rigl-wdp"};
    for (int mi = 0; mi < 2; mi++) {
        Model m;
        CHECK(model_build(&m, "mlp", (Shape){1, 28, 28}, 5, BATCH, 3) == 0, "build");
        Config c = method_test_config(methods[mi], 0.8);
        Sgd opt;
        sgd_init(&opt, &m, 0.9, 5e-4, 1, 0);
        MethodState s;
        CHECK(method_init(&s, &c, &m, STEPS, 6) == 0, "method_init");
        float *x = malloc(sizeof(float) * 784 * BATCH), *dl = malloc(sizeof(float) * 5 * BATCH);
        int32_t y[BATCH];
        long bad = 0, dropped = 0;
        for (long step = 0; step < STEPS; step++) {
            method_test_batch(x, y, 784, 5, (uint64_t)step);
            const float *w = method_before_forward(&s, &m, step);
            for (int ti = 0; ti < m.n_tensors; ti++) {
                const ParamTensor *t = &m.tensors[ti];
                for (size_t i = t->off; i < t->off + t->len; i++) {
                    const float want = !t->prunable ? m.params[i]
                                       : s.active[i] ? m.params[i] * s.inv_keep : 0.0f;
                    bad += memcmp(&w[i], &want, sizeof want) != 0;
                    dropped += t->prunable && s.mask[i] && !s.active[i];
                }
            }
            int correct;
            method_forward_backward(&s, &m, w, x, y, BATCH, 1.0f / BATCH, NULL, dl, &correct);
            method_apply_step(&s, &m, &opt, 0.05, step);
        }
        CHECK(bad == 0 && dropped > 0, "%s: %ld effective weights differ from W / keep (%ld drops)",
              methods[mi], bad, dropped);
        free(x);
        free(dl);
        method_free(&s);
        sgd_free(&opt);
        model_free(&m);
    }
}

static void validation_refuses_bad_options(void)
{
    const char *ok[] = {"--method", "cigl", "--average-every", "10"};
    CHECK(validate_args(ok, 4, 400, 100) == 0, "valid cigl options refused");
    const char *one_snapshot[] = {"--method", "cigl", "--average-start", "0.9"};
    CHECK(validate_args(one_snapshot, 4, 400, 100) == 2, "a single snapshot accepted");
    const char *before_end[] = {"--method", "cigl", "--average-start", "0.5", "--update-end", "0.75"};
    CHECK(validate_args(before_end, 6, 400, 10) == 2, "averaging before update end accepted");
    const char *dropout_on_cigl[] = {"--method", "cigl", "--dropout-rate", "0.1"};
    CHECK(validate_args(dropout_on_cigl, 4, 400, 10) == 2, "--dropout-rate accepted for cigl");
    const char *sparsity_on_dense[] = {"--method", "dense", "--sparsity", "0.5"};
    CHECK(validate_args(sparsity_on_dense, 4, 400, 10) == 2, "--sparsity accepted for dense");
    const char *interval_on_static[] = {"--method", "static", "--update-interval", "5"};
    CHECK(validate_args(interval_on_static, 4, 400, 10) == 2, "--update-interval for static");
    const char *mc_on_wdp[] = {"--method", "rigl-wdp", "--mc-samples", "5"};
    CHECK(validate_args(mc_on_wdp, 4, 400, 10) == 2, "--mc-samples for rigl-wdp");
    const char *unknown[] = {"--method", "lottery"};
    CHECK(validate_args(unknown, 2, 400, 10) == 2, "unknown method accepted");
    const char *full[] = {"--method", "rigl", "--sparsity", "1"};
    CHECK(validate_args(full, 4, 400, 10) == 2, "--sparsity 1 accepted");
    const char *negative[] = {"--method", "cigl", "--random-mask-rate", "-0.1"};
    CHECK(validate_args(negative, 4, 400, 10) == 2, "negative rate accepted");
    const char *ahead_rigl[] = {"--method", "rigl", "--draw-ahead", "on"};
    CHECK(validate_args(ahead_rigl, 4, 400, 10) == 2, "--draw-ahead accepted for rigl");
    const char *ahead_bad[] = {"--method", "cigl", "--average-every", "10", "--draw-ahead", "yes"};
    CHECK(validate_args(ahead_bad, 6, 400, 100) == 2, "--draw-ahead yes accepted");
    const char *dist[] = {"--method", "rigl", "--distribution", "gaussian"};
    CHECK(validate_args(dist, 4, 400, 10) == 2, "unknown distribution accepted");
}

/* The method table drives the "applies to" lists and the help text: each group names exactly
 * its methods, in table order, and no help line keeps a {group} placeholder or a method list
 * written by hand. */
static void method_table_drives_text(void)
{
    char buf[256];
    CHECK(!strcmp(method_group_list(METHODS_DROPOUT, ", ", " and ", buf, sizeof buf),
                  "rigl-wdp and rigl-mcdp"), "dropout group '%s'", buf);
    CHECK(!strcmp(method_group_list(METHODS_UPDATING, ", ", " and ", buf, sizeof buf),
                  "set, rigl, rigl-wdp, rigl-mcdp and cigl"), "updating group '%s'", buf);
    CHECK(!strcmp(method_group_list(METHODS_AVERAGING, ", ", " and ", buf, sizeof buf), "cigl"),
          "averaging group '%s'", buf);
    CHECK(method_group_parse("test-dropout", 12) == METHODS_TEST_DROPOUT &&
          method_group_parse("nope", 4) == -1, "group names");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    config_print_help(f, train_options);
    fclose(f);
    CHECK(strstr(text, "dense | static | set | rigl | rigl-wdp | rigl-mcdp | cigl") != NULL,
          "--method's help lists the table");
    CHECK(strstr(text, "steps between mask updates (set, rigl, rigl-wdp, rigl-mcdp, cigl)") !=
          NULL, "--update-interval's help lists the updating methods");
    CHECK(strchr(text, '{') == NULL, "a placeholder left in the help: %s", strchr(text, '{'));
    free(text);
}

int main(void)
{
    RUN(invariants_every_method);
    RUN(random_mask_bit_for_bit);
    RUN(averaging_matches_hand_computation);
    RUN(bn_recompute_matches_independent);
    RUN(draw_ahead_same_bits);
    RUN(effective_weights_follow_w);
    RUN(validation_refuses_bad_options);
    RUN(method_table_drives_text);
    RUN(mixup_loss_is_the_mixture);
    return CHECK_SUMMARY();
}
