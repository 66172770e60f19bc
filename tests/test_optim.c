/* SGD (momentum, Nesterov, weight decay only where it applies, frozen entries) and the
 * learning-rate schedules, against values computed by hand. */
#include "check.h"
#include "cigl/optim.h"

#include <string.h>

static void build_tiny(Model *m)
{
    model_init_empty(m, "tiny", (Shape){2, 1, 1}, 2);
    model_add_linear(m, "fc", -1, 2, 1); /* weight 2x2, bias 2 */
    model_finalize(m, 1);
}

static void sgd_matches_hand_computation(void)
{
    Model m;
    build_tiny(&m);
    Sgd o;
    CHECK(sgd_init(&o, &m, 0.9, 0.1, 1, 0) == 0, "init");
    CHECK(o.decays[0] == 1 && o.decays[3] == 1 && o.decays[4] == 0 && o.decays[5] == 0,
          "weight decay on weights only");
    float w[6] = {1, -2, 0.5f, 3, 1, -1}, g[6] = {0.5f, 0.5f, -1, 0, 2, 0};
    /* hand: weight 0: d = 0.5 + 0.1*1 = 0.6; v = 0.6; nesterov d = 0.6 + 0.9*0.6 = 1.14;
     * w = 1 - 0.1*1.14 = 0.886. second step with the same g: d = 0.5 + 0.1*0.886 = 0.5886;
     * v = 0.9*0.6 + 0.5886 = 1.1286; d = 0.5886 + 0.9*1.1286 = 1.60434; w = 0.886 - 0.160434 */
    sgd_step(&o, w, g, 6, 0.1, NULL);
    CHECK_CLOSE(w[0], 0.886, 1e-6, 0, "w0 step 1");
    CHECK_CLOSE(w[4], 1 - 0.1 * (2 + 0.9 * 2), 1e-6, 0, "bias: no decay");
    sgd_step(&o, w, g, 6, 0.1, NULL);
    CHECK_CLOSE(w[0], 0.886 - 0.160434, 1e-6, 0, "w0 step 2");
    /* entries that are not active keep weight and velocity */
    unsigned char active[6] = {0, 1, 1, 1, 1, 1};
    const float w0 = w[0], v0 = o.velocity[0], w1 = w[1];
    sgd_step(&o, w, g, 6, 0.1, active);
    CHECK(w[0] == w0 && o.velocity[0] == v0, "inactive entry changed");
    CHECK(w[1] != w1, "active entry did not move");
    sgd_free(&o);
    /* decay_all and plain momentum */
    CHECK(sgd_init(&o, &m, 0.5, 0.1, 0, 1) == 0, "init");
    CHECK(o.decays[4] == 1, "decay-all includes biases");
    float w2[6] = {1, 1, 1, 1, 1, 1}, g2[6] = {0};
    sgd_step(&o, w2, g2, 6, 1.0, NULL); /* v = 0.1, w = 0.9 */
    sgd_step(&o, w2, g2, 6, 1.0, NULL); /* v = 0.05 + 0.09 = 0.14, w = 0.76 */
    CHECK_CLOSE(w2[5], 0.76, 1e-6, 0, "plain momentum");
    sgd_free(&o);
    model_free(&m);
}

/* The update restricted to a stored pattern (optim.h): the same floats as the whole-buffer
 * update at the pattern's entries, nothing moved elsewhere; and runs of whole tensors. */
static void sgd_pattern_and_range(void)
{
    Model m;
    model_init_empty(&m, "pat", (Shape){5, 1, 1}, 3);
    model_add_linear(&m, "fc", -1, 3, 1); /* weight 3x5 at 0, bias 3 at 15 */
    model_finalize(&m, 1);
    const uint8_t mask[15] = {1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0}; /* row 1 empty */
    unsigned char active[18];
    for (int i = 0; i < 18; i++) active[i] = i < 15 ? mask[i] && i != 11 : 1; /* 11 frozen */
    SparseMatrix sp = {0};
    CHECK(sparse_matrix_build(&sp, mask, 3, 5) == 0 && sp.nnz == 6, "pattern");
    Sgd a, b;
    CHECK(sgd_init(&a, &m, 0.9, 0.05, 1, 0) == 0 && sgd_init(&b, &m, 0.9, 0.05, 1, 0) == 0,
          "init");
    float wa[18], wb[18], g[18];
    for (int i = 0; i < 18; i++) {
        wa[i] = wb[i] = i < 15 && !mask[i] ? 0.0f : 0.1f * (float)(i % 7) - 0.3f;
        g[i] = i < 15 && !mask[i] ? 0.0f : 0.05f * (float)(i % 5) - 0.1f;
        a.velocity[i] = b.velocity[i] = i < 15 && !mask[i] ? 0.0f : 0.01f * (float)i;
    }
    for (int step = 0; step < 3; step++) {
        sgd_step(&a, wa, g, 18, 0.1, active);
        sgd_step_pattern(&b, wb, g, 0, &sp, 0.1, active);
        sgd_step_range(&b, wb, g, 15, 18, 0.1, active);
    }
    int same = 1;
    for (int i = 0; i < 18; i++) same &= wa[i] == wb[i] && a.velocity[i] == b.velocity[i];
    CHECK(same, "pattern + range update differs from the whole-buffer update");
    CHECK(wb[11] == 0.1f * 4 - 0.3f && b.velocity[11] == 0.11f, "frozen entry moved");
    CHECK(wb[0] != 0.1f * 0 - 0.3f && wb[16] != 0.1f * 2 - 0.3f, "entries did not move");
    /* a range leaves the rest alone */
    const float before = wb[0];
    sgd_step_range(&b, wb, g, 15, 18, 0.1, NULL);
    CHECK(wb[0] == before, "range update wrote outside its range");
    sparse_matrix_free(&sp);
    sgd_free(&a);
    sgd_free(&b);
    model_free(&m);
}

static void schedules(void)
{
    Schedule s;
    memset(&s, 0, sizeof(s));
    s.kind = SCHEDULE_MULTISTEP;
    s.base_lr = 0.1;
    s.gamma = 0.1;
    s.milestones[0] = 0.5;
    s.milestones[1] = 0.75;
    s.n_milestones = 2;
    s.total_steps = 100;
    CHECK_CLOSE(schedule_lr(&s, 0), 0.1, 1e-15, 0, "multistep start");
    CHECK_CLOSE(schedule_lr(&s, 49), 0.1, 1e-15, 0, "multistep before 50%");
    CHECK_CLOSE(schedule_lr(&s, 50), 0.01, 1e-15, 0, "multistep at 50%");
    CHECK_CLOSE(schedule_lr(&s, 75), 0.001, 1e-15, 0, "multistep at 75%");
    s.warmup_steps = 10;
    CHECK_CLOSE(schedule_lr(&s, 0), 0.01, 1e-15, 0, "warm-up step 0");
    CHECK_CLOSE(schedule_lr(&s, 4), 0.05, 1e-15, 0, "warm-up step 4");
    CHECK_CLOSE(schedule_lr(&s, 10), 0.1, 1e-15, 0, "after warm-up");
    s.warmup_steps = 0;
    s.kind = SCHEDULE_STEP;
    s.step_every = 30;
    s.gamma = 0.5;
    CHECK_CLOSE(schedule_lr(&s, 29), 0.1, 1e-15, 0, "step before");
    CHECK_CLOSE(schedule_lr(&s, 60), 0.025, 1e-15, 0, "step twice");
    s.kind = SCHEDULE_COSINE;
    CHECK_CLOSE(schedule_lr(&s, 50), 0.05, 1e-15, 0, "cosine half-way");
    CHECK_CLOSE(schedule_lr(&s, 100), 0.0, 1e-15, 0, "cosine end");
    CHECK_CLOSE(schedule_lr(&s, 25), 0.05 * (1 + 0.70710678118654752), 1e-12, 0, "cosine 25%");
}

int main(void)
{
    RUN(sgd_matches_hand_computation);
    RUN(sgd_pattern_and_range);
    RUN(schedules);
    return CHECK_SUMMARY();
}
