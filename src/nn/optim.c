#include "cigl/optim.h"

#include "cigl/error.h"
#include "cigl/threads.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

int sgd_init(Sgd *o, const Model *m, double momentum, double weight_decay, int nesterov,
             int decay_all)
{
    memset(o, 0, sizeof(*o));
    o->momentum = momentum;
    o->weight_decay = weight_decay;
    o->nesterov = nesterov;
    o->velocity = cigl_calloc(m->n_params, sizeof(float), "momentum buffer");
    o->decays = cigl_calloc(m->n_params, 1, "weight-decay flags");
    if (!o->velocity || !o->decays) {
        sgd_free(o);
        return CIGL_ERR_RUNTIME;
    }
    for (int t = 0; t < m->n_tensors; t++)
        if (decay_all || m->tensors[t].kind == PARAM_WEIGHT)
            memset(o->decays + m->tensors[t].off, 1, m->tensors[t].len);
    return CIGL_OK;
}

void sgd_free(Sgd *o)
{
    free(o->velocity);
    free(o->decays);
    memset(o, 0, sizeof(*o));
}

/* The coefficients of one step and the update of one parameter, shared by the loops below so
 * that every path computes the same float operations. */
typedef struct {
    float mu, wd, lr;
    int nesterov;
} SgdCoef;

static SgdCoef sgd_coef(const Sgd *o, double lr)
{
    return (SgdCoef){(float)o->momentum, (float)o->weight_decay, (float)lr, o->nesterov};
}

static inline void sgd_update(SgdCoef c, float *w, float g, float *v, unsigned char decays)
{
    float d = g;
    if (decays) d += c.wd * *w;
    *v = c.mu * *v + d;
    d = c.nesterov ? d + c.mu * *v : *v;
    *w -= c.lr * d;
}

/* The update over [lo, hi) and over rows [r0, r1) of a pattern, on this thread. */
static void sgd_range_body(const Sgd *o, SgdCoef c, float *params, const float *grads,
                           size_t lo, size_t hi, const unsigned char *active, float *mirror,
                           float scale)
{
    for (size_t i = lo; i < hi; i++) {
        if (active && !active[i]) continue;
        sgd_update(c, &params[i], grads[i], &o->velocity[i], o->decays[i]);
        if (mirror) mirror[i] = params[i] * scale;
    }
}

static void sgd_pattern_body(const Sgd *o, SgdCoef c, float *params, const float *grads,
                             size_t off, const SparseMatrix *s, int r0, int r1,
                             const unsigned char *active)
{
    const size_t cols = (size_t)s->cols;
    for (int r = r0; r < r1; r++) {
        const size_t base = off + (size_t)r * cols;
        for (int32_t k = s->row_ptr[r]; k < s->row_ptr[r + 1]; k++) {
            const size_t i = base + (size_t)s->col[k];
            if (active && !active[i]) continue;
            sgd_update(c, &params[i], grads[i], &o->velocity[i], o->decays[i]);
        }
    }
}

/* Large updates split over the threads in fixed parts (each parameter's update is independent,
 * so the result does not depend on the split); small ones run here without entering an OpenMP
 * region at all (CIGL_PARALLEL_IF, threads.h). */
void sgd_step_range_mirror(Sgd *o, float *params, const float *grads, size_t lo, size_t hi,
                           double lr, const unsigned char *active, float *mirror, float scale)
{
    const SgdCoef c = sgd_coef(o, lr);
    CIGL_PARALLEL_IF(hi - lo >= CIGL_PARALLEL_MIN_FLOATS, {
        const size_t t = (size_t)omp_get_thread_num(), T = (size_t)omp_get_num_threads();
        sgd_range_body(o, c, params, grads, lo + (hi - lo) * t / T, lo + (hi - lo) * (t + 1) / T,
                       active, mirror, scale);
    });
}

void sgd_step_range(Sgd *o, float *params, const float *grads, size_t lo, size_t hi, double lr,
                    const unsigned char *active)
{
    sgd_step_range_mirror(o, params, grads, lo, hi, lr, active, NULL, 1.0f);
}

void sgd_step(Sgd *o, float *params, const float *grads, size_t n, double lr,
              const unsigned char *active)
{
    sgd_step_range(o, params, grads, 0, n, lr, active);
}

void sgd_step_held(Sgd *o, float *params, const float *grads, size_t n, double lr,
                   const unsigned char *mask, const unsigned char *kept, float *held)
{
    const SgdCoef c = sgd_coef(o, lr);
    for (size_t i = 0; i < n; i++) {
        if (!mask[i]) continue;
        if (kept[i]) {
            sgd_update(c, &params[i], grads[i], &o->velocity[i], o->decays[i]);
            continue;
        }
        float w = 0.0f; /* the optimiser sees this weight at 0 and leaves it its update */
        sgd_update(c, &w, grads[i], &o->velocity[i], o->decays[i]);
        held[i] = w;
    }
}

void sgd_step_pattern(Sgd *o, float *params, const float *grads, size_t off,
                      const SparseMatrix *s, double lr, const unsigned char *active)
{
    const SgdCoef c = sgd_coef(o, lr);
    CIGL_PARALLEL_IF(s->nnz >= CIGL_PARALLEL_MIN_FLOATS, {
        int r0, r1;
        sparse_split_rows(s, omp_get_thread_num(), omp_get_num_threads(), &r0, &r1);
        sgd_pattern_body(o, c, params, grads, off, s, r0, r1, active);
    });
}

double schedule_lr(const Schedule *s, long step)
{
    double lr = s->base_lr;
    switch (s->kind) {
    case SCHEDULE_CONSTANT:
        break;
    case SCHEDULE_MULTISTEP:
        for (int i = 0; i < s->n_milestones; i++)
            if (step >= (long)llround(s->milestones[i] * (double)s->total_steps)) lr *= s->gamma;
        break;
    case SCHEDULE_STEP:
        /* whole periods elapsed: the integer division is the schedule's floor */
        /* NOLINTNEXTLINE(bugprone-integer-division) */
        if (s->step_every > 0) lr *= pow(s->gamma, (double)(step / s->step_every));
        break;
    case SCHEDULE_COSINE:
        if (s->total_steps > 0)
            lr *= 0.5 * (1.0 + cos(M_PI * (double)step / (double)s->total_steps));
        break;
    }
    if (step < s->warmup_steps) lr *= (double)(step + 1) / (double)s->warmup_steps;
    return lr;
}
