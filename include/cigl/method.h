/* Sparse-training methods as small tables of hooks (jaxpruner's pattern): RigL differs from SET
 * only in its grow score, CigL is RigL plus the random mask and the averaging. The whole method
 * state (masks, random-mask step, averaging sum and count, snapshots) lives in MethodState so a
 * checkpoint can save it and a resume continue exactly. */
#ifndef CIGL_METHOD_H
#define CIGL_METHOD_H
#include "cigl/comm.h"
#include "cigl/config.h"
#include "cigl/optim.h"
#include "cigl/sparsity.h"

typedef struct MethodState MethodState;
struct RandomDraws;

typedef enum { DRAW_NONE, DRAW_RANDOM_MASK, DRAW_DROPOUT } RandomDraw;

typedef struct {
    const char *name;
    int sparse;             /* keeps masks */
    /* The random weights of every step (method_draw): none (the forward pass reads the
     * parameters themselves), CigL's random mask Z (dropped weights do not move) or weight
     * dropout (they still decay and keep momentum). */
    RandomDraw draw;
    /* Score whose largest entries are grown at a mask update (a view of the gradients, or
     * `scratch` filled); NULL: masks never change. */
    const float *(*grow_score)(const MethodState *s, const Model *m, long step,
                               const ParamTensor *t, float *scratch);
    int averaging;          /* snapshots averaged into the output model (CigL) */
    int test_dropout;       /* dropout kept at test time (MC dropout) */
} MethodOps;

/* Every method, NULL-terminated, in the order the help and `cigl report` list them. Adding a
 * method is one entry here: the help text, the "applies to" checks, the report order and the
 * tests' method list all follow it. */
extern const MethodOps method_table[];
const MethodOps *method_find(const char *name);

/* The methods an option applies to, by what the option acts on. */
typedef enum {
    METHODS_ALL,
    METHODS_SPARSE,         /* keep masks */
    METHODS_UPDATING,       /* masks change (drop and grow) */
    METHODS_AVERAGING,      /* snapshots averaged */
    METHODS_DROPOUT,        /* weight dropout */
    METHODS_DRAWING,        /* a random draw every step */
    METHODS_TEST_DROPOUT,   /* dropout at test time */
    METHODS_GROUPS
} MethodGroup;
int method_in_group(const MethodOps *o, MethodGroup g);
/* The names of group g's methods into buf, joined by sep, the last two by last (e.g. ", " and
 * " and "); returns buf. */
const char *method_group_list(MethodGroup g, const char *sep, const char *last, char *buf,
                              size_t cap);
/* The group named `name` ("methods", "sparse", "updating", "averaging", "dropout", "drawing",
 * "test-dropout": the help text's {name} placeholders); -1 when unknown. */
int method_group_parse(const char *name, size_t len);

/* The mechanisms where cigl and the CigL authors' code differ (docs/method.md, "Authors' mechanics"),
 * resolved from the options: 1 = the authors' way. */
typedef struct {
    int drop_masked;        /* --drop-score masked */
    int z_authors;          /* --z-timing authors */
    int regrown_zero;       /* --regrown zero */
    int dense_update;       /* --dense-layers update */
    int drop_ceil;          /* --drop-count ceil */
    int skip_update_step;   /* --update-step skip */
} MethodRules;

struct MethodState {
    const MethodOps *ops;
    MethodRules rules;
    Comm *comm;             /* rank 0 computes mask updates and broadcasts them (NULL: alone) */
    Config cfg;
    uint64_t seed;
    double keep;            /* 1 - random mask rate (CigL) or 1 - dropout rate (W-DP) */
    float inv_keep;         /* 1 / keep when rescaling, else 1 */
    long total_steps, t_end, steps_per_epoch;
    int n_prunable;
    long *counts;           /* active weights per prunable tensor */

    uint8_t *mask;          /* M: 1 = active; 1 for every non-prunable parameter */
    uint8_t *active;        /* the step mask: M & Z with a random draw, else M; the kernels
                             * skip the rest, CigL's optimiser moves only it (W-DP's all of M) */
    uint8_t *ever;          /* ever active (in-time over-parameterisation) */
    float *weff;            /* effective weights of this step (at the sparse kernels' tensors
                             * only on dense-gradient steps); NULL when they are the params */
    struct RandomDraws *draws; /* the step's drops and the helper drawing the next step's
                                * (method_draw.c); NULL without a draw */
    float *score;           /* grow-score scratch (largest tensor) */
    uint8_t *scratch_mask;  /* the mask before an update (ranks other than 0 apply the diff) */
    DropGrowScratch drop_grow; /* mask_drop_grow's selection buffers, kept between updates */
    float *drop_by;         /* --drop-score masked: the drop's magnitudes (largest tensor) */
    float *held;            /* --z-timing authors: what a weight the random mask drops holds in
                             * the forward pass (its last update, -lr u; 0 after a mask change) */
    long held_z;            /* the step whose random mask s->active holds under held (-1: none):
                             * drawn before the optimiser step, reused by the next forward */
    int masks_changed;      /* set by a mask update; the trainer clears it */

    /* averaging (CigL) */
    float *avg;             /* running mean of the snapshots' effective weights */
    long n_snapshots;
    float *snapshots;       /* --no-averaging: every snapshot's weights ... */
    float *snapshot_bn;     /* ... and BN statistics */
    long snapshot_cap;

    /* bookkeeping for final.json */
    long updates_done;
    double replaced_sum;    /* sum over updates of new active / active */
    long dense_grad_steps;  /* steps whose dense weight gradient the method used */
};

/* --mechanics: every mechanism option left at auto takes cigl's or the authors' value (only
 * those that apply to the method), and under authors CigL's snapshots start at epoch
 * floor(--average-start x epochs) and kept weights are not rescaled, unless given. Call once,
 * before method_validate; config.json then records the resolved values. */
int method_resolve_mechanics(Config *c);
/* Every option whose value --mechanics decides back at its default, neither given nor loaded
 * (so that resolving shows what a --mechanics label gives a run from scratch). */
void method_mechanics_forget(Config *c);
/* Whether two resolved configurations agree on every mechanism, the rescaling and the snapshot
 * epoch (what --mechanics decides). */
int method_mechanics_same(const Config *a, const Config *b);

/* Validates the method options against the chosen method (one-line errors, status 2). */
int method_validate(const Config *c, long total_steps, long steps_per_epoch);

/* Allocates the state and draws the initial masks, zeroing inactive weights. */
int method_init(MethodState *s, const Config *c, Model *m, long total_steps,
                long steps_per_epoch);
/* Before model_free: the helper drawing ahead reads the model's tensors. */
void method_free(MethodState *s);

/* The random weights of `step` (the method has a draw): the step mask M & Z into s->active
 * and the effective weights (W / keep where kept, else 0) into s->weff, at the tensors on the
 * sparse kernels only when `all_weights` (those kernels read W and 1 / keep themselves).
 * docs/method.md's definition bit for bit, wherever it is drawn. */
void method_draw(MethodState *s, const Model *m, long step, int all_weights);
/* The mask or step mask changed outside the method's hooks (a checkpoint was loaded, rank 0's
 * state received): waits for the helper and discards what it drew. */
void method_forget_draws(MethodState *s);
/* Whether a helper thread draws each next step's random mask (--draw-ahead). */
int method_draws_ahead(const MethodState *s);

/* Before the forward pass of 0-based step `step`: returns the weights the layers read, and sets
 * m->wgrad_scale so that weight gradients come out as dL/dW. NULL when the sparse kernels ran
 * out of memory (printed; under MPI the job is aborted). */
const float *method_before_forward(MethodState *s, Model *m, long step);

/* After backward: gradients of weights dropped by weight dropout are zeroed (W-DP). */
void method_after_backward(MethodState *s, Model *m);

/* After the optimiser step of `step`: mask update and snapshot when due. CIGL_ERR_RUNTIME
 * (printed) when memory ran out. */
int method_after_step(MethodState *s, Model *m, Sgd *opt, long step);

/* Whether the mask update / snapshot happens after 0-based step `step`. */
int method_updates_at(const MethodState *s, long step);
int method_snapshots_at(const Config *c, long step, long total_steps, long steps_per_epoch);

/* Replaces the parameters with the averaged weights (when the method averages and
 * --no-averaging is off). The caller recomputes BN statistics afterwards. */
int method_finalize(MethodState *s, Model *m);

/* Training and inference FLOPs of conv and linear layers relative to the dense model
 * (sparse layers in proportion to their density, plus the dense-gradient steps; RigL's
 * accounting). */
void method_flops(const MethodState *s, const Model *m, double *train_rel, double *infer_rel);


/* The method's part of final.json: method, options, target and measured sparsity, per-layer
 * densities, snapshots, mask updates, mask dynamics and FLOPs. */
struct JsonWriter;
void method_write_json(const MethodState *s, const Model *m, struct JsonWriter *w);

/* Weights of ensemble member k at test time: MC-dropout sample k (drawn at step
 * total_steps + k, so it never repeats a training draw) or CigL snapshot k with its BN
 * statistics. Matches EnsembleMember in train.h; ctx is the MethodState. */
const float *method_test_member(void *ctx, int k, Model *m);
/* Members of the test-time ensemble: 1 when the method predicts with one model. */
int method_test_members(const MethodState *s);

/* The loss's targets beyond plain labels: label smoothing and mixup partners. */
typedef struct {
    double label_smoothing;
    const int32_t *mix_labels;  /* NULL: no mixup */
    double mix_lambda;
} LossTargets;

/* One optimisation step of 0-based global step `step` on a prepared batch (x, y) of n samples:
 * the method's hooks around forward, backward and SGD. Gradients are of the loss summed over
 * the batch times grad_scale (1 / global batch). `targets` may be NULL (plain cross-entropy).
 * Returns the summed loss; when it is not finite nothing was updated (or an error was printed:
 * out of memory). */
double method_train_step(MethodState *s, Model *m, Sgd *opt, const float *x, const int32_t *y,
                         int n, float grad_scale, double lr, const LossTargets *targets,
                         long step, float *dlogits, int *correct);

/* The two halves of a step, for data parallelism (gradients are reduced in between):
 * forward, loss and backward with `weights` from method_before_forward (m->grads overwritten;
 * a non-finite loss skips backward), then the method's update: gradient masking, SGD on the
 * moving parameters, mask update and snapshot when due (CIGL_ERR_RUNTIME, printed, when memory
 * ran out). */
double method_forward_backward(MethodState *s, Model *m, const float *weights, const float *x,
                               const int32_t *y, int n, float grad_scale,
                               const LossTargets *targets, float *dlogits, int *correct);
int method_apply_step(MethodState *s, Model *m, Sgd *opt, double lr, long step);

#endif
