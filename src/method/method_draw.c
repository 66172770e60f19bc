/* The random weights of a step (docs/method.md, "CigL: the random mask Z"): CigL's random mask
 * and W-DP's weight dropout.
 *
 * The step mask M & Z is kept as M minus the step's list of dropped positions: each step puts
 * back the previous step's drops and takes out the new ones (at p = 0.01 about 1% of the
 * active weights), so the bytes the kernels read stay in this thread's cache. The list is
 * drawn on this thread, or one step ahead on a helper thread while the previous step runs
 * (--draw-ahead; discarded when the mask changes first). The effective weights W * inv_keep
 * (inv_keep = 1 / keep under --rescale-kept, else 1; 0 where dropped) of the tensors computed
 * densely are written by the optimiser's pass as it moves each weight (sgd_step_range_mirror);
 * a draw only restores the last drops and zeroes the new ones (whole after a mask change).
 * Tensors on the sparse kernels need none: those kernels read W, multiply by inv_keep (the
 * same float) and skip what the step mask drops.
 * Every path gives the bits docs/method.md defines. */
#include "method_draw.h"

#include "cigl/error.h"
#include "cigl/rng.h"
#include "cigl/worker.h"

#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DRAW_CHUNK 1024 /* Philox blocks drawn per batch */
/* Models with fewer prunable weights draw on one thread (waking a passive OpenMP thread costs
 * tens of microseconds on the project's VM, threads.h). */
#define DRAW_PARALLEL_MIN_WEIGHTS ((size_t)1 << 17)

/* Flat indices of the active weights a step's draw drops, ascending; n > cap: more than fit
 * (the list is unusable; the first cap were written). */
typedef struct {
    size_t *idx;
    size_t n, cap;
} DropList;

/* Drawn ahead per wake of the helper: waking a sleeping thread cost 43 us on the project's VM
 * (6% of an mlp step), 8 steps share one wake. */
enum { AHEAD_STEPS = 8 };

/* Steps [start, start + AHEAD_STEPS) drawn under mask version `version` (-1: nothing); the
 * first `drawn` of them are complete (the helper publishes each as it finishes it, so the
 * step after a mask update need not wait for the whole batch). */
typedef struct {
    long start, version;
    atomic_int drawn;
    DropList step[AHEAD_STEPS];
} DropBatch;

typedef struct RandomDraws RandomDraws;
struct RandomDraws {
    DropList cur;           /* this step's drops (room for every active weight): s->active is M
                             * without them */
    long version;           /* updates_done when s->active was built (-1: rebuild from M) */
    long weff_version;      /* updates_done when s->weff was last written whole; while it
                             * holds, the optimiser keeps it at W * inv_keep but for the drops */
    Worker *worker;         /* the helper, NULL: every draw on the calling thread */
    DropBatch batch[2];     /* one in use, the next filled by the helper meanwhile */
    int filling;            /* the batch the helper is filling, -1: none */
    const MethodState *s;   /* what the helper's job reads */
    const Model *m;
    long chunks;            /* DRAW_CHUNK-group chunks of all prunable tensors */
    int n_parts;            /* draws on this thread split over this many OpenMP threads */
    DropList *part;         /* their lists */
    int may_draw_ahead;     /* the helper is still to be decided on (at the first draw) */
};

/* Chunks of DRAW_CHUNK groups of four flat indices that tensor t touches. */
static long tensor_chunks(const ParamTensor *t)
{
    return (long)(((t->off + t->len - 1) / 4 - t->off / 4) / DRAW_CHUNK + 1);
}

static uint32_t draw_purpose(const MethodState *s)
{
    return s->ops->draw == DRAW_RANDOM_MASK ? RNG_RANDOM_MASK : RNG_DROPOUT;
}

/* Appends flat index i to a drop list (counting past its room). */
static inline void drop_append(size_t *idx, size_t cap, size_t *n, size_t i)
{
    if (*n < cap) idx[*n] = i;
    ++*n;
}

/* The drops of `step` in chunk g (DRAW_CHUNK groups of four flat indices) of tensor t: Philox
 * blocks only for the groups that hold an active weight (at 90% sparsity about a third of
 * them). A group shared with the neighbouring tensor (at most one at each end) is drawn word
 * by word. */
static void drops_of_chunk(const MethodState *s, const ParamTensor *t, long step, long g,
                           uint64_t threshold, DropList *out)
{
    const uint8_t *mk = s->mask;
    const uint32_t purpose = draw_purpose(s);
    const size_t off = t->off, end = t->off + t->len;
    const size_t b0 = off / 4 + (size_t)g * DRAW_CHUNK;
    const size_t b1 = (end - 1) / 4 + 1 < b0 + DRAW_CHUNK ? (end - 1) / 4 + 1 : b0 + DRAW_CHUNK;
    const size_t lo = b0 * 4 < off ? off : b0 * 4, hi = b1 * 4 > end ? end : b1 * 4;
    size_t in0 = (lo + 3) / 4, in1 = hi / 4; /* the groups inside [lo, hi) */
    if (in1 < in0) in1 = in0;
    uint64_t need[DRAW_CHUNK];
    uint32_t words[4 * DRAW_CHUNK];
    size_t n = 0, *idx = out->idx, nd = out->n, cap = out->cap;
    /* [lo, head) and [tail, hi) are the shared groups' indices, [4 in0, 4 in1) the rest */
    const size_t head = 4 * in0 < hi ? 4 * in0 : hi, tail = 4 * in1 > head ? 4 * in1 : head;
    for (size_t i = lo; i < head; i++)
        if (mk[i] && rng_u32(s->seed, purpose, (uint64_t)step, i) >= threshold)
            drop_append(idx, cap, &nd, i);
    /* the groups with an active weight, 16 at a time as bits (a running count stored at
     * every group made each iteration wait for the previous one) */
    for (size_t b = in0; b < in1; b += 16) {
        const size_t nb = in1 - b < 16 ? in1 - b : 16;
        uint32_t bits = 0;
        for (size_t j = 0; j < nb; j++) {
            uint32_t m4;
            memcpy(&m4, mk + 4 * (b + j), 4);
            bits |= (uint32_t)(m4 != 0) << j;
        }
        for (; bits; bits &= bits - 1) need[n++] = b + (size_t)__builtin_ctz(bits);
    }
    if (n) rng_blocks_at(s->seed, purpose, (uint64_t)step, need, n, words);
    for (size_t k = 0; k < n; k++) {
        const uint32_t *w = words + 4 * k;
        const uint8_t z[4] = {w[0] >= threshold, w[1] >= threshold, w[2] >= threshold,
                              w[3] >= threshold};
        uint32_t m4, z4; /* bytes in index order whatever a word's byte order */
        memcpy(&m4, mk + 4 * need[k], 4);
        memcpy(&z4, z, 4);
        if (!(m4 & z4)) continue; /* most groups drop nothing */
        for (size_t j = 0; j < 4; j++)
            if (mk[4 * need[k] + j] && z[j]) drop_append(idx, cap, &nd, 4 * need[k] + j);
    }
    for (size_t i = tail; i < hi; i++)
        if (mk[i] && rng_u32(s->seed, purpose, (uint64_t)step, i) >= threshold)
            drop_append(idx, cap, &nd, i);
    out->n = nd;
}

/* The drops of `step` in the prunable tensors' chunks [c0, c1), counted over the tensors in
 * order, appended to out. */
static void draw_drops_range(const MethodState *s, const Model *m, long step, long c0, long c1,
                             DropList *out)
{
    /* x * 2^-32 < keep  <=>  x < keep * 2^32 (exact in double)  <=>  x < ceil(keep * 2^32) */
    const uint64_t threshold = (uint64_t)ceil(s->keep * 0x1p32);
    long base = 0; /* chunks of the tensors before this one */
    for (int ti = 0; ti < m->n_tensors && base < c1; ti++) {
        const ParamTensor *t = &m->tensors[ti];
        if (!t->prunable) continue;
        const long chunks = tensor_chunks(t);
        for (long g = c0 > base ? c0 - base : 0; g < chunks && base + g < c1; g++)
            drops_of_chunk(s, t, step, g, threshold, out);
        base += chunks;
    }
}

/* The drops of `step` in every prunable tensor, on this thread. */
static void draw_drops(const MethodState *s, const Model *m, long step, DropList *out)
{
    out->n = 0;
    draw_drops_range(s, m, step, 0, LONG_MAX, out);
}

/* The same split over the OpenMP threads (each thread its share of the chunks into its own
 * list, joined in order: the same list) when a large layer is on the dense path. Without the
 * split that layer's effective weights were written by one thread and the other read its half
 * from that core's cache in the next GEMM (mlp, 2 threads: forward and backward 0.1 ms
 * slower). A list that overflows its room sends the draw back to one thread. */
static void draw_drops_threads(RandomDraws *r, const MethodState *s, const Model *m, long step)
{
    const int parts = r->n_parts;
    int ok = 0;
    /* only for a large layer on the dense path: the sparse kernels run small layers on one
     * thread, and waking the others for the draw alone cost more than it saved (mlp on sparse
     * kernels, 2 threads: CigL / RigL 1.25 -> 1.42) */
    for (int ti = 0; parts > 1 && ti < m->n_tensors && !ok; ti++) {
        const ParamTensor *t = &m->tensors[ti];
        ok = t->prunable && !m->layers[t->layer].sparse && t->len >= DRAW_PARALLEL_MIN_WEIGHTS;
    }
    if (ok) {
        const long c = r->chunks;
#pragma omp parallel num_threads(parts)
        for (int t = omp_get_thread_num(); t < parts; t += omp_get_num_threads()) {
            r->part[t].n = 0;
            draw_drops_range(s, m, step, c * t / parts, c * (t + 1) / parts, &r->part[t]);
        }
        r->cur.n = 0;
        for (int t = 0; t < parts && ok; t++) {
            ok = r->part[t].n <= r->part[t].cap;
            if (ok) memcpy(r->cur.idx + r->cur.n, r->part[t].idx, sizeof(size_t) * r->part[t].n);
            r->cur.n += r->part[t].n;
        }
    }
    if (!ok) draw_drops(s, m, step, &r->cur);
}

static int draw_ahead_job(void *arg)
{
    RandomDraws *r = arg;
    DropBatch *b = &r->batch[r->filling];
    for (int k = 0; k < AHEAD_STEPS; k++) {
        draw_drops(r->s, r->m, b->start + k, &b->step[k]);
        atomic_store_explicit(&b->drawn, k + 1, memory_order_release);
    }
    return 0;
}

/* Step `step`'s drops from a batch drawn ahead, into r->cur; 0 when none holds them. */
static int take_drawn_ahead(RandomDraws *r, long version, long step)
{
    for (int x = 0; x < 2; x++) {
        const DropBatch *b = &r->batch[x];
        if (b->version != version || step < b->start || step >= b->start + AHEAD_STEPS)
            continue;
        const int k = (int)(step - b->start);
        if (x == r->filling && atomic_load_explicit(&b->drawn, memory_order_acquire) <= k) {
            worker_wait(r->worker); /* not drawn yet (rare: a step is far shorter) */
            r->filling = -1;
        }
        const DropList *l = &b->step[k];
        if (l->n > l->cap) return 0; /* an unlikely count of drops: drawn here */
        memcpy(r->cur.idx, l->idx, sizeof(size_t) * l->n);
        r->cur.n = l->n;
        return 1;
    }
    return 0;
}

/* Has the helper draw the batch after the one holding `step` (or from step + 1), unless it is
 * drawn or being drawn already, or the helper is still busy with one nobody will use. */
static void draw_next_batch(RandomDraws *r, long version, long step)
{
    long start = step + 1;
    int in_use = -1;
    for (int x = 0; x < 2; x++) {
        const DropBatch *b = &r->batch[x];
        if (b->version == version && step >= b->start && step < b->start + AHEAD_STEPS) {
            start = b->start + AHEAD_STEPS;
            in_use = x;
        }
    }
    for (int x = 0; x < 2; x++)
        if (r->batch[x].version == version && r->batch[x].start == start) return;
    if (r->filling >= 0) { /* still drawing the batch in use, or one that the mask's change
                            * made useless: not waited for, posted at a later step */
        if (worker_busy(r->worker)) return;
        worker_wait(r->worker);
    }
    r->filling = in_use == 0 ? 1 : 0;
    r->batch[r->filling].start = start;
    r->batch[r->filling].version = version;
    atomic_store_explicit(&r->batch[r->filling].drawn, 0, memory_order_relaxed);
    worker_post(r->worker, draw_ahead_job, r);
}

/* Room for the drops of one step drawn ahead: the expected count and 8 standard deviations
 * (a binomial count beyond that is drawn on the calling thread instead). */
static size_t ahead_room(size_t active, double drop_rate)
{
    const double mean = drop_rate * (double)active;
    const double room = mean + 8.0 * sqrt(mean * (1.0 - drop_rate)) + 64.0;
    return room < (double)active ? (size_t)room : active;
}

/* CPUs this process may run on: libgomp counts its affinity mask (under MPI with one rank per
 * core, 1). */
static int usable_cpus(void) { return omp_get_num_procs(); }

/* --draw-ahead auto: a helper when a CPU is left over by the OpenMP threads, or when no
 * prunable layer is on the dense path (the sparse kernels run small layers on one thread, so
 * the other threads idle). With GEMMs keeping every CPU busy the helper cost more than it
 * saved (mlp, 2 threads on 2 CPUs, masked dense path: CigL / RigL 1.05-1.06 without it,
 * 1.09-1.11 with it; on sparse kernels 1.38 without, 1.14-1.16 with: tests/bench/README.md). */
static void decide_draw_ahead(RandomDraws *r, const MethodState *s, const Model *m)
{
    r->may_draw_ahead = 0;
    int dense_layer = 0;
    for (int ti = 0; ti < m->n_tensors; ti++)
        dense_layer |= m->tensors[ti].prunable && !m->layers[m->tensors[ti].layer].sparse;
    if (!strcmp(s->cfg.draw_ahead, "on") || usable_cpus() > s->cfg.threads || !dense_layer)
        r->worker = worker_start(); /* NULL: no thread, this one draws (same bits) */
}

void method_draw(MethodState *s, const Model *m, long step, int all_weights)
{
    RandomDraws *r = s->draws;
    uint8_t *act = s->active;
    if (r->may_draw_ahead) decide_draw_ahead(r, s, m);
    const float *w = m->params;
    const float ik = s->inv_keep;
    /* the effective weights of the tensors updated whole are W * inv_keep but for the last drops
     * (the optimiser's pass wrote them), unless the mask changed or they were never written */
    const int weff_kept = r->weff_version == s->updates_done;
    if (r->version == s->updates_done) { /* the mask is unchanged: put last step's drops back */
        for (size_t k = 0; k < r->cur.n; k++) {
            const size_t i = r->cur.idx[k];
            act[i] = 1;
            if (weff_kept) s->weff[i] = w[i] * ik;
        }
    } else {
        memcpy(act, s->mask, m->n_params);
    }
    if (!r->worker || !take_drawn_ahead(r, s->updates_done, step))
        draw_drops_threads(r, s, m, step);
    for (size_t k = 0; k < r->cur.n; k++) act[r->cur.idx[k]] = 0;
    r->version = s->updates_done;
    /* the effective weights: W * inv_keep (W is exactly +0 off the mask), then the drops zeroed;
     * a tensor on the sparse kernels only when asked (its kernels read W) */
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const ParamTensor *t = &m->tensors[ti];
        float *we = s->weff + t->off;
        if (!t->prunable) {
            memcpy(we, w + t->off, sizeof(float) * t->len);
            continue;
        }
        const int sparse = m->layers[t->layer].sparse != NULL;
        if (sparse ? !all_weights : weff_kept) continue;
        const float *wt = w + t->off;
        /* split like the drops when they are: each thread's share stays in its cache */
        const long len = (long)t->len;
        if (r->n_parts > 1 && t->len >= DRAW_PARALLEL_MIN_WEIGHTS) {
            _Pragma("omp parallel for simd schedule(static) num_threads(r->n_parts)")
            for (long i = 0; i < len; i++) we[i] = wt[i] * ik;
        } else {
            _Pragma("omp simd")
            for (long i = 0; i < len; i++) we[i] = wt[i] * ik;
        }
    }
    for (size_t k = 0; k < r->cur.n; k++) s->weff[r->cur.idx[k]] = 0.0f;
    r->weff_version = s->updates_done;
    if (r->worker) draw_next_batch(r, s->updates_done, step);
}

void method_forget_draws(MethodState *s)
{
    RandomDraws *r = s->draws;
    if (!r) return;
    method_quiesce_draws(s);
    r->version = r->weff_version = r->batch[0].version = r->batch[1].version = -1;
}

int method_draws_ahead(const MethodState *s) { return s->draws && s->draws->worker; }

void method_quiesce_draws(MethodState *s)
{
    RandomDraws *r = s->draws;
    if (!r || r->filling < 0) return;
    worker_wait(r->worker);
    r->filling = -1;
}

int method_draws_init(MethodState *s, const Model *m)
{
    size_t active = 0; /* the most a draw can drop (mask updates keep the counts) */
    for (int l = 0; l < s->n_prunable; l++) active += (size_t)s->counts[l];
    RandomDraws *r = cigl_calloc(1, sizeof *r, "random-draw state");
    if (!r) return CIGL_ERR_RUNTIME;
    s->draws = r;
    r->s = s;
    r->m = m;
    r->version = r->weff_version = r->batch[0].version = r->batch[1].version = -1;
    r->filling = -1;
    r->cur.cap = active;
    r->cur.idx = cigl_malloc(sizeof(size_t) * (active + 1), "dropped positions");
    if (!r->cur.idx) return CIGL_ERR_RUNTIME;
    size_t prunable = 0;
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const ParamTensor *t = &m->tensors[ti];
        if (!t->prunable) continue;
        prunable += t->len;
        r->chunks += tensor_chunks(t);
    }
    const size_t room = ahead_room(active, 1.0 - s->keep);
    const int threads = omp_get_max_threads();
    /* per-thread lists only where they are small (at most 64 MiB in all) */
    if (threads > 1 && prunable >= DRAW_PARALLEL_MIN_WEIGHTS &&
        (double)threads * (double)room * sizeof(size_t) <= 64.0 * 1048576) {
        r->part = cigl_calloc((size_t)threads, sizeof *r->part, "per-thread drop lists");
        if (!r->part) return CIGL_ERR_RUNTIME;
        r->n_parts = threads;
        for (int t = 0; t < threads; t++) {
            r->part[t].cap = room;
            r->part[t].idx = cigl_malloc(sizeof(size_t) * (room + 1), "per-thread drop list");
            if (!r->part[t].idx) return CIGL_ERR_RUNTIME;
        }
    }
    const char *mode = s->cfg.draw_ahead;
    if (!strcmp(mode, "off") || (!strcmp(mode, "auto") && usable_cpus() < 2)) return CIGL_OK;
    const size_t ahead = ahead_room(active, 1.0 - s->keep);
    for (int x = 0; x < 2; x++)
        for (int k = 0; k < AHEAD_STEPS; k++) {
            DropList *l = &r->batch[x].step[k];
            l->cap = ahead;
            l->idx = cigl_malloc(sizeof(size_t) * (ahead + 1), "dropped positions drawn ahead");
            if (!l->idx) return CIGL_ERR_RUNTIME;
        }
    r->may_draw_ahead = 1; /* decided at the first draw, when the kernels are chosen */
    return CIGL_OK;
}

void method_draws_free(MethodState *s)
{
    RandomDraws *r = s->draws;
    if (!r) return;
    worker_stop(r->worker);
    free(r->cur.idx);
    for (int t = 0; t < r->n_parts; t++) free(r->part[t].idx);
    free(r->part);
    for (int x = 0; x < 2; x++)
        for (int k = 0; k < AHEAD_STEPS; k++) free(r->batch[x].step[k].idx);
    free(r);
    s->draws = NULL;
}
