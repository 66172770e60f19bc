/* method.c's use of the random draws (src/method_draw.c); method_draw and
 * method_forget_draws are public (cigl/method.h). */
#ifndef CIGL_METHOD_DRAW_H
#define CIGL_METHOD_DRAW_H
#include "cigl/method.h"

/* The draws' state; the helper thread that draws the next steps' drops (--draw-ahead) starts
 * at the first draw, once the kernels are chosen (auto: method_draw.c's decide_draw_ahead);
 * without it the draws happen on the calling thread. After the masks and counts are set;
 * fails only when out of memory. */
int method_draws_init(MethodState *s, const Model *m);
void method_draws_free(MethodState *s);
/* Waits for the helper (before the mask changes: the helper reads it). */
void method_quiesce_draws(MethodState *s);

#endif
