/* The mechanisms where cigl and the CigL authors' code differ (docs/method.md, "Authors'
 * mechanics"), each pinned by a small hand-computed case: the drop ranked by the forward
 * weights, a regrown weight at 0, the held SGD step, dense layers at updates with the ceil
 * count, the skipped update step reusing its random mask, the epoch-based snapshot window, and
 * how --mechanics resolves around options given on their own. */
#include "check.h"
#include "method_test.h"
#include "cigl/config.h"
#include "cigl/json_read.h"
#include "cigl/method.h"
#include "cigl/rng.h"
#include "cigl/sparsity.h"
#include "cigl/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Drop by |stored W| or by the forward weights: six active weights, one dropped (k = 1). The
 * forward weights say index 1 is ~0 (Z dropped it), so the masked rule drops it although its
 * stored value is the second largest; the stored rule drops index 4 (|0.5|). */
static void drop_ranked_by_forward_weights(void)
{
    float w[8] = {3.0f, 2.5f, -1.5f, 2.0f, 0.5f, 1.0f, 0, 0};
    const float fwd[8] = {3.0f, 0.0f, -1.5f, 2.0f, 0.5f, 1.0f, 0, 0};
    const float grow[8] = {0, 0, 0, 0, 0, 0, 9.0f, 1.0f}; /* index 6 grows */
    for (int masked = 0; masked < 2; masked++) {
        float ww[8];
        memcpy(ww, w, sizeof w);
        uint8_t mask[8] = {1, 1, 1, 1, 1, 1, 0, 0};
        const DropGrowRule rule = {masked ? fwd : NULL, 0};
        const long grown = mask_drop_grow_rule(ww, NULL, mask, NULL, grow, 8, 1, &rule, NULL);
        const int gone = masked ? 1 : 4;
        CHECK(grown == 1 && mask[gone] == 0 && mask[6] == 1 && ww[gone] == 0.0f,
              "drop by %s: dropped index %d? mask %d%d%d%d%d%d%d%d", masked ? "forward" : "stored",
              gone, mask[0], mask[1], mask[2], mask[3], mask[4], mask[5], mask[6], mask[7]);
    }
}

/* A weight dropped and grown again in one update: kept as it was (cigl), or marked to come
 * back at 0 (the authors), its weight and momentum untouched here (the caller zeroes the
 * weight on every rank). Index 2 (|0.1|) is dropped and has the largest grow score. */
static void regrown_weight_marked(void)
{
    for (int zero = 0; zero < 2; zero++) {
        float w[4] = {1.0f, -2.0f, 0.1f, 0.0f}, v[4] = {0.5f, 0.5f, 0.25f, 0.0f};
        uint8_t mask[4] = {1, 1, 1, 0};
        const float grow[4] = {0, 0, 5.0f, 1.0f};
        const DropGrowRule rule = {NULL, zero};
        const long fresh = mask_drop_grow_rule(w, v, mask, NULL, grow, 4, 1, &rule, NULL);
        CHECK(fresh == 0 && mask[3] == 0, "regrown %d: %ld new, mask[3] %d", zero, fresh, mask[3]);
        CHECK(mask[2] == (zero ? MASK_REGROWN_ZERO : 1) && w[2] == 0.1f && v[2] == 0.25f,
              "regrown %d: mask %d weight %g momentum %g", zero, mask[2], w[2], v[2]);
    }
}

/* The authors' step by hand (momentum 0.9, Nesterov, weight decay 0.1, lr 0.5):
 * kept, w 1, g 0.2, v 0.1: d = 0.3, v = 0.39, d' = 0.651, w = 0.6745;
 * dropped by the next Z, w 2 (stored), g 0.4, v -0.1: seen at 0, d = 0.4, v = 0.31,
 *   d' = 0.679, held = -0.3395, w stays 2;
 * outside the mask: nothing moves, held stays. */
static void held_sgd_by_hand(void)
{
    float w[3] = {1.0f, 2.0f, 0.0f}, g[3] = {0.2f, 0.4f, 9.0f}, v[3] = {0.1f, -0.1f, 0.0f};
    float held[3] = {7.0f, 7.0f, 7.0f};
    unsigned char decays[3] = {1, 1, 1};
    const unsigned char mask[3] = {1, 1, 0}, kept[3] = {1, 0, 0};
    Sgd o = {0.9, 0.1, 1, v, decays};
    sgd_step_held(&o, w, g, 3, 0.5, mask, kept, held);
    CHECK_CLOSE(w[0], 0.6745, 1e-6, 0, "w[0]");
    CHECK_CLOSE(v[0], 0.39, 1e-6, 0, "v[0]");
    CHECK_CLOSE(held[0], 7.0, 0, 0, "held[0]");
    CHECK_CLOSE(w[1], 2.0, 0, 0, "w[1]");
    CHECK_CLOSE(v[1], 0.31, 1e-6, 0, "v[1]");
    CHECK_CLOSE(held[1], -0.3395, 1e-6, 0, "held[1]");
    CHECK(w[2] == 0.0f && v[2] == 0.0f && held[2] == 7.0f, "masked-out entry moved");
}

/* One mask update of rigl on mlp 36-300-100-5 at 50% ERK, whose fc3 (500 weights) stays
 * dense and holds about 2% of the non-zeros (< 1/3): under --dense-layers update it loses its
 * k smallest weights and grows them back (the only candidates), at 0 under --regrown zero, so
 * exactly k of its weights are 0 after the update, k = ceil(f x 500) or round(f x 500); under
 * fixed none. The drop fraction is chosen so that ceil and round differ. */
static long zeros_after_first_update(const char *dense_layers, const char *count, double alpha,
                                     long *expect, float *momentum_kept)
{
    Model m;
    CHECK(model_build(&m, "mlp", (Shape){1, 6, 6}, 5, BATCH, 3) == 0, "build");
    Config c = method_test_config("rigl", 0.5);
    c.drop_fraction = alpha;
    snprintf(c.dense_layers, sizeof c.dense_layers, "%s", dense_layers);
    snprintf(c.drop_count, sizeof c.drop_count, "%s", count);
    snprintf(c.regrown, sizeof c.regrown, "zero");
    snprintf(c.update_step, sizeof c.update_step, "skip");
    Sgd opt;
    sgd_init(&opt, &m, 0.9, 5e-4, 1, 0);
    MethodState s;
    CHECK(method_init(&s, &c, &m, STEPS, 6) == 0, "method_init");
    const ParamTensor *fc3 = NULL;
    int l = 0, fc3_layer = -1;
    for (int t = 0; t < m.n_tensors; t++) {
        if (!m.tensors[t].prunable) continue;
        if (m.tensors[t].len == 500) { fc3 = &m.tensors[t]; fc3_layer = l; }
        l++;
    }
    CHECK(fc3 && s.counts[fc3_layer] == 500, "fc3 not dense at 50%% ERK");
    float x[36 * BATCH], dl[5 * BATCH], *v_before = malloc(sizeof(float) * 500);
    int32_t y[BATCH];
    long zeros = 0;
    for (long step = 0; step < 3; step++) { /* the update is at step 2 (3 steps done) */
        method_test_batch(x, y, 36, 5, (uint64_t)step);
        memcpy(v_before, opt.velocity + fc3->off, sizeof(float) * 500);
        int correct;
        method_train_step(&s, &m, &opt, x, y, BATCH, 1.0f / BATCH, 0.05, NULL, step, dl,
                          &correct);
    }
    const double f = drop_fraction(alpha, 3, s.t_end);
    *expect = !strcmp(dense_layers, "fixed") ? 0
              : !strcmp(count, "ceil") ? (long)ceil(f * 500) : (long)floor(f * 500 + 0.5);
    *momentum_kept = 1;
    for (size_t i = 0; i < 500; i++) {
        if (m.params[fc3->off + i] != 0.0f) continue;
        zeros++;
        /* skipped step: the momentum of a regrown weight is what it was */
        if (opt.velocity[fc3->off + i] != v_before[i] || v_before[i] == 0.0f) *momentum_kept = 0;
    }
    free(v_before);
    method_free(&s);
    sgd_free(&opt);
    model_free(&m);
    return zeros;
}

static void dense_layer_update_and_ceil(void)
{
    /* a drop fraction whose f x 500 has a fractional part in (0.1, 0.4): ceil != round */
    double alpha = 0.3, f = 0;
    for (; alpha < 0.5; alpha += 0.001) {
        f = drop_fraction(alpha, 3, (long)floor(0.6 * STEPS)) * 500; /* t_end: update_end x T */
        if (f - floor(f) > 0.1 && f - floor(f) < 0.4) break;
    }
    const char *rules[][2] = {{"update", "ceil"}, {"update", "round"}, {"fixed", "ceil"}};
    long got[3];
    for (int r = 0; r < 3; r++) {
        long expect;
        float kept;
        got[r] = zeros_after_first_update(rules[r][0], rules[r][1], alpha, &expect, &kept);
        printf("  --dense-layers %s --drop-count %s: %ld of fc3's 500 at 0 (f x 500 = %.2f, "
               "expected %ld)\n", rules[r][0], rules[r][1], got[r], f, expect);
        CHECK(got[r] == expect, "%s/%s: %ld zeros, expected %ld", rules[r][0], rules[r][1],
              got[r], expect);
        CHECK(kept || !got[r], "%s/%s: a regrown weight's momentum changed", rules[r][0],
              rules[r][1]);
    }
    CHECK(got[0] == got[1] + 1, "ceil %ld vs round %ld", got[0], got[1]);
}

/* --update-step skip: at a mask-update step no weight moves but by the update itself, and the
 * next step's forward pass reuses the random mask of the update step (the authors draw none
 * when they skip the optimiser). Control: with the step taken, weights move and Z changes. */
static void skipped_update_step_reuses_z(void)
{
    for (int skip = 0; skip < 2; skip++) {
        Model m;
        CHECK(model_build(&m, "mlp", (Shape){1, 6, 6}, 5, BATCH, 3) == 0, "build");
        Config c = method_test_config("cigl", 0.8);
        snprintf(c.update_step, sizeof c.update_step, "%s", skip ? "skip" : "take");
        Sgd opt;
        sgd_init(&opt, &m, 0.9, 5e-4, 1, 0);
        MethodState s;
        CHECK(method_init(&s, &c, &m, STEPS, 6) == 0, "method_init");
        const size_t n = m.n_params;
        float x[36 * BATCH], dl[5 * BATCH], *w0 = malloc(sizeof(float) * n);
        uint8_t *mask0 = malloc(n), *z_update = malloc(n);
        int32_t y[BATCH];
        long moved = 0, z_differs = 0, both = 0;
        for (long step = 0; step < 4; step++) {
            method_test_batch(x, y, 36, 5, (uint64_t)step);
            const float *w = method_before_forward(&s, &m, step);
            if (step == 2) {
                memcpy(z_update, s.active, n);
                memcpy(w0, m.params, sizeof(float) * n);
                memcpy(mask0, s.mask, n);
            }
            if (step == 3)
                for (size_t i = 0; i < n; i++)
                    if (mask0[i] && s.mask[i]) { both++; z_differs += z_update[i] != s.active[i]; }
            int correct;
            method_forward_backward(&s, &m, w, x, y, BATCH, 1.0f / BATCH, NULL, dl, &correct);
            method_apply_step(&s, &m, &opt, 0.05, step);
            if (step == 2)
                for (size_t i = 0; i < n; i++)
                    moved += mask0[i] && s.mask[i] && m.params[i] != w0[i];
        }
        CHECK(method_updates_at(&s, 2), "step 2 is not an update step");
        if (skip)
            CHECK(moved == 0 && z_differs == 0, "skip: %ld weights moved, %ld of %ld Z entries "
                  "changed", moved, z_differs, both);
        else
            CHECK(moved > 0 && z_differs > 0, "take: %ld weights moved, %ld Z entries changed",
                  moved, z_differs);
        free(w0); free(mask0); free(z_update);
        method_free(&s);
        sgd_free(&opt);
        model_free(&m);
    }
}

/* --z-timing authors: before every forward pass, a weight the random mask keeps enters as W
 * (unscaled under --no-rescale-kept), one it drops as what it holds (its last update, -lr u;
 * 0 right after it joined the mask), an inactive one as 0; a dropped weight's stored value
 * does not move, and some dropped weights hold a non-zero update. */
static void authors_z_timing_forward(void)
{
    Model m;
    CHECK(model_build(&m, "mlp", (Shape){1, 6, 6}, 5, BATCH, 3) == 0, "build");
    Config c = method_test_config("cigl", 0.8);
    c.rescale_kept = 0;
    snprintf(c.z_timing, sizeof c.z_timing, "authors");
    Sgd opt;
    sgd_init(&opt, &m, 0.9, 5e-4, 1, 0);
    MethodState s;
    CHECK(method_init(&s, &c, &m, STEPS, 6) == 0 && s.held, "method_init with held updates");
    const size_t n = m.n_params;
    float x[36 * BATCH], dl[5 * BATCH], *w0 = malloc(sizeof(float) * n);
    int32_t y[BATCH];
    long bad = 0, held_nonzero = 0, stored_moved = 0;
    for (long step = 0; step < STEPS; step++) {
        method_test_batch(x, y, 36, 5, (uint64_t)step);
        const float *w = method_before_forward(&s, &m, step);
        for (int ti = 0; ti < m.n_tensors; ti++) {
            const ParamTensor *t = &m.tensors[ti];
            for (size_t i = t->off; i < t->off + t->len; i++) {
                const float want = !t->prunable || s.active[i] ? m.params[i]
                                   : s.mask[i] ? s.held[i] : 0.0f;
                bad += memcmp(&w[i], &want, sizeof want) != 0;
                held_nonzero += t->prunable && s.mask[i] && !s.active[i] && s.held[i] != 0.0f;
            }
        }
        memcpy(w0, m.params, sizeof(float) * n);
        int correct;
        method_forward_backward(&s, &m, w, x, y, BATCH, 1.0f / BATCH, NULL, dl, &correct);
        const int updates = method_updates_at(&s, step);
        method_apply_step(&s, &m, &opt, 0.05, step);
        if (!updates) /* the next Z (now in s.active) kept still what it drops */
            for (size_t i = 0; i < n; i++)
                stored_moved += s.mask[i] && !s.active[i] && m.params[i] != w0[i];
    }
    CHECK(bad == 0, "%ld forward weights differ from the authors' rule", bad);
    CHECK(held_nonzero > 0, "no dropped weight held an update");
    CHECK(stored_moved == 0, "%ld stored weights dropped by the next Z moved", stored_moved);
    free(w0);
    method_free(&s);
    sgd_free(&opt);
    model_free(&m);
}

/* Snapshots at the ends of epochs 6-8 of an 8-epoch run: --average-start-epoch 6 and
 * --average-start 0.75 give the same steps (60, 70, 80 of 80), 7 and 0.8 the ends of 7-8. */
static void epoch_snapshot_window(void)
{
    Config a = method_test_config("cigl", 0.9), b = a;
    a.average_every = b.average_every = 0;
    a.average_start_epoch = 6;
    b.average_start = 0.75;
    long taken_a = 0, same = 1;
    for (long step = 0; step < 80; step++) {
        const int sa = method_snapshots_at(&a, step, 80, 10);
        same &= sa == method_snapshots_at(&b, step, 80, 10);
        taken_a += sa;
        if (sa) CHECK((step + 1) % 10 == 0 && step + 1 >= 60, "snapshot after step %ld", step + 1);
    }
    CHECK(taken_a == 3 && same, "epoch 6: %ld snapshots; same as 0.75: %ld", taken_a, same);
    a.average_start_epoch = 7;
    b.average_start = 0.8;
    long taken_7 = 0, taken_08 = 0;
    for (long step = 0; step < 80; step++) {
        taken_7 += method_snapshots_at(&a, step, 80, 10);
        taken_08 += method_snapshots_at(&b, step, 80, 10);
    }
    CHECK(taken_7 == 2 && taken_08 == 2, "epoch 7: %ld, 0.8: %ld snapshots", taken_7, taken_08);
}

static int resolved(const char *const *args, int n, Config *c)
{
    config_defaults(c);
    const int rc = config_parse_args(c, n, (char **)args);
    return rc ? rc : method_resolve_mechanics(c);
}

/* Whether c resolved to these mechanism values (drop score, Z timing, regrown, dense layers,
 * drop count, update step), rescaling and snapshot epoch; what it has goes to got. */
static int mechanics_are(const Config *c, const char *const want[6], int rescale, int epoch,
                         char got[160])
{
    const char *const have[6] = {c->drop_score, c->z_timing, c->regrown, c->dense_layers,
                                 c->drop_count, c->update_step};
    snprintf(got, 160, "%s %s %s %s %s %s, rescale %d, epoch %d", have[0], have[1], have[2],
             have[3], have[4], have[5], c->rescale_kept, c->average_start_epoch);
    for (int i = 0; i < 6; i++)
        if (strcmp(have[i], want[i])) return 0;
    return c->rescale_kept == rescale && c->average_start_epoch == epoch;
}

/* --mechanics authors sets every mechanism left at auto (only those of the method), CigL's
 * snapshot epoch floor(0.8 x 8) = 6 and no rescaling; an option given on its own wins. */
static void mechanics_resolution(void)
{
    Config c;
    const char *cigl_authors[] = {"--method", "cigl", "--epochs", "8", "--mechanics", "authors",
                                  "--drop-score", "stored", "--rescale-kept"};
    CHECK(resolved(cigl_authors, 9, &c) == 0, "cigl authors refused");
    CHECK(!strcmp(c.drop_score, "stored") && !strcmp(c.z_timing, "authors") &&
          !strcmp(c.regrown, "zero") && !strcmp(c.dense_layers, "update") &&
          !strcmp(c.drop_count, "ceil") && !strcmp(c.update_step, "skip"),
          "cigl authors: %s %s %s %s %s %s", c.drop_score, c.z_timing, c.regrown,
          c.dense_layers, c.drop_count, c.update_step);
    CHECK(c.rescale_kept == 1 && c.average_start_epoch == 6, "rescale %d, epoch %d",
          c.rescale_kept, c.average_start_epoch);
    const char *cigl_plain[] = {"--method", "cigl", "--epochs", "8", "--mechanics", "authors",
                                "--average-start-epoch", "7"};
    CHECK(resolved(cigl_plain, 8, &c) == 0 && c.rescale_kept == 0 &&
          c.average_start_epoch == 7, "given epoch 7 lost: %d", c.average_start_epoch);
    const char *rigl_authors[] = {"--method", "rigl", "--mechanics", "authors"};
    CHECK(resolved(rigl_authors, 4, &c) == 0, "rigl authors refused");
    CHECK(!strcmp(c.drop_score, "auto") && !strcmp(c.z_timing, "auto") &&
          !strcmp(c.regrown, "zero") && !strcmp(c.update_step, "skip") &&
          c.average_start_epoch == 0, "rigl authors: %s %s %s %s", c.drop_score, c.z_timing,
          c.regrown, c.update_step);
    /* cigl's defaults (the paired study's rule, docs/method.md): the authors' values except
     * the drop score and the Z timing; no rescaling; the authors' epoch window */
    const char *defaults[] = {"--method", "cigl", "--epochs", "8"};
    static const char *const chosen[6] = {"stored", "cigl", "zero", "update", "ceil", "skip"};
    char got[160];
    CHECK(resolved(defaults, 4, &c) == 0 && mechanics_are(&c, chosen, 0, 6, got),
          "cigl's defaults: %s", got);
    CHECK(method_validate(&c, 80, 10) == 0, "cigl's default window refused at 8 epochs");
    const char *legacy[] = {"--method", "cigl", "--epochs", "8", "--mechanics", "legacy"};
    static const char *const own[6] = {"stored", "cigl", "keep", "fixed", "round", "take"};
    CHECK(resolved(legacy, 6, &c) == 0 && mechanics_are(&c, own, 1, 0, got), "legacy: %s", got);
    /* the default window: epochs floor(0.8 E).., moved to the first epoch ending after the
     * masks freeze at 0.75 E, none (steps) when fewer than 2 epoch ends are left */
    const struct { const char *epochs; int first; } windows[] = {
        {"1", 0}, {"3", 0}, {"4", 3}, {"6", 5}, {"7", 6}, {"11", 9}, {"25", 20}, {"32", 25}};
    for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
        const char *args[] = {"--method", "cigl", "--epochs", windows[i].epochs};
        CHECK(resolved(args, 4, &c) == 0 && c.average_start_epoch == windows[i].first,
              "%s epochs: window from %d, expected %d", windows[i].epochs,
              c.average_start_epoch, windows[i].first);
        const long spe = 10, total = spe * c.epochs;
        CHECK(!windows[i].first || method_validate(&c, total, spe) == 0,
              "%s epochs: the default window is refused", windows[i].epochs);
    }
    /* a window given in steps keeps the step window; a given rescaling stays */
    const char *steps[] = {"--method", "cigl", "--epochs", "8", "--average-every", "50",
                           "--rescale-kept"};
    CHECK(resolved(steps, 7, &c) == 0 && c.average_start_epoch == 0 && c.rescale_kept == 1,
          "--average-every 50: epoch %d, rescale %d", c.average_start_epoch, c.rescale_kept);
    /* a configuration file records resolved values: one written before the study (rescaling,
     * the step window, cigl's own values) keeps them under today's --mechanics cigl */
    char err[128];
    const char *old_json = "{\"method\": \"cigl\", \"epochs\": 8, \"mechanics\": \"cigl\", "
                           "\"rescale-kept\": true, \"average-start-epoch\": 0, "
                           "\"average-start\": 0.8, \"average-every\": 0, "
                           "\"drop-score\": \"stored\", \"z-timing\": \"cigl\", "
                           "\"regrown\": \"keep\", \"dense-layers\": \"fixed\", "
                           "\"drop-count\": \"round\", \"update-step\": \"take\"}";
    JsonValue *root = json_parse(old_json, strlen(old_json), err, sizeof err);
    CHECK(root != NULL, "json: %s", err);
    config_defaults(&c);
    CHECK(root && config_apply_json(&c, root, "old config.json") == 0 &&
          method_resolve_mechanics(&c) == 0 && c.rescale_kept == 1 &&
          c.average_start_epoch == 0 && !strcmp(c.regrown, "keep") &&
          !strcmp(c.update_step, "take"), "an old config.json changed meaning: rescale %d, "
          "epoch %d, %s %s", c.rescale_kept, c.average_start_epoch, c.regrown, c.update_step);
    json_free(root);
    /* a file from before --mechanics existed has no mechanism keys: cigl's own values */
    const char *older = "{\"method\": \"cigl\", \"epochs\": 8, \"rescale-kept\": true}";
    root = json_parse(older, strlen(older), err, sizeof err);
    config_defaults(&c);
    CHECK(root && config_apply_json(&c, root, "older config.json") == 0, "older json");
    if (root) config_mark_unversioned_legacy(&c, root);
    CHECK(method_resolve_mechanics(&c) == 0 && !strcmp(c.mechanics, "legacy") &&
          mechanics_are(&c, own, 1, 0, got), "an unversioned file: %s", got);
    json_free(root);
    /* --mechanics is accepted (and changes nothing) for every method, so one plan line set
     * can pin it */
    const char *dense[] = {"--method", "dense", "--mechanics", "legacy"};
    CHECK(resolved(dense, 4, &c) == 0 && method_validate(&c, 80, 10) == 0,
          "--mechanics legacy refused for dense");
    const char *bad[] = {"--method", "cigl", "--mechanics", "paper"};
    CHECK(resolved(bad, 4, &c) == 2, "--mechanics paper accepted");
    const char *bad_value[] = {"--method", "rigl", "--regrown", "random"};
    CHECK(resolved(bad_value, 4, &c) == 2, "--regrown random accepted");
    /* a cigl-only mechanism on rigl is refused by validation */
    const char *z_rigl[] = {"--method", "rigl", "--z-timing", "authors"};
    CHECK(resolved(z_rigl, 4, &c) == 0 && method_validate(&c, 400, 10) == 2,
          "--z-timing accepted for rigl");
    const char *late[] = {"--method", "cigl", "--epochs", "8", "--average-start-epoch", "9"};
    CHECK(resolved(late, 6, &c) == 0 && method_validate(&c, 80, 10) == 2,
          "--average-start-epoch 9 of 8 accepted");
    const char *early[] = {"--method", "cigl", "--epochs", "8", "--average-start-epoch", "2"};
    CHECK(resolved(early, 6, &c) == 0 && method_validate(&c, 80, 10) == 2,
          "a snapshot before the masks freeze accepted");
}

int main(void)
{
    RUN(drop_ranked_by_forward_weights);
    RUN(regrown_weight_marked);
    RUN(held_sgd_by_hand);
    RUN(dense_layer_update_and_ceil);
    RUN(skipped_update_step_reuses_z);
    RUN(authors_z_timing_forward);
    RUN(epoch_snapshot_window);
    RUN(mechanics_resolution);
    return CHECK_SUMMARY();
}
