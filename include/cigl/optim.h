/* SGD with momentum (PyTorch's rule, dampening 0) and the learning-rate schedules. */
#ifndef CIGL_OPTIM_H
#define CIGL_OPTIM_H
#include "cigl/model.h"
#include "cigl/sparse.h"

typedef struct {
    double momentum, weight_decay;
    int nesterov;
    float *velocity;        /* momentum buffer, laid out like the parameters */
    unsigned char *decays;  /* per parameter: 1 when weight decay applies */
} Sgd;

/* Weight decay applies to conv/linear weights only, or to every parameter when decay_all
 * (biases and BN parameters are exempt by default, as in the CigL authors' code). */
int sgd_init(Sgd *o, const Model *m, double momentum, double weight_decay, int nesterov,
             int decay_all);
void sgd_free(Sgd *o);

/* One step: d = g + wd * w; v = momentum * v + d; d = nesterov ? d + momentum * v : v;
 * w -= lr * d. Only parameters with active[i] != 0 move; the others are left untouched,
 * state included (inactive weights, weights dropped by the random mask). active may be NULL:
 * everything moves. */
void sgd_step(Sgd *o, float *params, const float *grads, size_t n, double lr,
              const unsigned char *active);
/* The same update for the parameters [lo, hi) only. */
void sgd_step_range(Sgd *o, float *params, const float *grads, size_t lo, size_t hi, double lr,
                    const unsigned char *active);
/* The same, and every parameter that moves is also written, times scale, to mirror[i]: CigL's
 * effective weights for the next step, in the pass the optimiser makes anyway. */
void sgd_step_range_mirror(Sgd *o, float *params, const float *grads, size_t lo, size_t hi,
                           double lr, const unsigned char *active, float *mirror, float scale);
/* The CigL authors' step (--z-timing authors, docs/method.md "Authors' mechanics"): every parameter
 * with mask[i] takes the update with its gradient and momentum, but only those with kept[i]
 * (the next step's random mask) move; each other one is taken as 0, and its update, -lr * d,
 * goes to held[i] (what it holds in the next forward pass) while its weight stays. */
void sgd_step_held(Sgd *o, float *params, const float *grads, size_t n, double lr,
                   const unsigned char *mask, const unsigned char *kept, float *held);
/* The same update only at the stored entries of pattern s of the tensor at offset off (flat
 * index off + i * s->cols + j): a tensor computed by the sparse kernels, whose positions off
 * the pattern (the mask M) hold zero weights, gradients and state that no step moves, so
 * visiting them changes nothing. At 95% sparsity this is a twentieth of the tensor. */
void sgd_step_pattern(Sgd *o, float *params, const float *grads, size_t off,
                      const SparseMatrix *s, double lr, const unsigned char *active);

typedef enum { SCHEDULE_CONSTANT, SCHEDULE_MULTISTEP, SCHEDULE_STEP, SCHEDULE_COSINE } ScheduleKind;

#define SCHEDULE_MAX_MILESTONES 16
typedef struct {
    ScheduleKind kind;
    double base_lr, gamma;
    double milestones[SCHEDULE_MAX_MILESTONES]; /* fractions of total_steps, increasing */
    int n_milestones;
    long step_every;        /* SCHEDULE_STEP: multiply by gamma every this many steps */
    long warmup_steps;      /* linear warm-up from base_lr / warmup_steps */
    long total_steps;
} Schedule;

/* Learning rate used by the update at 0-based global step `step`. */
double schedule_lr(const Schedule *s, long step);

#endif
