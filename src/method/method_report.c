/* What a sparse method reports (final.json) and how it predicts at test time. */
#include "cigl/json.h"
#include "cigl/method.h"
#include "cigl/sparse.h"

#include <string.h>

void method_write_json(const MethodState *s, const Model *m, JsonWriter *w)
{
    const Config *c = &s->cfg;
    json_object_begin(w, "method");
    json_string(w, "name", c->method);
    if (s->ops->sparse) {
        json_string(w, "distribution", c->distribution);
        json_double(w, "sparsity_target", c->sparsity);
    }
    if (s->ops->grow_score) {
        json_int(w, "update_interval", c->update_interval);
        json_double(w, "drop_fraction", c->drop_fraction);
        json_double(w, "update_end", c->update_end);
        json_int(w, "update_end_step", s->t_end);
    }
    if (s->ops->averaging) {
        json_double(w, "random_mask_rate", c->random_mask_rate);
        json_bool(w, "rescale_kept", c->rescale_kept);
        json_double(w, "average_start", c->average_start);
        json_int(w, "average_every", c->average_every);
        json_bool(w, "averaging", !c->no_averaging);
        json_int(w, "snapshots", s->n_snapshots);
    }
    if (s->ops->draw && !s->ops->averaging) json_double(w, "dropout_rate", c->dropout_rate);
    if (s->ops->test_dropout) json_int(w, "mc_samples", c->mc_samples);
    if (s->ops->draw) { /* the option and what it came to (auto: a CPU to spare) */
        json_string(w, "draw_ahead_option", c->draw_ahead);
        json_bool(w, "draw_ahead", method_draws_ahead(s));
    }
    json_object_end(w);

    size_t prunable = 0, active = 0, ever = 0;
    json_array_begin(w, "layers");
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const ParamTensor *t = &m->tensors[ti];
        if (!t->prunable) continue;
        size_t a = 0, e = 0;
        for (size_t i = t->off; i < t->off + t->len; i++) {
            a += s->mask[i];
            e += s->ever[i];
        }
        prunable += t->len;
        active += a;
        ever += e;
        json_object_begin(w, NULL);
        json_string(w, "tensor", t->name);
        json_int(w, "weights", (long long)t->len);
        json_int(w, "active", (long long)a);
        json_double(w, "density", (double)a / (double)t->len);
        json_string(w, "kernel", sparse_layer_kernel(m, t->layer));
        json_object_end(w);
    }
    json_array_end(w);
    json_double(w, "sparsity_measured", prunable ? 1.0 - (double)active / (double)prunable : 0);
    json_int(w, "prunable_weights", (long long)prunable);
    json_int(w, "active_weights", (long long)active);
    char kernels[1024];
    if (sparse_choice_format(m, kernels, sizeof(kernels)) >= 0) {
        json_string(w, "kernels_option", s->cfg.kernels);
        json_string(w, "kernels", kernels); /* per conv/linear layer, tensor order */
    }
    json_int(w, "mask_updates", s->updates_done);
    json_double(w, "mask_replaced_fraction_mean",
                s->updates_done ? s->replaced_sum / (double)s->updates_done : 0);
    json_double(w, "ever_active_fraction", prunable ? (double)ever / (double)prunable : 0);
    double train_rel, infer_rel;
    method_flops(s, m, &train_rel, &infer_rel);
    json_double(w, "train_flops_relative_to_dense", train_rel);
    json_double(w, "inference_flops_relative_to_dense", infer_rel);
}

int method_test_members(const MethodState *s)
{
    if (s->ops->test_dropout) return s->cfg.mc_samples;
    if (s->ops->averaging && s->cfg.no_averaging) return (int)s->n_snapshots;
    return 1;
}

const float *method_test_member(void *ctx, int k, Model *m)
{
    MethodState *s = ctx;
    if (s->ops->test_dropout) {
        method_draw(s, m, s->total_steps + k, 1);
        return s->weff;
    }
    if (s->ops->averaging && s->cfg.no_averaging) {
        memcpy(m->bn_stats, s->snapshot_bn + (size_t)k * (m->n_bn_stats + 1),
               sizeof(float) * m->n_bn_stats);
        return s->snapshots + (size_t)k * m->n_params;
    }
    return m->params;
}
