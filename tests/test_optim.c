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
    RUN(schedules);
    return CHECK_SUMMARY();
}
