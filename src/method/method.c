/* The method table and the hooks the training loop calls. */
#include "cigl/loss.h"
#include "cigl/method.h"

#include "method_draw.h"

#include "cigl/error.h"
#include "cigl/rng.h"
#include "cigl/sparse.h"
#include "cigl/threads.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- grow scores ---------------------------------------------------------------------- */

/* RigL: |dL/dW_eff|, the dense gradient of the effective weights (read in place). */
static const float *grow_by_gradient(const MethodState *s, const Model *m, long step,
                                     const ParamTensor *t, float *scratch)
{
    (void)s; (void)step; (void)scratch;
    return m->grads + t->off;
}

/* SET: uniform over the inactive positions, as random keys from (seed, RNG_GROW, step). */
static const float *grow_at_random(const MethodState *s, const Model *m, long step,
                                   const ParamTensor *t, float *scratch)
{
    (void)m;
    for (size_t i = 0; i < t->len; i++)
        scratch[i] = (float)rng_uniform(s->seed, RNG_GROW, (uint64_t)step, t->off + i);
    return scratch;
}

const MethodOps method_table[] = {
    {"dense", 0, DRAW_NONE, NULL, 0, 0},
    {"static", 1, DRAW_NONE, NULL, 0, 0},
    {"set", 1, DRAW_NONE, grow_at_random, 0, 0},
    {"rigl", 1, DRAW_NONE, grow_by_gradient, 0, 0},
    {"rigl-wdp", 1, DRAW_DROPOUT, grow_by_gradient, 0, 0},
    {"rigl-mcdp", 1, DRAW_DROPOUT, grow_by_gradient, 0, 1},
    {"cigl", 1, DRAW_RANDOM_MASK, grow_by_gradient, 1, 0},
    {NULL, 0, DRAW_NONE, NULL, 0, 0},
};

const MethodOps *method_find(const char *name)
{
    for (const MethodOps *o = method_table; o->name; o++)
        if (!strcmp(o->name, name)) return o;
    return NULL;
}

static const char *const group_names[METHODS_GROUPS] = {
    "methods", "sparse", "updating", "averaging", "dropout", "drawing", "test-dropout"};

int method_in_group(const MethodOps *o, MethodGroup g)
{
    switch (g) {
    case METHODS_SPARSE: return o->sparse;
    case METHODS_UPDATING: return o->grow_score != NULL;
    case METHODS_AVERAGING: return o->averaging;
    case METHODS_DROPOUT: return o->draw == DRAW_DROPOUT;
    case METHODS_DRAWING: return o->draw != DRAW_NONE;
    case METHODS_TEST_DROPOUT: return o->test_dropout;
    default: return 1;
    }
}

const char *method_group_list(MethodGroup g, const char *sep, const char *last, char *buf,
                              size_t cap)
{
    int total = 0, k = 0;
    for (const MethodOps *o = method_table; o->name; o++) total += method_in_group(o, g);
    size_t used = 0;
    buf[0] = 0;
    for (const MethodOps *o = method_table; o->name && used < cap; o++) {
        if (!method_in_group(o, g)) continue;
        const char *join = k == 0 ? "" : k == total - 1 ? last : sep;
        const int w = snprintf(buf + used, cap - used, "%s%s", join, o->name);
        used += w > 0 ? (size_t)w : 0;
        k++;
    }
    return buf;
}

int method_group_parse(const char *name, size_t len)
{
    for (int g = 0; g < METHODS_GROUPS; g++)
        if (strlen(group_names[g]) == len && !strncmp(group_names[g], name, len)) return g;
    return -1;
}

/* ---- schedule of updates and snapshots ------------------------------------------------ */

static long update_end_step(double update_end, long total_steps)
{
    return (long)floor(update_end * (double)total_steps);
}

/* After step `step` (0-based), s = step + 1 steps are done; masks change when s is a multiple
 * of the interval and s < t_end. */
int method_updates_at(const MethodState *s, long step)
{
    const long done = step + 1;
    return s->ops->grow_score && done % s->cfg.update_interval == 0 && done < s->t_end;
}

/* --update-step skip: the authors' loop replaces the optimiser step by the mask update. */
static int skips_step(const MethodState *s, long step)
{
    return s->rules.skip_update_step && method_updates_at(s, step);
}

/* The step whose random mask the forward pass of `step` uses: its own, or after skipped
 * update steps (which draw none in the authors' loop) the last one drawn. */
static long z_index(const MethodState *s, long step)
{
    while (step > 0 && skips_step(s, step - 1)) step--;
    return step;
}

/* Steps done from which snapshots are taken: from the start of epoch --average-start-epoch
 * (so its end is the first epoch-end snapshot, as the authors' begin_save), else
 * ceil(--average-start x total steps). */
static long snapshot_start(const Config *c, long total_steps, long steps_per_epoch)
{
    if (c->average_start_epoch > 0) return (long)(c->average_start_epoch - 1) * steps_per_epoch + 1;
    return (long)ceil(c->average_start * (double)total_steps);
}

int method_snapshots_at(const Config *c, long step, long total_steps, long steps_per_epoch)
{
    const long done = step + 1;
    if (done < snapshot_start(c, total_steps, steps_per_epoch)) return 0;
    return c->average_every > 0 ? done % c->average_every == 0 : done % steps_per_epoch == 0;
}

/* ---- mechanics (docs/method.md, "Authors' mechanics") ------------------------------- */

/* One mechanism option: cigl's own value (its default before the paired study, kept as
 * --mechanics legacy), the authors' value, and which of the two is cigl's default now: the
 * paired study's rule (docs/method.md, "Choosing the defaults") keeps cigl's own value only
 * where the evidence favours it. */
typedef struct {
    const char *name;
    size_t offset;
    const char *own, *authors;
    int default_authors;    /* --mechanics cigl takes the authors' value */
    int cigl_only;          /* applies to cigl only (else to every method with mask updates) */
} MechanicsOption;

static const MechanicsOption mechanics_options[] = {
    {"drop-score", offsetof(Config, drop_score), "stored", "masked", 0, 1},
    {"z-timing", offsetof(Config, z_timing), "cigl", "authors", 0, 1},
    {"regrown", offsetof(Config, regrown), "keep", "zero", 1, 0},
    {"dense-layers", offsetof(Config, dense_layers), "fixed", "update", 1, 0},
    {"drop-count", offsetof(Config, drop_count), "round", "ceil", 1, 0},
    {"update-step", offsetof(Config, update_step), "take", "skip", 1, 0},
    {NULL, 0, NULL, NULL, 0, 0},
};

typedef enum { MECHANICS_CIGL, MECHANICS_AUTHORS, MECHANICS_LEGACY } Mechanics;

static int mechanics_applies(const MechanicsOption *o, const MethodOps *ops)
{
    return ops->grow_score && (!o->cigl_only || ops->averaging);
}

/* The authors' snapshot window for cigl's default: the ends of epochs floor(--average-start x
 * epochs) to the last, moved later to the first epoch that ends after the masks freeze (cigl
 * averages frozen masks only); 0 (the window by --average-start in steps) when that leaves
 * fewer than 2 epoch ends, as in runs of under 4 epochs. */
static int default_snapshot_epoch(const Config *c)
{
    int e = (int)fmax(1.0, floor(c->average_start * c->epochs));
    const int frozen = (int)ceil(c->update_end * c->epochs - 1e-9);
    if (e < frozen) e = frozen;
    return e <= c->epochs - 1 ? e : 0;
}

int method_resolve_mechanics(Config *c)
{
    const MethodOps *ops = method_find(c->method);
    if (!ops) return CIGL_OK; /* method_validate names it */
    Mechanics set;
    if (!strcmp(c->mechanics, "cigl")) set = MECHANICS_CIGL;
    else if (!strcmp(c->mechanics, "authors")) set = MECHANICS_AUTHORS;
    else if (!strcmp(c->mechanics, "legacy")) set = MECHANICS_LEGACY;
    else
        return cigl_fail(CIGL_ERR_USAGE, "unknown --mechanics '%s'; expected cigl, authors or "
                         "legacy", c->mechanics);
    for (const MechanicsOption *o = mechanics_options; o->name; o++) {
        char *v = (char *)c + o->offset;
        if (!mechanics_applies(o, ops)) continue; /* left at auto; given: refused later */
        const int take_authors = set == MECHANICS_AUTHORS ||
                                 (set == MECHANICS_CIGL && o->default_authors);
        if (!strcmp(v, "auto")) strcpy(v, take_authors ? o->authors : o->own);
        if (strcmp(v, o->own) && strcmp(v, o->authors))
            return cigl_fail(CIGL_ERR_USAGE, "unknown --%s '%s'; expected %s or %s", o->name, v,
                             o->own, o->authors);
    }
    if (set == MECHANICS_LEGACY || !ops->averaging) return CIGL_OK;
    /* kept weights enter the forward pass unscaled (their code stores W . Z and divides by
     * keep in the same place), and snapshots are taken at epoch ends from their begin_save =
     * int(0.8 x epochs); a value given, or recorded in a loaded file, stays */
    if (!config_given_or_loaded(c, "rescale-kept") && !config_given_or_loaded(c, "no-rescale-kept"))
        c->rescale_kept = 0;
    if (set == MECHANICS_AUTHORS) {
        if (!config_given_or_loaded(c, "average-start-epoch"))
            c->average_start_epoch = (int)fmax(1.0, floor(c->average_start * c->epochs));
    } else if (!config_given_or_loaded(c, "average-start-epoch") &&
               !config_given_or_loaded(c, "average-start") &&
               !config_given_or_loaded(c, "average-every")) {
        c->average_start_epoch = default_snapshot_epoch(c);
    }
    return CIGL_OK;
}

void method_mechanics_forget(Config *c)
{
    for (const MechanicsOption *o = mechanics_options; o->name; o++) config_forget(c, o->name);
    config_forget(c, "rescale-kept");
    config_forget(c, "no-rescale-kept");
    config_forget(c, "average-start-epoch");
}

int method_mechanics_same(const Config *a, const Config *b)
{
    for (const MechanicsOption *o = mechanics_options; o->name; o++)
        if (strcmp((const char *)a + o->offset, (const char *)b + o->offset)) return 0;
    return a->rescale_kept == b->rescale_kept && a->average_start_epoch == b->average_start_epoch;
}

static MethodRules method_rules(const Config *c)
{
    MethodRules r;
    r.drop_masked = !strcmp(c->drop_score, "masked");
    r.z_authors = !strcmp(c->z_timing, "authors");
    r.regrown_zero = !strcmp(c->regrown, "zero");
    r.dense_update = !strcmp(c->dense_layers, "update");
    r.drop_ceil = !strcmp(c->drop_count, "ceil");
    r.skip_update_step = !strcmp(c->update_step, "skip");
    return r;
}

/* ---- validation ----------------------------------------------------------------------- */

/* Refuses the options given for a method outside group g (the methods they act on). */
static int refuse_inapplicable(const Config *c, const char *const *options, MethodGroup g)
{
    if (method_in_group(method_find(c->method), g)) return CIGL_OK;
    char who[256];
    for (int i = 0; options[i]; i++)
        if (config_given(c, options[i]))
            return cigl_fail(CIGL_ERR_USAGE, "--%s does not apply to --method %s (it applies to "
                             "%s); remove it", options[i], c->method,
                             method_group_list(g, ", ", " and ", who, sizeof who));
    return CIGL_OK;
}

int method_validate(const Config *c, long total_steps, long steps_per_epoch)
{
    const MethodOps *ops = method_find(c->method);
    if (!ops) {
        char known[256];
        return cigl_fail(CIGL_ERR_USAGE, "unknown method '%s'; expected one of: %s", c->method,
                         method_group_list(METHODS_ALL, ", ", ", ", known, sizeof known));
    }
    static const char *const sparse_opts[] = {"sparsity", "distribution", NULL};
    static const char *const update_opts[] = {"update-interval", "drop-fraction", "update-end",
                                              "regrown", "dense-layers",
                                              "drop-count", "update-step", NULL};
    static const char *const cigl_opts[] = {"random-mask-rate", "rescale-kept", "no-rescale-kept",
                                            "average-start", "average-every", "no-averaging",
                                            "average-start-epoch", "drop-score", "z-timing",
                                            NULL};
    static const char *const dropout_opts[] = {"dropout-rate", NULL};
    static const char *const mc_opts[] = {"mc-samples", NULL};
    static const char *const draw_opts[] = {"draw-ahead", NULL};
    int rc = refuse_inapplicable(c, sparse_opts, METHODS_SPARSE);
    if (!rc) rc = refuse_inapplicable(c, update_opts, METHODS_UPDATING);
    if (!rc) rc = refuse_inapplicable(c, cigl_opts, METHODS_AVERAGING);
    if (!rc) rc = refuse_inapplicable(c, dropout_opts, METHODS_DROPOUT);
    if (!rc) rc = refuse_inapplicable(c, draw_opts, METHODS_DRAWING);
    if (!rc) rc = refuse_inapplicable(c, mc_opts, METHODS_TEST_DROPOUT);
    if (rc) return rc;
    if (sparse_kernels_parse(c->kernels) < 0)
        return cigl_fail(CIGL_ERR_USAGE, "unknown --kernels '%s'; expected auto, dense or sparse",
                         c->kernels);
    if (strcmp(c->draw_ahead, "auto") && strcmp(c->draw_ahead, "on") &&
        strcmp(c->draw_ahead, "off"))
        return cigl_fail(CIGL_ERR_USAGE, "unknown --draw-ahead '%s'; expected auto, on or off",
                         c->draw_ahead);
    if (distribution_parse(c->distribution) < 0)
        return cigl_fail(CIGL_ERR_USAGE, "unknown --distribution '%s'; expected erk, er or "
                         "uniform", c->distribution);
    if (ops->averaging && !c->no_averaging && !c->average_start_epoch &&
        c->average_start < c->update_end)
        return cigl_fail(CIGL_ERR_USAGE, "--average-start %g comes before --update-end %g: "
                         "averaging needs frozen masks; use --average-start >= %g",
                         c->average_start, c->update_end, c->update_end);
    if (ops->averaging && c->average_start_epoch > c->epochs)
        return cigl_fail(CIGL_ERR_USAGE, "--average-start-epoch %d is after the last epoch (%d); "
                         "use an epoch from 1 to %d", c->average_start_epoch, c->epochs,
                         c->epochs);
    if (ops->averaging && !c->no_averaging && c->average_start_epoch) {
        /* the first snapshot must see frozen masks (updates happen while done < t_end) */
        const long first = snapshot_start(c, total_steps, steps_per_epoch);
        const long t_end = update_end_step(c->update_end, total_steps);
        long at = first;
        while (at <= total_steps && !method_snapshots_at(c, at - 1, total_steps, steps_per_epoch))
            at++;
        if (at < t_end)
            return cigl_fail(CIGL_ERR_USAGE, "--average-start-epoch %d takes a snapshot at step %ld, "
                             "before the masks freeze at step %ld (--update-end %g); use a later "
                             "epoch", c->average_start_epoch, at, t_end, c->update_end);
    }
    if (ops->averaging) {
        long planned = 0;
        for (long step = 0; step < total_steps; step++)
            planned += method_snapshots_at(c, step, total_steps, steps_per_epoch);
        if (planned < 2)
            return cigl_fail(CIGL_ERR_USAGE, "cigl would take %ld snapshot(s) after "
                             "--average-start %g of %ld steps; averaging needs at least 2: use "
                             "--average-every STEPS (e.g. %ld) or an earlier --average-start",
                             planned, c->average_start, total_steps,
                             (long)fmax(1, floor((1 - c->average_start) * total_steps / 4)));
    }
    return CIGL_OK;
}

/* ---- state ---------------------------------------------------------------------------- */

int method_init(MethodState *s, const Config *c, Model *m, long total_steps,
                long steps_per_epoch)
{
    memset(s, 0, sizeof(*s));
    s->ops = method_find(c->method);
    s->cfg = *c;
    s->rules = method_rules(c);
    s->seed = (uint64_t)c->seed;
    s->total_steps = total_steps;
    s->steps_per_epoch = steps_per_epoch;
    s->t_end = update_end_step(c->update_end, total_steps);
    const double rate = s->ops->draw == DRAW_RANDOM_MASK ? c->random_mask_rate
                        : s->ops->draw ? c->dropout_rate : 0.0;
    s->keep = 1.0 - rate;
    const int rescale = s->ops->draw == DRAW_RANDOM_MASK ? c->rescale_kept : 1;
    s->inv_keep = rescale ? (float)(1.0 / s->keep) : 1.0f;
    const size_t n = m->n_params;
    s->mask = cigl_malloc(n, "mask");
    s->ever = cigl_malloc(n, "ever-active flags");
    s->active = cigl_malloc(n, "step mask");
    s->counts = cigl_calloc((size_t)m->n_tensors, sizeof(long), "layer counts");
    size_t largest = 1;
    for (int t = 0; t < m->n_tensors; t++)
        if (m->tensors[t].len > largest) largest = m->tensors[t].len;
    s->score = cigl_malloc(sizeof(float) * largest, "grow scores");
    s->scratch_mask = cigl_malloc(n, "previous mask");
    if (!s->mask || !s->ever || !s->active || !s->counts || !s->score || !s->scratch_mask)
        return CIGL_ERR_RUNTIME;
    /* drop/grow's buffers now, not at the first mask update in the middle of a run */
    if (s->ops->grow_score && drop_grow_scratch_reserve(&s->drop_grow, largest))
        return cigl_fail(CIGL_ERR_RUNTIME, "out of memory for the mask-update buffers (%zu "
                         "weights); use a node with more memory", largest);
    if (s->rules.drop_masked) {
        s->drop_by = cigl_malloc(sizeof(float) * largest, "drop magnitudes");
        if (!s->drop_by) return CIGL_ERR_RUNTIME;
    }
    const double density = s->ops->sparse ? 1.0 - c->sparsity : 1.0;
    s->n_prunable = sparsity_layer_counts(m, (Distribution)distribution_parse(c->distribution),
                                          density, s->counts);
    sparsity_init_masks(m, s->counts, s->seed, s->mask);
    memcpy(s->ever, s->mask, n);
    memcpy(s->active, s->mask, n);
    for (size_t i = 0; i < n; i++)
        if (!s->mask[i]) m->params[i] = 0.0f;
    /* With no random draw (or a random mask rate of 0) the forward pass reads the
     * parameters: inactive weights are exactly 0, so W (.) M = W. */
    if (s->ops->draw && rate > 0) {
        s->weff = cigl_malloc(sizeof(float) * n, "effective weights");
        if (!s->weff || method_draws_init(s, m)) return CIGL_ERR_RUNTIME;
        if (s->rules.z_authors && s->ops->draw == DRAW_RANDOM_MASK) {
            s->held = cigl_calloc(n, sizeof(float), "held updates");
            s->held_z = -1;
            if (!s->held) return CIGL_ERR_RUNTIME;
        }
    }
    if (s->ops->averaging) {
        s->avg = cigl_calloc(n, sizeof(float), "averaged weights");
        if (!s->avg) return CIGL_ERR_RUNTIME;
    }
    return CIGL_OK;
}

void method_free(MethodState *s)
{
    method_draws_free(s);
    free(s->counts);
    free(s->mask);
    free(s->active);
    free(s->ever);
    free(s->weff);
    free(s->score);
    free(s->drop_by);
    free(s->held);
    free(s->scratch_mask);
    drop_grow_scratch_free(&s->drop_grow);
    free(s->avg);
    free(s->snapshots);
    free(s->snapshot_bn);
    memset(s, 0, sizeof(*s));
}

/* ---- per-step hooks ------------------------------------------------------------------- */

/* The sparse kernels (sparse.h) learn the step's mask, weights and whether the weight gradient
 * must be dense (a mask update follows this step); a failure is out of memory. */
static int dense_grad_step(const MethodState *s, long step)
{
    /* only RigL's grow score reads the dense gradient (SET grows at random) */
    return method_updates_at(s, step) && s->ops->grow_score == grow_by_gradient;
}

static const float *sparse_step(MethodState *s, Model *m, long step, const uint8_t *active,
                                const float *weights)
{
    const int dense = dense_grad_step(s, step);
    if (m->sparse && sparse_model_step(m, s->mask, s->updates_done, active, weights, dense)) {
        if (s->comm) s->comm->abort(s->comm, CIGL_ERR_RUNTIME); /* the others would wait */
        return NULL;
    }
    return weights;
}

/* --z-timing authors: the random mask of step z (none at step 0: the authors' first mask
 * keeps everything) into s->active, and the forward weights into s->weff: kept weights (times
 * 1/keep when rescaling), dropped ones what they hold, inactive ones 0. */
static void authors_forward_weights(MethodState *s, const Model *m, long z)
{
    if (z != s->held_z) { /* else apply_step drew it for this forward pass already */
        if (z == 0) memcpy(s->active, s->mask, m->n_params);
        else method_draw(s, m, z, 1);
        s->held_z = z;
    }
    const float *w = m->params;
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const ParamTensor *t = &m->tensors[ti];
        float *we = s->weff + t->off;
        if (!t->prunable) {
            memcpy(we, w + t->off, sizeof(float) * t->len);
            continue;
        }
        for (size_t i = t->off; i < t->off + t->len; i++)
            s->weff[i] = s->active[i] ? w[i] * s->inv_keep : s->mask[i] ? s->held[i] : 0.0f;
    }
}

const float *method_before_forward(MethodState *s, Model *m, long step)
{
    if (!s->weff) {
        m->wgrad_scale = 1.0f;
        return sparse_step(s, m, step, s->active, m->params);
    }
    /* a dense-gradient step's backward reads the effective weights of every tensor; the draw
     * reads the mask, not the kernels' patterns, which follow it just below */
    if (s->held) {
        authors_forward_weights(s, m, z_index(s, step));
        m->wgrad_scale = s->inv_keep;
        /* no active mask: the kernels read s->weff over all of M (a Z-dropped weight enters
         * with what it holds) and return the gradient of every weight of M, which the
         * authors' step integrates (docs/method.md, "Authors' mechanics") */
        return sparse_step(s, m, step, NULL, s->weff);
    }
    method_draw(s, m, z_index(s, step), m->sparse && dense_grad_step(s, step));
    m->wgrad_scale = s->inv_keep;
    if (!sparse_step(s, m, step, s->active, s->weff)) return NULL;
    sparse_model_step_source(m, m->params, s->inv_keep);
    return s->weff;
}

void method_after_backward(MethodState *s, Model *m)
{
    if (!s->weff || s->ops->draw != DRAW_DROPOUT) return;
    /* weight dropout: a dropped weight gets no gradient but still decays and keeps momentum */
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const ParamTensor *t = &m->tensors[ti];
        if (!t->prunable) continue;
        for (size_t i = t->off; i < t->off + t->len; i++)
            if (!s->active[i] && s->mask[i]) m->grads[i] = 0.0f;
    }
}

/* The drop fraction of prunable tensor l (with n_active of its len weights active) at an
 * update whose fraction is f; 0: the tensor is not updated. --dense-layers fixed never updates
 * a dense layer; update (the default since the paired study, docs/method.md) follows the
 * authors' adjust_prune_rate: a layer under 20% sparse gets its sparsity as the fraction while
 * it holds more than 1/L of the L layers' non-zeros (so a dense one is then left alone), and f
 * otherwise. */
static double layer_drop_fraction(const MethodState *s, long n_active, size_t len, double f)
{
    if (!s->rules.dense_update) return n_active >= (long)len ? 0.0 : f;
    const double sparsity = 1.0 - (double)n_active / (double)len;
    if (sparsity >= 0.2) return f;
    long total = 0;
    for (int l = 0; l < s->n_prunable; l++) total += s->counts[l];
    const double share = (double)n_active / (double)total;
    return share > 1.0 / s->n_prunable ? fmin(sparsity, f) : f;
}

/* --drop-score masked: the magnitudes the drop ranks are those of the weights the next
 * forward pass reads, Z applied (the authors rank their module's weights, which hold Z (.) W). */
static const float *drop_magnitudes(const MethodState *s, const Model *m, const ParamTensor *t)
{
    if (!s->rules.drop_masked) return NULL;
    const float *w = m->params + t->off;
    const uint8_t *act = s->active + t->off;
    const float *held = s->held ? s->held + t->off : NULL;
    for (size_t i = 0; i < t->len; i++) s->drop_by[i] = act[i] ? w[i] : held ? held[i] : 0.0f;
    return s->drop_by;
}

/* Drop and grow on every sparse layer (rank 0 only under MPI). Returns the truly new count. */
static long drop_and_grow(MethodState *s, Model *m, Sgd *opt, long step, long *active)
{
    const double f = drop_fraction(s->cfg.drop_fraction, step + 1, s->t_end);
    long fresh = 0;
    int l = 0;
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const ParamTensor *t = &m->tensors[ti];
        if (!t->prunable) continue;
        const long n_active = s->counts[l++];
        const double fl = layer_drop_fraction(s, n_active, t->len, f);
        if (fl <= 0) continue;
        const long k = s->rules.drop_ceil ? (long)ceil(fl * (double)n_active)
                                          : (long)floor(fl * (double)n_active + 0.5);
        const float *score = s->ops->grow_score(s, m, step, t, s->score);
        const DropGrowRule rule = {drop_magnitudes(s, m, t), s->rules.regrown_zero};
        const long grown = mask_drop_grow_rule(m->params + t->off, opt->velocity + t->off,
                                               s->mask + t->off, s->ever + t->off, score, t->len,
                                               k, &rule, &s->drop_grow);
        if (grown < 0) {
            cigl_fail(CIGL_ERR_RUNTIME, "out of memory during the mask update at step %ld; "
                      "use a node with more memory", step);
            if (s->comm) s->comm->abort(s->comm, CIGL_ERR_RUNTIME);
            return -1;
        }
        fresh += grown;
        *active += n_active;
    }
    return fresh;
}

/* The other ranks receive rank 0's new mask and apply what drop-and-grow implies: weights and
 * optimiser state are identical on every rank, so a position that left or newly joined the
 * mask is zeroed, and one that stayed (or was dropped and regrown) keeps its values. */
static long apply_received_mask(MethodState *s, Model *m, Sgd *opt, const uint8_t *old,
                                long *active)
{
    long fresh = 0;
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const ParamTensor *t = &m->tensors[ti];
        if (!t->prunable) continue;
        long a = 0;
        for (size_t i = t->off; i < t->off + t->len; i++) {
            a += old[i];
            if ((old[i] != 0) == (s->mask[i] != 0)) continue; /* kept, or regrown at zero */
            m->params[i] = 0.0f;
            opt->velocity[i] = 0.0f;
            if (s->mask[i]) {
                s->ever[i] = 1;
                fresh++;
            }
        }
        if (a < (long)t->len) *active += a;
    }
    return fresh;
}

/* --regrown zero: what the update marked MASK_REGROWN_ZERO (on every rank, after the mask was
 * shared) gets weight 0, keeps its optimiser state and is active again. */
static void settle_regrown(MethodState *s, Model *m)
{
    if (!s->rules.regrown_zero) return;
    for (size_t i = 0; i < m->n_params; i++)
        if (s->mask[i] == MASK_REGROWN_ZERO) {
            s->mask[i] = 1;
            m->params[i] = 0.0f;
            if (s->held) s->held[i] = 0.0f;
        }
}

static int update_masks(MethodState *s, Model *m, Sgd *opt, long step)
{
    long fresh = 0, active = 0;
    method_quiesce_draws(s); /* the helper reads the mask */
    memcpy(s->scratch_mask, s->mask, m->n_params);
    if (!s->comm || s->comm->size == 1) {
        fresh = drop_and_grow(s, m, opt, step, &active);
        if (fresh < 0) return CIGL_ERR_RUNTIME;
    } else {
        if (s->comm->rank == 0 && drop_and_grow(s, m, opt, step, &active) < 0)
            return CIGL_ERR_RUNTIME;
        if (s->comm->broadcast(s->comm, s->mask, m->n_params, 0)) {
            s->comm->abort(s->comm, CIGL_ERR_RUNTIME);
            return CIGL_ERR_RUNTIME;
        }
        active = 0;
        /* on rank 0 the values are already changed: this only counts */
        fresh = apply_received_mask(s, m, opt, s->scratch_mask, &active);
    }
    settle_regrown(s, m);
    /* a weight that joined the mask starts at 0 in the forward pass too (the authors' grow
     * zeroes their module's weight) */
    for (size_t i = 0; s->held && i < m->n_params; i++)
        if (!s->scratch_mask[i] || !s->mask[i]) s->held[i] = 0.0f;
    s->held_z = -1; /* a random mask drawn over the old mask */
    s->updates_done++;
    s->dense_grad_steps++;
    s->replaced_sum += active ? (double)fresh / (double)active : 0;
    s->masks_changed = 1;
    if (!s->weff) memcpy(s->active, s->mask, m->n_params);
    /* the sparse patterns follow the mask at once (evaluation may come before the next step) */
    if (m->sparse && sparse_model_step(m, s->mask, s->updates_done, NULL, NULL, 0)) {
        if (s->comm) s->comm->abort(s->comm, CIGL_ERR_RUNTIME);
        return CIGL_ERR_RUNTIME;
    }
    return CIGL_OK;
}

/* Running mean of the effective weights of this step: W after the optimiser step times this
 * step's Z (and 1/keep); biases and BN parameters as they are. */
static int take_snapshot(MethodState *s, Model *m)
{
    const double n = (double)s->n_snapshots;
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const ParamTensor *t = &m->tensors[ti];
        const float scale = t->prunable && s->weff ? s->inv_keep : 1.0f;
        for (size_t i = t->off; i < t->off + t->len; i++) {
            /* under --z-timing authors a dropped weight holds its update, as their module */
            const float we = s->active[i] ? m->params[i] * scale
                             : s->held && s->mask[i] ? s->held[i] : 0.0f;
            s->avg[i] = (float)((n * (double)s->avg[i] + (double)we) / (n + 1.0));
        }
    }
    s->n_snapshots++;
    if (!s->cfg.no_averaging) return CIGL_OK;
    /* the ablation keeps every snapshot with its BN statistics */
    if (s->n_snapshots > s->snapshot_cap) {
        long cap = s->snapshot_cap ? 2 * s->snapshot_cap : 8;
        float *w = realloc(s->snapshots, sizeof(float) * m->n_params * cap);
        if (w) s->snapshots = w;
        float *b = realloc(s->snapshot_bn, sizeof(float) * (m->n_bn_stats + 1) * cap);
        if (b) s->snapshot_bn = b;
        if (!w || !b) {
            s->n_snapshots--;
            return cigl_fail(CIGL_ERR_RUNTIME, "out of memory keeping snapshot %ld",
                             s->n_snapshots + 1);
        }
        s->snapshot_cap = cap;
    }
    float *dst = s->snapshots + (size_t)(s->n_snapshots - 1) * m->n_params;
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const ParamTensor *t = &m->tensors[ti];
        const float scale = t->prunable && s->weff ? s->inv_keep : 1.0f;
        for (size_t i = t->off; i < t->off + t->len; i++)
            dst[i] = s->active[i] ? m->params[i] * scale
                     : s->held && s->mask[i] ? s->held[i] : 0.0f;
    }
    memcpy(s->snapshot_bn + (size_t)(s->n_snapshots - 1) * (m->n_bn_stats + 1), m->bn_stats,
           sizeof(float) * m->n_bn_stats);
    return CIGL_OK;
}

int method_after_step(MethodState *s, Model *m, Sgd *opt, long step)
{
    if (method_updates_at(s, step) && update_masks(s, m, opt, step)) return CIGL_ERR_RUNTIME;
    if (s->ops->averaging &&
        method_snapshots_at(&s->cfg, step, s->total_steps, s->steps_per_epoch))
        return take_snapshot(s, m);
    return CIGL_OK;
}

int method_finalize(MethodState *s, Model *m)
{
    if (!s->ops->averaging || s->cfg.no_averaging) return CIGL_OK;
    if (s->n_snapshots < 2)
        return cigl_fail(CIGL_ERR_USAGE, "only %ld snapshot(s) were taken (training stopped "
                         "early?); averaging needs at least 2: use --average-every STEPS",
                         s->n_snapshots);
    memcpy(m->params, s->avg, sizeof(float) * m->n_params);
    method_forget_draws(s); /* the effective weights no longer follow the parameters */
    return CIGL_OK;
}

/* FLOPs of one forward pass of a conv or linear layer with all weights present. */
static double layer_dense_flops(const Layer *l)
{
    if (l->kind == LAYER_LINEAR) return 2.0 * (double)l->weight_len;
    if (l->kind == LAYER_CONV2D) return 2.0 * (double)l->weight_len * l->y.h * l->y.w;
    return 0;
}

void method_flops(const MethodState *s, const Model *m, double *train_rel, double *infer_rel)
{
    double dense = 0, sparse = 0;
    int l = 0;
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const ParamTensor *t = &m->tensors[ti];
        if (!t->prunable) continue;
        const double f = layer_dense_flops(&m->layers[t->layer]);
        dense += f;
        sparse += f * (double)s->counts[l++] / (double)t->len;
    }
    *infer_rel = dense > 0 ? sparse / dense : 1;
    /* a step costs forward + input gradient + weight gradient; the weight gradient is dense on
     * the steps where the method needs it (mask updates) */
    const double steps = (double)(s->total_steps > 0 ? s->total_steps : 1);
    const double dense_steps = (double)s->dense_grad_steps;
    const double train = 3 * sparse * (steps - dense_steps) + (2 * sparse + dense) * dense_steps;
    *train_rel = dense > 0 ? train / (3 * dense * steps) : 1;
}

double method_forward_backward(MethodState *s, Model *m, const float *weights, const float *x,
                               const int32_t *y, int n, float grad_scale,
                               const LossTargets *targets, float *dlogits, int *correct)
{
    (void)s;
    const LossTargets plain = {0.0, NULL, 1.0}, *tg = targets ? targets : &plain;
    const float *logits = model_forward(m, weights, x, n, 1);
    const double loss = softmax_xent_mix(logits, y, tg->mix_labels, tg->mix_lambda, n, m->classes,
                                         tg->label_smoothing, grad_scale, dlogits, correct);
    if (isfinite(loss)) model_backward(m, weights, x, dlogits, n);
    return loss;
}

/* SGD over what can move: a tensor computed by the sparse kernels only at its stored pattern
 * (= M, optim.h), the runs of other tensors whole. */
static void optimiser_step(const MethodState *s, Model *m, Sgd *opt, double lr)
{
    /* CigL freezes what Z dropped; weight dropout's dropped weights still decay and keep
     * momentum (their gradient is 0) */
    const uint8_t *moving = s->ops->draw == DRAW_DROPOUT ? s->mask : s->active;
    /* with a random draw the whole-tensor runs also leave W / keep in the effective weights,
     * which the next draw then only patches (method_draw.c; non-prunable ones it copies) */
    float *mirror = s->weff;
    size_t run = 0; /* start of the current run of tensors updated whole */
    for (int ti = 0; m->sparse && ti < m->n_tensors; ti++) {
        const ParamTensor *t = &m->tensors[ti];
        const SparseLayer *sl = t->prunable ? m->layers[t->layer].sparse : NULL;
        if (!sl) continue;
        sgd_step_range_mirror(opt, m->params, m->grads, run, t->off, lr, moving, mirror,
                              s->inv_keep);
        sgd_step_pattern(opt, m->params, m->grads, t->off, &sl->s, lr, moving);
        run = t->off + t->len;
    }
    sgd_step_range_mirror(opt, m->params, m->grads, run, m->n_params, lr, moving, mirror,
                          s->inv_keep);
}

int method_apply_step(MethodState *s, Model *m, Sgd *opt, double lr, long step)
{
    method_after_backward(s, m);
    if (skips_step(s, step)) {
        /* the authors' loop: the mask update instead of the optimiser step */
    } else if (s->held) {
        /* the authors' order: the next step's mask first, then a step that moves only what
         * it keeps (docs/method.md, "Authors' mechanics") */
        authors_forward_weights(s, m, step + 1);
        sgd_step_held(opt, m->params, m->grads, m->n_params, lr, s->mask, s->active, s->held);
    } else {
        optimiser_step(s, m, opt, lr);
    }
    return method_after_step(s, m, opt, step);
}

double method_train_step(MethodState *s, Model *m, Sgd *opt, const float *x, const int32_t *y,
                         int n, float grad_scale, double lr, const LossTargets *targets,
                         long step, float *dlogits, int *correct)
{
    const float *weights = method_before_forward(s, m, step);
    if (!weights) return NAN;
    const double loss = method_forward_backward(s, m, weights, x, y, n, grad_scale, targets,
                                                dlogits, correct);
    if (isfinite(loss) && method_apply_step(s, m, opt, lr, step)) return NAN;
    return loss;
}
