/* The training configuration: one struct, described by one option table that drives parsing,
 * validation, --help and config.json, so the four can never disagree. */
#ifndef CIGL_CONFIG_H
#define CIGL_CONFIG_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Room for the option table's flags in Config (given, loaded); config.c asserts it fits. */
#define CIGL_MAX_OPTIONS 96

typedef struct {
    char data[512];
    char model[32];
    char out[512];
    int epochs;
    long max_steps;         /* stop after this many steps (0: no limit); for smoke runs */
    int batch_size;
    double lr, momentum, weight_decay;
    int nesterov, decay_all;
    char schedule[16];
    char milestones[128];
    double gamma;
    long step_every, warmup_steps;
    long long seed;
    int threads;
    int val_size;
    int crop_pad, flip;
    char data_mode[8];      /* auto | memory | stream: dataset pixels held or read on demand */
    double label_smoothing;
    double mixup;           /* Beta(alpha, alpha) mixing; 0: off */
    int eval_batch_size;
    int accumulate;         /* micro-batches per rank per global batch */
    long check_every;       /* steps between cross-rank weight checks (0: each epoch) */
    double comm_timeout;    /* watchdog: seconds in one collective before aborting (0: off) */
    /* sparse training (docs/method.md) */
    char method[16];
    double sparsity;
    char distribution[16];
    long update_interval;
    double drop_fraction, update_end;
    double random_mask_rate;
    int rescale_kept;
    double average_start;
    long average_every;
    int no_averaging;
    int average_start_epoch; /* snapshots at the ends of epochs E.. (1-based); 0: --average-start */
    /* where cigl's mechanics and the CigL authors' code differ (docs/method.md):
     * --mechanics picks a side for every one not given on its own */
    char mechanics[8];      /* cigl | authors | legacy */
    char drop_score[8];     /* stored | masked: |W|, or |the step's forward weights| */
    char z_timing[8];       /* cigl | authors: when Z is drawn relative to the optimiser step */
    char regrown[8];        /* keep | zero: a weight dropped and grown back in one update */
    char dense_layers[8];   /* fixed | update: density-1 (and nearly dense) layers at updates */
    char drop_count[8];     /* round | ceil: k from f * n */
    char update_step[8];    /* take | skip: the optimiser step at mask-update steps */
    int zero_init_residual; /* the last BN of each residual block starts at gamma 0 */
    double dropout_rate;
    int mc_samples;
    char on_nonfinite[8];   /* "stop" or "skip" */
    char kernels[8];        /* auto | dense | sparse: conv/linear kernels (sparse.h) */
    char draw_ahead[8];     /* auto | on | off: the next step's random draw on a helper thread */
    char conv_backend[8];   /* auto | own | onednn: dense conv kernels (conv_backend.h); training
                             * replaces auto by the backend it resolved to */
    /* checkpoints, resuming, configuration files: how the run is carried out, not what it
     * computes (a resumed run may change them) */
    int checkpoint_every;   /* epochs between checkpoints (0: none) */
    double checkpoint_minutes; /* minutes of wall time between checkpoints (0: none) */
    int keep;               /* checkpoints kept */
    char resume[512];       /* "auto", a checkpoint path, or "" */
    int overwrite;
    char config_file[512];
    int dry_run;
    /* which options the user gave (index into train_options), to refuse ones that do not
     * apply to the chosen method */
    unsigned char given[CIGL_MAX_OPTIONS];
    /* which options a loaded JSON (--config, a checkpoint) set, default-valued ones too:
     * --mechanics leaves them as the file says (a file records resolved values) */
    unsigned char loaded[CIGL_MAX_OPTIONS];
} Config;

/* OPT_FLAG sets its int field to 1, OPT_FLAG_OFF (e.g. --no-rescale-kept) sets it to 0. */
typedef enum { OPT_INT, OPT_LONG, OPT_LLONG, OPT_DOUBLE, OPT_STRING, OPT_FLAG, OPT_FLAG_OFF } OptType;

typedef struct {
    const char *name;       /* without the leading "--" */
    OptType type;
    size_t offset, size;    /* field in Config; size for strings */
    const char *def;        /* default as text; NULL: required */
    double min, max;        /* inclusive range for numbers */
    const char *help;
} OptionSpec;

extern const OptionSpec train_options[];

/* Generic option handling over any table and struct (cigl train, cigl eval). given (may be
 * NULL) gets given[index of option] = 1 for every option on the command line. */
void options_defaults(const OptionSpec *specs, void *target);
int options_parse(const OptionSpec *specs, void *target, unsigned char *given,
                  const char *command, int argc, char **argv);

/* The option named name[0..len) in `specs`, or NULL. */
const OptionSpec *options_find(const OptionSpec *specs, const char *name, size_t len);
/* Stores text `v` into the option's field, checking type and range (one-line error starting
 * with `where`, e.g. "run.json:12: ", or ""). */
int options_set(void *target, const OptionSpec *s, const char *v, const char *where);

/* Sets every field to its default. */
void config_defaults(Config *c);

/* Parses "--name value" / "--name=value" / "--flag" from argv[0..argc). Returns CIGL_OK, or
 * CIGL_ERR_USAGE after printing one line naming the bad option and the fix. */
int config_parse_args(Config *c, int argc, char **argv);

/* Checks cross-option consistency (required options present, schedule names, milestones). */
int config_validate(const Config *c);

/* Prints the options with their defaults and help. */
void config_print_help(FILE *f, const OptionSpec *specs);

/* Writes the options as members of a JSON object (no braces) via the JSON writer. */
struct JsonWriter;
void config_write_json(const Config *c, struct JsonWriter *w);

/* Applies the options of a JSON object (a --config file or a run's config.json: option
 * names as keys, a "provenance" member ignored). An option counts as given when its value
 * differs from the default, so a saved configuration does not trip the checks on options
 * that do not apply to a method. `source` names the file in errors (status 2). */
struct JsonValue;
int config_apply_json(Config *c, const struct JsonValue *obj, const char *source);

/* Options written by cigl before --mechanics existed (2026-12-06: no "mechanics" key) ran
 * cigl's own values: their mechanics becomes legacy, as if the file said so. */
void config_mark_unversioned_legacy(Config *c, const struct JsonValue *obj);

/* Reads `path` as JSON and applies it (config_apply_json); a run's config.json from before
 * --mechanics keeps its values (config_mark_unversioned_legacy). */
int config_load_file(Config *c, const char *path);

/* The options as one JSON object (malloc'ed text; NULL when out of memory). */
char *config_json_text(const Config *c, int pretty);

/* Defaults, then the --config file if argv names one, then argv (command line wins). */
int config_resolve_args(Config *c, int argc, char **argv);

/* Whether option `name` was given explicitly. */
int config_given(const Config *c, const char *name);
/* Whether option `name` was given or set by a loaded JSON (config_apply_json). */
int config_given_or_loaded(const Config *c, const char *name);
/* Option `name` back at its default, neither given nor loaded. */
void config_forget(Config *c, const char *name);

/* Parses --milestones "0.5,0.75" into out[]; returns the count or -1. */
int config_milestones(const Config *c, double *out, int max);

#endif
