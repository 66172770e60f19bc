#include "cigl/config.h"

#include "cigl/error.h"
#include "cigl/json.h"
#include "cigl/method.h"
#include "cigl/model.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define OPT(name, type, field, def, lo, hi, help) \
    {name, type, offsetof(Config, field), sizeof(((Config *)0)->field), def, lo, hi, help}

const OptionSpec train_options[] = {
    OPT("data", OPT_STRING, data, NULL, 0, 0, "dataset file in cigl's HDF5 schema (cigl convert)"),
    OPT("model", OPT_STRING, model, NULL, 0, 0,
        "mlp | lenet5 | resnet20 | resnet32 | resnet56 | wrn-22-2 | resnet50"),
    OPT("out", OPT_STRING, out, NULL, 0, 0,
        "run directory (created; one holding a run needs --resume or --overwrite)"),
    OPT("epochs", OPT_INT, epochs, "1", 1, 100000, "training epochs"),
    OPT("max-steps", OPT_LONG, max_steps, "0", 0, 1e15,
        "stop after this many steps (0: train all epochs; the schedule still spans all epochs)"),
    OPT("batch-size", OPT_INT, batch_size, "128", 1, 65536,
        "global batch size (over all ranks and micro-batches)"),
    OPT("eval-batch-size", OPT_INT, eval_batch_size, "0", 0, 65536,
        "per-rank batch size for evaluation (0: the per-rank micro-batch size)"),
    OPT("accumulate", OPT_INT, accumulate, "1", 1, 65536,
        "micro-batches per rank: the global batch stays --batch-size whatever the rank count"),
    OPT("check-every", OPT_LONG, check_every, "0", 0, 1e15,
        "steps between checks that all ranks hold identical weights (0: each epoch)"),
    OPT("comm-timeout", OPT_DOUBLE, comm_timeout, "600", 0, 1e9,
        "seconds a rank may wait in one collective before it aborts the job naming its peers "
        "(0: forever); outlasts a checkpoint write, evaluation or BN pass on a slow filesystem"),
    OPT("lr", OPT_DOUBLE, lr, "0.1", 0, 1e6, "base learning rate"),
    OPT("momentum", OPT_DOUBLE, momentum, "0.9", 0, 0.999999, "SGD momentum"),
    OPT("nesterov", OPT_FLAG, nesterov, "0", 0, 1, "Nesterov momentum"),
    OPT("weight-decay", OPT_DOUBLE, weight_decay, "5e-4", 0, 1, "L2 weight decay"),
    OPT("decay-all", OPT_FLAG, decay_all, "0", 0, 1,
        "apply weight decay to biases and BN parameters too (default: weights only)"),
    OPT("schedule", OPT_STRING, schedule, "multistep", 0, 0, "multistep | step | cosine | constant"),
    OPT("milestones", OPT_STRING, milestones, "0.5,0.75", 0, 0,
        "multistep: fractions of training at which the lr is multiplied by --gamma"),
    OPT("gamma", OPT_DOUBLE, gamma, "0.1", 0, 1, "lr decay factor (multistep, step)"),
    OPT("step-every", OPT_LONG, step_every, "0", 0, 1e15,
        "step schedule: multiply the lr by --gamma every this many steps"),
    OPT("warmup-steps", OPT_LONG, warmup_steps, "0", 0, 1e15, "linear lr warm-up steps"),
    OPT("seed", OPT_LLONG, seed, "0", 0, 9.2e18, "seed of every random draw"),
    OPT("threads", OPT_INT, threads, "1", 1, 1024, "threads (OpenBLAS and OpenMP)"),
    OPT("val-size", OPT_INT, val_size, "5000", 0, 1e9,
        "training samples held out for validation (0: none)"),
    OPT("crop-pad", OPT_INT, crop_pad, "0", 0, 64, "augmentation: random crop with this padding"),
    OPT("flip", OPT_FLAG, flip, "0", 0, 1, "augmentation: random horizontal flip"),
    OPT("data-mode", OPT_STRING, data_mode, "auto", 0, 0,
        "dataset pixels: auto (in memory up to 256 MiB, else streamed from the file) | memory | "
        "stream (same batches bit for bit)"),
    OPT("label-smoothing", OPT_DOUBLE, label_smoothing, "0", 0, 0.999, "label smoothing epsilon"),
    OPT("mixup", OPT_DOUBLE, mixup, "0", 0, 1000,
        "mixup with lambda ~ Beta(ALPHA, ALPHA) per step (0: off; the paper's comparison: 0.2)"),
    OPT("method", OPT_STRING, method, "dense", 0, 0,
        "{methods}"),
    OPT("sparsity", OPT_DOUBLE, sparsity, "0.9", 0, 0.999999,
        "fraction of prunable (conv and linear) weights that are zero; 0 <= S < 1"),
    OPT("distribution", OPT_STRING, distribution, "erk", 0, 0, "layer-wise density: erk | er | uniform"),
    OPT("update-interval", OPT_LONG, update_interval, "100", 1, 1e15,
        "steps between mask updates ({updating})"),
    OPT("drop-fraction", OPT_DOUBLE, drop_fraction, "0.3", 0, 1,
        "initial drop fraction, cosine-decayed to 0 at --update-end"),
    OPT("update-end", OPT_DOUBLE, update_end, "0.75", 0, 1,
        "fraction of all steps after which masks no longer change"),
    OPT("random-mask-rate", OPT_DOUBLE, random_mask_rate, "0.01", 0, 0.999,
        "{averaging}: probability that an active weight is dropped by the random mask each step "
        "(the paper's text uses 0.1)"),
    OPT("rescale-kept", OPT_FLAG, rescale_kept, "1", 0, 1,
        "{averaging}: multiply kept weights by 1/(1-P) in the forward pass (--mechanics legacy); "
        "cigl's default, like the authors' code (which cancels its own rescaling), does not"),
    OPT("no-rescale-kept", OPT_FLAG_OFF, rescale_kept, NULL, 0, 1,
        "{averaging}: the paper's plain form, no rescaling"),
    OPT("average-start", OPT_DOUBLE, average_start, "0.8", 0, 1,
        "{averaging}: fraction of training after which snapshots are averaged (>= --update-end)"),
    OPT("average-every", OPT_LONG, average_every, "0", 0, 1e15,
        "{averaging}: take a snapshot every this many steps (0: at every epoch end)"),
    OPT("no-averaging", OPT_FLAG, no_averaging, "0", 0, 1,
        "{averaging} ablation: average the snapshots' predictions instead of their weights"),
    OPT("average-start-epoch", OPT_INT, average_start_epoch, "0", 0, 100000,
        "{averaging}: snapshots at the ends of epochs E to the last (1-based, the authors' begin_save); "
        "0: from --average-start in steps. Unless it, --average-start or --average-every is "
        "given: floor(--average-start x epochs), moved to the first epoch ending after the masks "
        "freeze (0 when under 2 epoch ends are left); --mechanics authors: "
        "floor(--average-start x epochs); legacy: 0"),
    OPT("mechanics", OPT_STRING, mechanics, "cigl", 0, 0,
        "cigl | authors | legacy: the default of every mechanism below where cigl and the CigL "
        "authors' code differ: cigl's defaults (chosen by the paired study), the authors' values, "
        "or cigl's values before that study (an option given on its own wins; docs/method.md)"),
    OPT("drop-score", OPT_STRING, drop_score, "auto", 0, 0,
        "{averaging}: drop by |stored W| (stored) or by |the update step's forward weights|, Z "
        "applied (masked; authors); auto: by --mechanics"),
    OPT("z-timing", OPT_STRING, z_timing, "auto", 0, 0,
        "{averaging}: cigl (Z drawn before each forward; dropped weights frozen) | authors (the next "
        "Z drawn before the optimiser step, which moves only what it keeps; momentum of every "
        "active weight integrates its gradient; dropped weights hold their last update); auto: "
        "by --mechanics"),
    OPT("regrown", OPT_STRING, regrown, "auto", 0, 0,
        "a weight dropped and grown back in one update: keep (its weight) | zero (weight 0, "
        "momentum kept; authors); auto: by --mechanics"),
    OPT("dense-layers", OPT_STRING, dense_layers, "auto", 0, 0,
        "density-1 layers at mask updates: fixed | update (the authors' rule: a layer under 20% "
        "sparse is updated only while it holds at most 1/L of the non-zeros, and a dense one "
        "then loses its smallest weights to zero); auto: by --mechanics"),
    OPT("drop-count", OPT_STRING, drop_count, "auto", 0, 0,
        "weights dropped per layer from f x n: round | ceil (authors); auto: by --mechanics"),
    OPT("update-step", OPT_STRING, update_step, "auto", 0, 0,
        "the optimiser step at mask-update steps: take | skip (authors; CigL's Z is then not "
        "redrawn for the next step either); auto: by --mechanics"),
    OPT("zero-init-residual", OPT_FLAG, zero_init_residual, "0", 0, 1,
        "resnets: the last batch norm of each residual block starts with scale 0 (the authors' "
        "own ResNets; not part of --mechanics)"),
    OPT("dropout-rate", OPT_DOUBLE, dropout_rate, "0.1", 0, 0.999,
        "{dropout}: weight dropout rate on active weights"),
    OPT("mc-samples", OPT_INT, mc_samples, "10", 1, 100000,
        "{test-dropout}: dropout samples averaged at test time"),
    OPT("kernels", OPT_STRING, kernels, "auto", 0, 0,
        "conv/linear kernels: auto (per layer, by density and shape; recorded in final.json) | "
        "dense | sparse (compute only the stored weights)"),
    OPT("conv-backend", OPT_STRING, conv_backend, "auto", 0, 0,
        "dense convolutions: auto (onednn when this cigl is built with it; config.json records "
        "the one used) | own (im2col + OpenBLAS) | onednn (oneDNN's primitives; results differ "
        "from own in the last bits, deterministic for a given --threads)"),
    OPT("draw-ahead", OPT_STRING, draw_ahead, "auto", 0, 0,
        "{drawing}: draw the next step's random mask on a helper thread while "
        "this step runs: auto (when --threads leaves a CPU free, or every conv/linear layer is on "
        "the sparse kernels) | on | off; "
        "the same bits either way"),
    OPT("on-nonfinite", OPT_STRING, on_nonfinite, "stop", 0, 0,
        "a NaN or infinite loss or gradient: stop (naming step and layer) | skip the batch "
        "(counted in metrics.jsonl and final.json)"),
    OPT("checkpoint-every", OPT_INT, checkpoint_every, "0", 0, 1000000,
        "write a checkpoint to OUT/checkpoints every this many epochs (0: off)"),
    OPT("checkpoint-minutes", OPT_DOUBLE, checkpoint_minutes, "0", 0, 1e9,
        "also write one every this many minutes of wall time (0: off)"),
    OPT("keep", OPT_INT, keep, "2", 1, 1000000, "checkpoints kept (older ones are deleted)"),
    OPT("resume", OPT_STRING, resume, "", 0, 0,
        "auto (the newest good checkpoint in --out; none: start afresh) or a checkpoint path"),
    OPT("overwrite", OPT_FLAG, overwrite, "0", 0, 1,
        "--out holds a run: delete its files and start afresh"),
    OPT("config", OPT_STRING, config_file, "", 0, 0,
        "read options from a JSON file (any run's config.json); command-line options win"),
    OPT("dry-run", OPT_FLAG, dry_run, "0", 0, 1,
        "print the resolved configuration as JSON and exit"),
    {NULL, OPT_FLAG, 0, 0, NULL, 0, 0, NULL},
};

_Static_assert(sizeof(train_options) / sizeof(train_options[0]) <= CIGL_MAX_OPTIONS,
               "Config.given and Config.loaded are too small for the option table");

const OptionSpec *options_find(const OptionSpec *specs, const char *name, size_t len)
{
    for (const OptionSpec *s = specs; s->name; s++)
        if (strlen(s->name) == len && !strncmp(s->name, name, len)) return s;
    return NULL;
}

/* Stores text `v` into the field of `s`, checking type and range. */
int options_set(void *target, const OptionSpec *s, const char *v, const char *where)
{
    char *field = (char *)target + s->offset;
    if (s->type == OPT_STRING) {
        if (strlen(v) >= s->size)
            return cigl_fail(CIGL_ERR_USAGE, "%s--%s: value longer than %zu characters", where,
                             s->name, s->size - 1);
        strcpy(field, v); /* NOLINT(clang-analyzer-core.NonNullParamChecker): field is in *target */
        return CIGL_OK;
    }
    char *end;
    errno = 0;
    const double d = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(d))
        return cigl_fail(CIGL_ERR_USAGE, "%s--%s: expected a number, got '%s'", where, s->name,
                         v);
    if (d < s->min || d > s->max)
        return cigl_fail(CIGL_ERR_USAGE, "%s--%s: expected a value in [%g, %g], got %s", where,
                         s->name, s->min, s->max, v);
    if (s->type != OPT_DOUBLE && d != floor(d))
        return cigl_fail(CIGL_ERR_USAGE, "%s--%s: expected a whole number, got '%s'", where,
                         s->name, v);
    /* NOLINTBEGIN(clang-analyzer-core.NullDereference): the analyzer loses that `field`, inside
     * *target, is non-null when it assumes the caller's `given` (&c->given) may be NULL */
    switch (s->type) {
    case OPT_INT: case OPT_FLAG: case OPT_FLAG_OFF: *(int *)field = (int)d; break;
    case OPT_LONG: *(long *)field = (long)d; break;
    case OPT_LLONG: *(long long *)field = strtoll(v, NULL, 10); break;
    case OPT_DOUBLE: *(double *)field = d; break;
    case OPT_STRING: break;
    }
    /* NOLINTEND(clang-analyzer-core.NullDereference) */
    return CIGL_OK;
}

void options_defaults(const OptionSpec *specs, void *target)
{
    for (const OptionSpec *s = specs; s->name; s++)
        if (s->def) options_set(target, s, s->def, "");
}

int options_parse(const OptionSpec *specs, void *target, unsigned char *given,
                  const char *command, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            return cigl_fail(CIGL_ERR_USAGE, "unexpected argument '%s'; options start with "
                             "'--' (see 'cigl %s --help')", a, command);
        const char *name = a + 2, *eq = strchr(name, '=');
        const size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const OptionSpec *s = options_find(specs, name, len);
        if (!s)
            return cigl_fail(CIGL_ERR_USAGE, "unknown option '--%.*s'; see 'cigl %s --help' "
                             "for the list", (int)len, name, command);
        if (given) given[s - specs] = 1;
        if ((s->type == OPT_FLAG || s->type == OPT_FLAG_OFF) && !eq) {
            /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): as in options_set */
            *(int *)((char *)target + s->offset) = s->type == OPT_FLAG;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) return cigl_fail(CIGL_ERR_USAGE, "--%s needs a value", s->name);
        int rc = options_set(target, s, v, "");
        if (rc) return rc;
    }
    return CIGL_OK;
}

void config_defaults(Config *c)
{
    memset(c, 0, sizeof(*c));
    options_defaults(train_options, c);
}

int config_parse_args(Config *c, int argc, char **argv)
{
    return options_parse(train_options, c, c->given, "train", argc, argv);
}

/* The index of train option `name` (-1: none). */
static long option_index(const char *name)
{
    const OptionSpec *s = options_find(train_options, name, strlen(name));
    return s ? s - train_options : -1;
}

int config_given(const Config *c, const char *name)
{
    const long i = option_index(name);
    return i >= 0 && c->given[i];
}

int config_given_or_loaded(const Config *c, const char *name)
{
    const long i = option_index(name);
    return i >= 0 && (c->given[i] || c->loaded[i]);
}

void config_forget(Config *c, const char *name)
{
    const long i = option_index(name);
    if (i < 0) return;
    if (train_options[i].def) options_set(c, &train_options[i], train_options[i].def, "");
    c->given[i] = c->loaded[i] = 0;
}

int config_milestones(const Config *c, double *out, int max)
{
    int n = 0;
    const char *p = c->milestones;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || n == max || !(v > 0 && v < 1)) return -1;
        if (n > 0 && v <= out[n - 1]) return -1;
        out[n++] = v;
        p = end;
        if (*p == ',') p++;
        else if (*p) return -1;
    }
    return n;
}

int config_validate(const Config *c)
{
    for (const OptionSpec *s = train_options; s->name; s++)
        if (!s->def && s->type == OPT_STRING && !((const char *)c + s->offset)[0])
            return cigl_fail(CIGL_ERR_USAGE, "--%s is required (%s)", s->name, s->help);
    int known = 0;
    for (int i = 0; model_names[i]; i++) known |= !strcmp(model_names[i], c->model);
    if (!known)
        return cigl_fail(CIGL_ERR_USAGE, "unknown model '%s'; expected one of: mlp, lenet5, "
                         "resnet20, resnet32, resnet56, wrn-22-2, resnet50", c->model);
    const char *sched[] = {"multistep", "step", "cosine", "constant"};
    int ok = 0;
    for (int i = 0; i < 4; i++) ok |= !strcmp(sched[i], c->schedule);
    if (!ok)
        return cigl_fail(CIGL_ERR_USAGE, "unknown --schedule '%s'; expected multistep, step, "
                         "cosine or constant", c->schedule);
    double ms[16];
    if (!strcmp(c->schedule, "multistep") && config_milestones(c, ms, 16) < 0)
        return cigl_fail(CIGL_ERR_USAGE, "--milestones '%s': expected increasing fractions in "
                         "(0, 1) separated by commas, e.g. 0.5,0.75", c->milestones);
    if (strcmp(c->on_nonfinite, "stop") && strcmp(c->on_nonfinite, "skip"))
        return cigl_fail(CIGL_ERR_USAGE, "unknown --on-nonfinite '%s'; expected stop or skip",
                         c->on_nonfinite);
    if (!strcmp(c->schedule, "step") && c->step_every <= 0)
        return cigl_fail(CIGL_ERR_USAGE, "--schedule step needs --step-every STEPS > 0");
    return CIGL_OK;
}

/* Help text with its {group} placeholders replaced by the methods of that group (method.h), so
 * that the help follows the method table: {methods} lists them all as "a | b | c". */
static void print_help_text(FILE *f, const char *help)
{
    for (const char *p = help; *p; p++) {
        const char *end = *p == '{' ? strchr(p, '}') : NULL;
        const int g = end ? method_group_parse(p + 1, (size_t)(end - p - 1)) : -1;
        if (g < 0) {
            fputc(*p, f);
            continue;
        }
        char names[256];
        fputs(g == METHODS_ALL ? method_group_list(METHODS_ALL, " | ", " | ", names, sizeof names)
                               : method_group_list(g, ", ", ", ", names, sizeof names), f);
        p = end;
    }
}

void config_print_help(FILE *f, const OptionSpec *specs)
{
    for (const OptionSpec *s = specs; s->name; s++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s", s->name,
                 s->type == OPT_FLAG || s->type == OPT_FLAG_OFF ? ""
                 : s->type == OPT_STRING ? " TEXT" : " N");
        fprintf(f, "  %-24s ", left);
        print_help_text(f, s->help);
        if (!s->def && s->type == OPT_STRING) fputs(" (required)", f);
        else if (s->def && s->type != OPT_FLAG) fprintf(f, " (default: %s)", s->def);
        fputc('\n', f);
    }
}

void config_write_json(const Config *c, JsonWriter *w)
{
    for (const OptionSpec *s = train_options; s->name; s++) {
        const char *field = (const char *)c + s->offset;
        switch (s->type) {
        case OPT_STRING: json_string(w, s->name, field); break;
        case OPT_FLAG: json_bool(w, s->name, *(const int *)field); break;
        case OPT_FLAG_OFF: break; /* the positive flag records the field */
        case OPT_INT: json_int(w, s->name, *(const int *)field); break;
        case OPT_LONG: json_int(w, s->name, *(const long *)field); break;
        case OPT_LLONG: json_int(w, s->name, *(const long long *)field); break;
        case OPT_DOUBLE: json_double(w, s->name, *(const double *)field); break;
        }
    }
}
