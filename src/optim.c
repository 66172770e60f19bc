#include "cigl/optim.h"

#include "cigl/error.h"
#include "cigl/threads.h"

#include <math.h>
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

void sgd_step(Sgd *o, float *params, const float *grads, size_t n, double lr,
              const unsigned char *active)
{
    const float mu = (float)o->momentum, wd = (float)o->weight_decay, flr = (float)lr;
    const int nesterov = o->nesterov;
    float *v = o->velocity;
    const unsigned char *decays = o->decays;
#pragma omp parallel for schedule(static) if (n >= CIGL_PARALLEL_MIN_FLOATS)
    for (size_t i = 0; i < n; i++) {
        if (active && !active[i]) continue;
        float d = grads[i];
        if (decays[i]) d += wd * params[i];
        v[i] = mu * v[i] + d;
        d = nesterov ? d + mu * v[i] : v[i];
        params[i] -= flr * d;
    }
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
