/* Sparsity (docs/method.md, layer densities and "RigL: mask updates"): exact layer counts for
 * uniform / ER / ERK on the real models and on hand-made shape lists, initial masks, RigL
 * drop-and-grow on hand-computed vectors, the drop-fraction schedule and the k rounding of the
 * mask update.
 *
 * With CIGL_DUMP_COUNTS=path it only writes every counts case (shapes and our counts) as JSON to
 * path and exits: tests/t_sparsity_reference.sh compares them with the independent Python
 * reference tests/sparsity_reference.py. */
#include "check.h"
#include "cigl/config.h"
#include "cigl/method.h"
#include "cigl/model.h"
#include "cigl/optim.h"
#include "cigl/sparsity.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the cases ------------------------------------------------------------------------- */

typedef struct {
    const char *label, *model;
    Shape input;
    int classes;
} ModelCase;

static const ModelCase model_cases[] = {
    {"mlp", "mlp", {1, 28, 28}, 10},
    {"lenet5", "lenet5", {1, 28, 28}, 10},
    {"resnet20", "resnet20", {3, 32, 32}, 10},
    {"wrn-22-2", "wrn-22-2", {3, 32, 32}, 100},
    {"resnet50-32x32-100", "resnet50", {3, 32, 32}, 100},
    {"resnet50-224x224-1000", "resnet50", {3, 224, 224}, 1000},
};
#define N_MODELS ((int)(sizeof(model_cases) / sizeof(model_cases[0])))

/* Densities in parts per million, so that the exact target round(density * total) is integer
 * arithmetic. Each is used as given (ppm / 1e6: the double nearest 0.1, as the literal 0.1) and
 * as the program computes it from --sparsity: 1 - (1e6 - ppm) / 1e6 (0.09999999999999998). */
static const long model_ppm[] = {500000, 200000, 100000, 50000, 10000, 1000};
#define N_MODEL_DENSITIES ((int)(sizeof(model_ppm) / sizeof(model_ppm[0])))

static double ppm_density(long ppm, int from_sparsity)
{
    return from_sparsity ? 1.0 - (double)(1000000 - ppm) / 1e6 : (double)ppm / 1e6;
}

/* round(ppm / 1e6 * total), half away from zero, exactly */
static long exact_target(long ppm, long total)
{
    return (ppm * total + 500000) / 1000000;
}

/* Hand-made shape lists (a dim of 0 ends a shape: linear weights have 2 dims). */
#define MAX_SHAPES 8
typedef struct {
    const char *label;
    int n;
    int shape[MAX_SHAPES][4];
} ShapeCase;

static const ShapeCase shape_cases[] = {
    /* ERK/ER: r = 0.75, 0.375, 0.1875, 0.047, 0.0059; at density 0.5 the first four become
     * dense one per iteration (eps = 73.6, 74.0, 75.0, 76.9, then 83.9 * 0.0059 = 0.49) */
    {"cascade-linear", 5, {{4, 2}, {8, 4}, {16, 8}, {64, 32}, {512, 256}}},
    /* the same with convolutions: ERK and ER ratios differ (kernel terms) */
    {"cascade-conv", 5, {{8, 3, 3, 3}, {16, 8, 3, 3}, {32, 16, 3, 3}, {64, 32, 3, 3}, {10, 64}}},
    /* ties in r across different shapes: [4,4], [6,3], [3,6] all have r = 1/2 */
    {"ties-r-linear", 5, {{4, 4}, {6, 3}, {3, 6}, {100, 50}, {500, 200}}},
    /* ties in r between identical convolutions (and, for ER, between [2,2,1,1] and [2,2]) */
    {"ties-r-conv", 6, {{3, 3, 3, 3}, {3, 3, 3, 3}, {64, 3, 3, 3}, {16, 64, 3, 3}, {2, 2, 1, 1},
                        {2, 2}}},
    {"erk-3", 3, {{2, 2, 1, 1}, {2, 2}, {100, 100}}},
    /* total 25: at density 0.1 the target is round(2.5) = 3 */
    {"half-target", 2, {{5, 3}, {5, 2}}},
    /* ties in the fractional parts: identical layers */
    {"frac-ties", 3, {{10, 1}, {10, 1}, {10, 1}}},
    /* the zero-count rule */
    {"zero-1", 2, {{2, 1}, {1000, 1000}}},
    {"zero-3", 5, {{3, 1}, {1500, 7}, {5, 1}, {1234, 5}, {2, 2}}},
    {"zero-3-swapped", 5, {{3, 1}, {1234, 5}, {5, 1}, {1500, 7}, {2, 2}}},
    {"zero-many", 8, {{1, 1}, {2, 1}, {1, 3}, {50, 40}, {2, 2}, {30, 30}, {1, 1}, {700, 3}}},
    /* target < number of layers at low densities: some layers must stay at 0 */
    {"infeasible", 5, {{3, 1}, {3, 1}, {3, 1}, {3, 1}, {5, 1}}},
};
#define N_SHAPE_CASES ((int)(sizeof(shape_cases) / sizeof(shape_cases[0])))

static const long shape_ppm[] = {1000000, 900000, 500000, 200000, 150000, 100000, 50000,
                                 10000, 1000};
#define N_SHAPE_DENSITIES ((int)(sizeof(shape_ppm) / sizeof(shape_ppm[0])))

static const Distribution dists[] = {DIST_UNIFORM, DIST_ER, DIST_ERK};

static Model models[N_MODELS];
static int models_built;

static void build_models(void)
{
    if (models_built) return;
    for (int i = 0; i < N_MODELS; i++)
        if (model_build(&models[i], model_cases[i].model, model_cases[i].input,
                        model_cases[i].classes, 1, 1) != 0) {
            fprintf(stderr, "cannot build %s\n", model_cases[i].label);
            exit(1);
        }
    models_built = 1;
}

static int shape_ndim(const int *s)
{
    int d = 0;
    while (d < 4 && s[d] > 0) d++;
    return d;
}

static long shape_size(int ndim, const int *s)
{
    long p = 1;
    for (int d = 0; d < ndim; d++) p *= s[d];
    return p;
}

/* A flat list of tensors to count, from a model or a shape case. */
typedef struct {
    int n;
    int ndim[512];
    int shape[512][4];
} ShapeList;

static void shapes_of_model(const Model *m, ShapeList *sl)
{
    sl->n = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        if (!m->tensors[t].prunable) continue;
        sl->ndim[sl->n] = m->tensors[t].ndim;
        memcpy(sl->shape[sl->n], m->tensors[t].shape, sizeof(int[4]));
        for (int d = m->tensors[t].ndim; d < 4; d++) sl->shape[sl->n][d] = 0;
        sl->n++;
    }
}

static void shapes_of_case(const ShapeCase *c, ShapeList *sl)
{
    sl->n = c->n;
    for (int l = 0; l < c->n; l++) {
        memcpy(sl->shape[l], c->shape[l], sizeof(int[4]));
        sl->ndim[l] = shape_ndim(c->shape[l]);
    }
}

static long total_of(const ShapeList *sl)
{
    long t = 0;
    for (int l = 0; l < sl->n; l++) t += shape_size(sl->ndim[l], sl->shape[l]);
    return t;
}

/* ---- dump for the Python reference ------------------------------------------------------ */

static void dump_case(FILE *f, int *first, const char *name, Distribution dist, long ppm,
                      int from_sparsity, const ShapeList *sl, const long *counts)
{
    fprintf(f, "%s\n{\"name\": \"%s\", \"dist\": \"%s\", \"density\": %.17g, ",
            *first ? "" : ",", name, distribution_name(dist), ppm_density(ppm, from_sparsity));
    if (from_sparsity) fprintf(f, "\"sparsity\": %.17g, ", (double)(1000000 - ppm) / 1e6);
    fprintf(f, "\"shapes\": [");
    for (int l = 0; l < sl->n; l++) {
        fprintf(f, "%s[", l ? ", " : "");
        for (int d = 0; d < sl->ndim[l]; d++) fprintf(f, "%s%d", d ? ", " : "", sl->shape[l][d]);
        fprintf(f, "]");
    }
    fprintf(f, "], \"counts\": [");
    for (int l = 0; l < sl->n; l++) fprintf(f, "%s%ld", l ? ", " : "", counts[l]);
    fprintf(f, "]}");
    *first = 0;
}

static int dump_counts(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    build_models();
    static ShapeList sl;
    static long counts[512];
    int first = 1;
    fprintf(f, "{\"cases\": [");
    for (int i = 0; i < N_MODELS; i++) {
        shapes_of_model(&models[i], &sl);
        for (int di = 0; di < 3; di++)
            for (int k = 0; k < N_MODEL_DENSITIES; k++)
                for (int fs = 0; fs < 2; fs++) {
                    sparsity_layer_counts(&models[i], dists[di], ppm_density(model_ppm[k], fs),
                                          counts);
                    dump_case(f, &first, model_cases[i].label, dists[di], model_ppm[k], fs, &sl,
                              counts);
                }
    }
    for (int i = 0; i < N_SHAPE_CASES; i++) {
        shapes_of_case(&shape_cases[i], &sl);
        for (int di = 0; di < 3; di++)
            for (int k = 0; k < N_SHAPE_DENSITIES; k++)
                for (int fs = 0; fs < 2; fs++) {
                    sparsity_counts_for_shapes(sl.n, sl.ndim, (const int(*)[4])sl.shape,
                                               dists[di], ppm_density(shape_ppm[k], fs), counts);
                    dump_case(f, &first, shape_cases[i].label, dists[di], shape_ppm[k], fs, &sl,
                              counts);
                }
    }
    fprintf(f, "\n]}\n");
    return fclose(f) ? 1 : 0;
}

/* ---- layer counts ----------------------------------------------------------------------- */

/* sum == round(density * total) exactly and 1 <= count <= size (when target >= layers). */
static void check_invariants(const char *name, Distribution dist, long ppm, const ShapeList *sl,
                             const long *counts)
{
    const double density = (double)ppm / 1e6;
    const long total = total_of(sl);
    const long target = exact_target(ppm, total);
    long sum = 0;
    int bad = 0;
    for (int l = 0; l < sl->n; l++) {
        const long size = shape_size(sl->ndim[l], sl->shape[l]);
        sum += counts[l];
        if (counts[l] > size || counts[l] < 0 || (target >= sl->n && counts[l] < 1)) bad = 1;
        CHECK(counts[l] <= size && counts[l] >= (target >= sl->n ? 1 : 0),
              "%s %s %g layer %d: count %ld, size %ld", name, distribution_name(dist), density,
              l, counts[l], size);
        if (bad) return;
    }
    CHECK(sum == target, "%s %s %g: sum %ld != round(%g * %ld) = %ld", name,
          distribution_name(dist), density, sum, density, total, target);
}

static void test_count_invariants_models(void)
{
    build_models();
    static ShapeList sl;
    static long counts[512], counts2[512];
    for (int i = 0; i < N_MODELS; i++) {
        shapes_of_model(&models[i], &sl);
        CHECK((long)model_prunable_count(&models[i]) == total_of(&sl), "%s prunable count",
              model_cases[i].label);
        for (int di = 0; di < 3; di++)
            for (int k = 0; k < N_MODEL_DENSITIES; k++)
                for (int fs = 0; fs < 2; fs++) {
                    const double density = ppm_density(model_ppm[k], fs);
                    const int n = sparsity_layer_counts(&models[i], dists[di], density, counts);
                    CHECK(n == sl.n, "%s: %d prunable tensors returned, %d expected",
                          model_cases[i].label, n, sl.n);
                    check_invariants(model_cases[i].label, dists[di], model_ppm[k], &sl, counts);
                    /* the bare-shape entry point agrees */
                    sparsity_counts_for_shapes(sl.n, sl.ndim, (const int(*)[4])sl.shape,
                                               dists[di], density, counts2);
                    CHECK(!memcmp(counts, counts2, sizeof(long) * sl.n),
                          "%s %s %.17g: shapes differ", model_cases[i].label,
                          distribution_name(dists[di]), density);
                }
    }
}

static void test_count_invariants_shapes(void)
{
    static ShapeList sl;
    static long counts[512];
    for (int i = 0; i < N_SHAPE_CASES; i++) {
        shapes_of_case(&shape_cases[i], &sl);
        for (int di = 0; di < 3; di++)
            for (int k = 0; k < N_SHAPE_DENSITIES; k++)
                for (int fs = 0; fs < 2; fs++) {
                    sparsity_counts_for_shapes(sl.n, sl.ndim, (const int(*)[4])sl.shape,
                                               dists[di], ppm_density(shape_ppm[k], fs), counts);
                    check_invariants(shape_cases[i].label, dists[di], shape_ppm[k], &sl, counts);
                }
    }
}

static int counts_equal(const long *got, const long *want, int n, const char *what)
{
    int ok = 1;
    for (int l = 0; l < n; l++)
        if (got[l] != want[l]) ok = 0;
    if (!ok) {
        fprintf(stderr, "  %s: got", what);
        for (int l = 0; l < n; l++) fprintf(stderr, " %ld", got[l]);
        fprintf(stderr, ", expected");
        for (int l = 0; l < n; l++) fprintf(stderr, " %ld", want[l]);
        fputc('\n', stderr);
    }
    return ok;
}

static void counts_of(const ShapeCase *c, Distribution dist, double density, long *counts)
{
    static ShapeList sl;
    shapes_of_case(c, &sl);
    sparsity_counts_for_shapes(sl.n, sl.ndim, (const int(*)[4])sl.shape, dist, density, counts);
}

static const ShapeCase *shape_case(const char *label)
{
    for (int i = 0; i < N_SHAPE_CASES; i++)
        if (!strcmp(shape_cases[i].label, label)) return &shape_cases[i];
    return NULL;
}

/* Hand-computed counts. */
static void test_counts_hand(void)
{
    build_models();
    long c[512];

    /* mlp (fc1 300x784, fc2 100x300, fc3 10x100; sizes 235200, 30000, 1000, total 266200),
     * ERK at density 0.1: target = round(26620.0) = 26620. r_l * size_l = sum of dims:
     * 1084, 400, 110; eps = 26620 / 1594 = 16.700; r_3 = 110/1000 = 0.11 is the largest and
     * eps * 0.11 = 1.837 > 1, so fc3 is dense (1000). Again over fc1, fc2: eps = (26620 - 1000)
     * / (1084 + 400) = 25620 / 1484 = 17.26415; eps * r_2 = 17.264 * 400/30000 = 0.2302 <= 1.
     * x_1 = 17.26415 * 1084 = 18714.3396, x_2 = 17.26415 * 400 = 6905.6604; floors 18714 +
     * 6905 + 1000 = 26619, remainder 1 to the larger fraction (.6604, fc2): 18714, 6906, 1000.
     * ER is the same for linear layers. */
    const long mlp_erk[3] = {18714, 6906, 1000};
    CHECK(sparsity_layer_counts(&models[0], DIST_ERK, 0.1, c) == 3, "mlp has 3 prunable");
    CHECK(counts_equal(c, mlp_erk, 3, "mlp erk 0.1"), "mlp erk 0.1");
    sparsity_layer_counts(&models[0], DIST_ER, 0.1, c);
    CHECK(counts_equal(c, mlp_erk, 3, "mlp er 0.1"), "mlp er 0.1");
    /* uniform 0.1: 23520, 3000, 100 (each exactly a tenth) */
    const long mlp_uni[3] = {23520, 3000, 100};
    sparsity_layer_counts(&models[0], DIST_UNIFORM, 0.1, c);
    CHECK(counts_equal(c, mlp_uni, 3, "mlp uniform 0.1"), "mlp uniform 0.1");

    /* resnet20 ERK 0.1. Prunable tensors in order (out, in, kh, kw), with r * size = sum of
     * dims: conv1 16x3x3x3 (25); six 16x16x3x3 (38); 32x16x3x3 (54), 32x32x3x3 (70), shortcut
     * 32x16x1x1 (50), four 32x32x3x3 (70); 64x32x3x3 (102), 64x64x3x3 (134), shortcut
     * 64x32x1x1 (98), four 64x64x3x3 (134); fc 10x64 (74). Sizes add up to 270896, target =
     * round(27089.6) = 27090, sum of r * size = 1651.
     *   eps = 27090 / 1651 = 16.408; largest r: fc 74/640 = 0.1156, 16.408 * 0.1156 = 1.90 > 1:
     *   fc dense (640). eps = 26450 / 1577 = 16.772; largest r now the 32x16x1x1 shortcut,
     *   50/512 = 0.0977, 16.772 * 0.0977 = 1.64 > 1: dense (512). eps = 25938 / 1527 = 16.986;
     *   largest r conv1 25/432 = 0.0579, 16.986 * 0.0579 = 0.98 <= 1: stop.
     *   x = 16.986 * (r * size): conv1 424.656, 16x16 645.477, 32x16x3x3 917.257, 32x32
     *   1189.037, 64x32x3x3 1732.597, 64x64 2276.157, 64x32x1x1 1664.652 (and 512, 640).
     * Floors: 424 + 6*645 + 917 + 5*1189 + 1732 + 5*2276 + 1664 + 512 + 640 = 27084, remainder
     * 6 by largest fraction: conv1 (.656), 64x32x1x1 (.652), 64x32x3x3 (.597), then three of
     * the six tied 16x16 (.477): the lower indices 1, 2, 3. (The Python reference agrees.) */
    const long r20_erk[22] = {425, 646, 646, 646, 645, 645, 645, 917, 1189, 512, 1189, 1189,
                              1189, 1189, 1733, 2276, 1665, 2276, 2276, 2276, 2276, 640};
    CHECK(sparsity_layer_counts(&models[2], DIST_ERK, 0.1, c) == 22, "resnet20 has 22 prunable");
    CHECK(counts_equal(c, r20_erk, 22, "resnet20 erk 0.1"), "resnet20 erk 0.1");

    /* resnet20 uniform 0.1: x = 43.2, 230.4 (x6), 460.8, 921.6, 51.2, 921.6 (x4), 1843.2,
     * 3686.4, 204.8, 3686.4 (x4), 64. Floors add up to 27080, target 27090: the remainder 10
     * goes to the fractions .8 (460.8, 204.8), .6 (the five 921.6) and three of the eleven .4:
     * the lowest indices, layers 1-3 (230.4), not the 3686.4s. In plain doubles 0.1 * 36864 =
     * 3686.4000000000001 has a larger fractional part than 0.1 * 2304 = 230.40000000000001, and
     * the rounding noise, not the tie rule, picked layers 15, 17 and 18 (fixed in
     * src/sparsity.c). The same with density = 1 - 0.9, as the program computes it. */
    const long r20_uni[22] = {43, 231, 231, 231, 230, 230, 230, 461, 922, 51, 922, 922, 922,
                              922, 1843, 3686, 205, 3686, 3686, 3686, 3686, 64};
    sparsity_layer_counts(&models[2], DIST_UNIFORM, 0.1, c);
    CHECK(counts_equal(c, r20_uni, 22, "resnet20 uniform 0.1"), "resnet20 uniform 0.1");
    sparsity_layer_counts(&models[2], DIST_UNIFORM, 1.0 - 0.9, c);
    CHECK(counts_equal(c, r20_uni, 22, "resnet20 uniform 1 - 0.9"), "resnet20 uniform 1 - 0.9");

    /* sizes 15 and 10 at sparsity 0.9: target round(0.1 * 25) = round(2.5) = 3; in doubles
     * (1 - 0.9) * 25 = 2.4999999999999996 would round to 2 (fixed in src/sparsity.c).
     * x = 1.5, 1.0: floors 1, 1, remainder 1 to layer 0. */
    const long half[2] = {2, 1};
    counts_of(shape_case("half-target"), DIST_UNIFORM, 1.0 - 0.9, c);
    CHECK(counts_equal(c, half, 2, "half-target 1 - 0.9"), "half-target 1 - 0.9");
    counts_of(shape_case("half-target"), DIST_UNIFORM, 0.1, c);
    CHECK(counts_equal(c, half, 2, "half-target 0.1"), "half-target 0.1");

    /* uniform 0.15 on three layers of 10: x = 1.5 each (1.5 also in doubles), target =
     * round(4.5) = 5, half away from zero; remainder 2 to the equal fractions, lower index
     * first: 2, 2, 1. */
    const long frac_ties[3] = {2, 2, 1};
    counts_of(shape_case("frac-ties"), DIST_UNIFORM, 0.15, c);
    CHECK(counts_equal(c, frac_ties, 3, "frac-ties"), "frac-ties");

    /* x = 0.002, 1000: the 2-weight layer is raised to 1 and the other gives one back */
    const long zero1[2] = {1, 999};
    counts_of(shape_case("zero-1"), DIST_UNIFORM, 0.001, c);
    CHECK(counts_equal(c, zero1, 2, "zero-1"), "zero-1");

    /* sizes 3, 10500, 5, 6170, 4 (total 16682, target round(16.682) = 17): x = .003, 10.5,
     * .005, 6.17, .004, floors 0 10 0 6 0, remainder 1 to layer 1 (.5) -> 11. Layers 0, 2, 4
     * are at 0; donors (count > 1) by smallest fraction: layer 3 (.17) -> 5, layer 1 (.5) ->
     * 10; layer 4 is left and every donor has given one: docs/method.md does not say; the C takes
     * it from the highest-index layer with count > 1 (layer 3) -> 4. */
    const long zero3[5] = {1, 10, 1, 4, 1};
    counts_of(shape_case("zero-3"), DIST_UNIFORM, 0.001, c);
    CHECK(counts_equal(c, zero3, 5, "zero-3"), "zero-3");
    /* swapped: sizes 3, 6170, 5, 10500, 4: layer 3 (10.5) gets the remainder (11); donors
     * layer 1 (.17) -> 5, layer 3 (.5) -> 10, then again the highest index, layer 3 -> 9 */
    const long zero3s[5] = {1, 5, 1, 9, 1};
    counts_of(shape_case("zero-3-swapped"), DIST_UNIFORM, 0.001, c);
    CHECK(counts_equal(c, zero3s, 5, "zero-3-swapped"), "zero-3-swapped");
    /* target 2 < 5 layers: x = .3, .3, .3, .3, .5, remainder 2 to layer 4 then layer 0 (ties
     * low); no layer has count > 1, so three stay at 0 (nothing else is possible) */
    const long infeasible[5] = {1, 0, 0, 0, 1};
    counts_of(shape_case("infeasible"), DIST_UNIFORM, 0.1, c);
    CHECK(counts_equal(c, infeasible, 5, "infeasible"), "infeasible");

    /* [2,2,1,1], [2,2], [100,100] at 0.5: sizes 4, 4, 10000, target 5004. ERK r = 6/4, 4/4,
     * 200/10000: eps = 5004/210 = 23.8 -> the conv dense; eps = 5000/204 = 24.5 -> [2,2]
     * dense; eps = 4996/200 = 24.98, 24.98 * 0.02 = 0.4996: 4, 4, 4996. ER: the conv's r is
     * (2+2)/4 = 1, a tie with [2,2]: both dense in the same iteration, same counts. */
    const long erk3[3] = {4, 4, 4996};
    counts_of(shape_case("erk-3"), DIST_ERK, 0.5, c);
    CHECK(counts_equal(c, erk3, 3, "erk-3 erk"), "erk-3 erk");
    counts_of(shape_case("erk-3"), DIST_ER, 0.5, c);
    CHECK(counts_equal(c, erk3, 3, "erk-3 er"), "erk-3 er");

    /* cascade-linear at 0.5 (sizes 8, 32, 128, 2048, 131072; target 66644): four iterations
     * make the first four dense; the last gets 66644 - 2216 = 64428. */
    const long cascade[5] = {8, 32, 128, 2048, 64428};
    counts_of(shape_case("cascade-linear"), DIST_ERK, 0.5, c);
    CHECK(counts_equal(c, cascade, 5, "cascade-linear erk"), "cascade-linear erk");

    /* ties-r-linear ER at 0.5: sizes 16, 18, 18, 5000, 100000 (target 52526); r*size = 8, 9,
     * 9, 150, 700: eps = 52526/876 = 59.96, * 0.5 > 1 -> all three r = 1/2 layers dense at
     * once; eps = 52474/850 = 61.73, * 0.03 = 1.85 > 1 -> [100,50] dense; the last gets
     * 52474 - 5000 = 47474. */
    const long ties[5] = {16, 18, 18, 5000, 47474};
    counts_of(shape_case("ties-r-linear"), DIST_ER, 0.5, c);
    CHECK(counts_equal(c, ties, 5, "ties-r-linear er"), "ties-r-linear er");

    /* density 1: everything dense, for every distribution */
    for (int di = 0; di < 3; di++) {
        sparsity_layer_counts(&models[2], dists[di], 1.0, c);
        int all = 1;
        for (int t = 0, l = 0; t < models[2].n_tensors; t++)
            if (models[2].tensors[t].prunable) all &= c[l++] == (long)models[2].tensors[t].len;
        CHECK(all, "resnet20 %s density 1: not all dense", distribution_name(dists[di]));
    }
}

/* ---- initial masks --------------------------------------------------------------------- */

static void check_masks_of(const Model *m, Distribution dist, double density)
{
    long counts[512];
    sparsity_layer_counts(m, dist, density, counts);
    uint8_t *a = malloc(m->n_params), *b = malloc(m->n_params), *c = malloc(m->n_params);
    sparsity_init_masks(m, counts, 7, a);
    sparsity_init_masks(m, counts, 7, b);
    sparsity_init_masks(m, counts, 8, c);
    CHECK(!memcmp(a, b, m->n_params), "%s: same seed, another mask", m->name);
    for (int t = 0, l = 0; t < m->n_tensors; t++) {
        const ParamTensor *pt = &m->tensors[t];
        long ones = 0, ones_c = 0, other = 0;
        for (size_t i = pt->off; i < pt->off + pt->len; i++) {
            CHECK(a[i] <= 1, "mask values are 0/1");
            ones += a[i];
            ones_c += c[i];
            other += a[i] != c[i];
        }
        if (!pt->prunable) {
            CHECK(ones == (long)pt->len, "%s %s: non-prunable mask not all 1", m->name, pt->name);
            continue;
        }
        const long want = counts[l++];
        CHECK(ones == want && ones_c == want, "%s %s %s %g: %ld / %ld ones (seeds 7 / 8), %ld "
              "expected", m->name, pt->name, distribution_name(dist), density, ones, ones_c,
              want);
        if (want < (long)pt->len)
            CHECK(other > 0, "%s %s: seeds 7 and 8 give the same mask", m->name, pt->name);
    }
    free(a);
    free(b);
    free(c);
}

static void test_init_masks_models(void)
{
    build_models();
    check_masks_of(&models[0], DIST_ERK, 0.1); /* fc3 dense */
    check_masks_of(&models[0], DIST_UNIFORM, 0.01);
    check_masks_of(&models[2], DIST_ERK, 0.1); /* fc dense */
    check_masks_of(&models[2], DIST_UNIFORM, 0.001);
    check_masks_of(&models[1], DIST_ER, 0.05);
}

/* A bare model: a 7-entry non-prunable tensor, then a prunable rows x cols weight. */
static void fake_model(Model *m, ParamTensor *pt, int rows, int cols)
{
    memset(m, 0, sizeof(*m));
    memset(pt, 0, 2 * sizeof(*pt));
    strcpy(m->name, "fake");
    strcpy(pt[0].name, "b");
    pt[0].kind = PARAM_BIAS;
    pt[0].ndim = 1;
    pt[0].shape[0] = 7;
    pt[0].off = 0;
    pt[0].len = 7;
    strcpy(pt[1].name, "w");
    pt[1].kind = PARAM_WEIGHT;
    pt[1].prunable = 1;
    pt[1].ndim = 2;
    pt[1].shape[0] = rows;
    pt[1].shape[1] = cols;
    pt[1].off = 7;
    pt[1].len = (size_t)rows * cols;
    m->tensors = pt;
    m->n_tensors = 2;
    m->n_params = 7 + pt[1].len;
}

/* Positions are uniform: over S seeds each position of a 100x100 tensor at density 0.3 is
 * active Binomial(S, 0.3) times (marginal of a uniform subset); and over a 5-entry tensor
 * with 2 active every one of the 10 subsets is equally likely. */
static void test_init_masks_uniform(void)
{
    Model m;
    ParamTensor pt[2];
    fake_model(&m, pt, 100, 100);
    const int seeds = 500;
    const long k = 3000;
    const double p = 0.3;
    int *freq = calloc(10000, sizeof(int));
    uint8_t *mask = malloc(m.n_params);
    for (int s = 0; s < seeds; s++) {
        sparsity_init_masks(&m, &k, 1000 + (uint64_t)s, mask);
        long ones = 0;
        for (int i = 0; i < 7; i++) CHECK(mask[i] == 1, "bias mask");
        for (int i = 0; i < 10000; i++) {
            freq[i] += mask[7 + i];
            ones += mask[7 + i];
        }
        CHECK(ones == k, "seed %d: %ld ones", s, ones);
    }
    const double mean = seeds * p, sd = sqrt(seeds * p * (1 - p));
    double chi2 = 0, worst = 0;
    for (int i = 0; i < 10000; i++) {
        const double z = (freq[i] - mean) / sd;
        chi2 += z * z;
        if (fabs(z) > worst) worst = fabs(z);
    }
    /* 10000 positions: the largest |z| of independent normals is about 4; 5.5 leaves a
     * per-position tail of 4e-8. chi2 (9999 degrees of freedom) has sd 141: +-8% is 5.7 sd. */
    CHECK(worst < 5.5, "largest |z| of a position's frequency %.2f", worst);
    CHECK(fabs(chi2 / 10000 - 1) < 0.08, "chi2 / positions = %.4f", chi2 / 10000);
    free(freq);
    free(mask);

    fake_model(&m, pt, 1, 5);
    const long k2 = 2;
    int subsets[32] = {0};
    const int draws = 20000;
    uint8_t small[12];
    for (int s = 0; s < draws; s++) {
        sparsity_init_masks(&m, &k2, (uint64_t)s, small);
        int bits = 0;
        for (int i = 0; i < 5; i++) bits |= small[7 + i] << i;
        subsets[bits]++;
    }
    /* each of the C(5,2) = 10 subsets: mean 2000, sd sqrt(20000 * 0.1 * 0.9) = 42.4 */
    int n_subsets = 0;
    for (int b = 0; b < 32; b++) {
        if (!subsets[b]) continue;
        n_subsets++;
        CHECK(__builtin_popcount((unsigned)b) == 2, "subset %x has %d entries", b,
              __builtin_popcount((unsigned)b));
        CHECK(fabs(subsets[b] - 2000.0) < 5 * 42.4, "subset %x drawn %d times of 20000", b,
              subsets[b]);
    }
    CHECK(n_subsets == 10, "%d distinct subsets", n_subsets);
}

/* ---- drop and grow ---------------------------------------------------------------------- */

typedef struct {
    float w[9], state[9];
    uint8_t mask[9], ever[9];
} Tensor9;

static long active_of(const uint8_t *mask, int n)
{
    long a = 0;
    for (int i = 0; i < n; i++) a += mask[i];
    return a;
}

static void expect_tensor(const Tensor9 *got, const Tensor9 *want, int n, const char *what)
{
    for (int i = 0; i < n; i++) {
        CHECK(got->mask[i] == want->mask[i], "%s: mask[%d] %d, expected %d", what, i,
              got->mask[i], want->mask[i]);
        CHECK(got->w[i] == want->w[i], "%s: w[%d] %g, expected %g", what, i, got->w[i],
              want->w[i]);
        CHECK(got->state[i] == want->state[i], "%s: state[%d] %g, expected %g", what, i,
              got->state[i], want->state[i]);
        CHECK(got->ever[i] == want->ever[i], "%s: ever[%d] %d, expected %d", what, i,
              got->ever[i], want->ever[i]);
    }
}

/* 8 entries, 5 active (0, 1, 2, 4, 5); |w| ties at 2 and 4 (0.3); |score| ties at 3 and 6
 * (0.8, signs differ). Inactive entries carry non-zero optimiser state on purpose, to see that
 * growing resets it; ever[7] = 1 (active in the past): growing it is still new. */
static const Tensor9 base8 = {
    .w = {0.5f, -0.1f, 0.3f, 0.0f, -0.3f, 0.9f, 0.0f, 0.0f},
    .state = {10, 11, 12, 13, 14, 15, 16, 17},
    .mask = {1, 1, 1, 0, 1, 1, 0, 0},
    .ever = {1, 1, 1, 0, 1, 1, 0, 1},
};
static const float score8[8] = {9, 0.2f, 5, -0.8f, 0.1f, 6, 0.8f, 0.5f};

/* Buffers shared by the hand-computed cases (8 and 9 entries, in turns), so that reusing and
 * growing them is covered; the NULL calls cover temporary buffers. */
static DropGrowScratch shared_scratch;

static long run8(Tensor9 *t, const float *score, long k)
{
    *t = base8;
    const long fresh = mask_drop_grow(t->w, t->state, t->mask, t->ever, score, 8, k,
                                      &shared_scratch);
    CHECK(active_of(t->mask, 8) == 5, "k=%ld: active count %ld", k, active_of(t->mask, 8));
    return fresh;
}

static void test_drop_grow_8(void)
{
    Tensor9 t;
    /* k = 0: nothing changes */
    CHECK(run8(&t, score8, 0) == 0, "k=0 new entries");
    expect_tensor(&t, &base8, 8, "k=0");

    /* k = 1: drop 1 (|w| 0.1); candidates 1 (.2), 3 (.8), 6 (.8), 7 (.5): grow 3 (tie with 6,
     * lower index). 1 gets w 0, state 0; 3 is new: w 0, state 0, ever 1. */
    Tensor9 e1 = {
        .w = {0.5f, 0, 0.3f, 0, -0.3f, 0.9f, 0, 0},
        .state = {10, 0, 12, 0, 14, 15, 16, 17},
        .mask = {1, 0, 1, 1, 1, 1, 0, 0},
        .ever = {1, 1, 1, 1, 1, 1, 0, 1},
    };
    CHECK(run8(&t, score8, 1) == 1, "k=1 new entries");
    expect_tensor(&t, &e1, 8, "k=1");

    /* k = 2: drop 1 (.1), then 2 (.3; tie with 4, lower index first); candidates 1 (.2),
     * 2 (5), 3 (.8), 6 (.8), 7 (.5): grow 2 and 3. 2 was dropped and regrown: keeps w 0.3 and
     * state 12; one new entry (3). */
    CHECK(run8(&t, score8, 2) == 1, "k=2 new entries");
    expect_tensor(&t, &e1, 8, "k=2");

    /* k = 3: drop 1, 2, 4; candidates 1 (.2), 2 (5), 3 (.8), 4 (.1), 6 (.8), 7 (.5): grow 2
     * (regrown, kept), 3 and 6 (new). 4 is dropped: w 0, state 0. */
    Tensor9 e3 = {
        .w = {0.5f, 0, 0.3f, 0, 0, 0.9f, 0, 0},
        .state = {10, 0, 12, 0, 0, 15, 0, 17},
        .mask = {1, 0, 1, 1, 0, 1, 1, 0},
        .ever = {1, 1, 1, 1, 1, 1, 1, 1},
    };
    CHECK(run8(&t, score8, 3) == 2, "k=3 new entries");
    expect_tensor(&t, &e3, 8, "k=3");

    /* k = 5 (every active entry): all five dropped, every entry is a candidate; with scores
     * 9, .2, 5, -.8, .1, 6, .8, 7 the five largest |score| are 0 (9), 7 (7), 5 (6), 2 (5) and
     * 3 (.8, tie with 6). 0, 5, 2 regrown (kept); 3 and 7 new; 1 and 4 dropped. */
    const float score8b[8] = {9, 0.2f, 5, -0.8f, 0.1f, 6, 0.8f, 7};
    Tensor9 e5 = {
        .w = {0.5f, 0, 0.3f, 0, 0, 0.9f, 0, 0},
        .state = {10, 0, 12, 0, 0, 15, 16, 0},
        .mask = {1, 0, 1, 1, 0, 1, 0, 1},
        .ever = {1, 1, 1, 1, 1, 1, 0, 1},
    };
    CHECK(run8(&t, score8b, 5) == 2, "k=5 new entries");
    expect_tensor(&t, &e5, 8, "k=5");
    /* k beyond the active count (docs/method.md's k never is: f <= alpha <= 1): the C clamps it to
     * the active count */
    CHECK(run8(&t, score8b, 6) == 2, "k=6 new entries");
    expect_tensor(&t, &e5, 8, "k=6 (clamped to 5)");

    /* state and ever may be NULL */
    t = base8;
    CHECK(mask_drop_grow(t.w, NULL, t.mask, NULL, score8, 8, 3, NULL) == 2, "NULL state");
    for (int i = 0; i < 8; i++) {
        CHECK(t.mask[i] == e3.mask[i] && t.w[i] == e3.w[i], "NULL state: entry %d", i);
        CHECK(t.state[i] == base8.state[i] && t.ever[i] == base8.ever[i], "NULL: untouched");
    }
}

/* A 3x3 kernel: active 0 (.4), 2 (-.2), 4 (.7), 6 (-.05), 7 (.2). */
static void test_drop_grow_kernel9(void)
{
    const Tensor9 base = {
        .w = {0.4f, 0, -0.2f, 0, 0.7f, 0, -0.05f, 0.2f, 0},
        .state = {1, 2, 3, 4, 5, 6, 7, 8, 9},
        .mask = {1, 0, 1, 0, 1, 0, 1, 1, 0},
        .ever = {1, 0, 1, 0, 1, 0, 1, 1, 0},
    };
    const float score[9] = {0, -3, 1, 2, 0, 0, 0.5f, 4, 3};
    /* k = 2: drop 6 (.05), then 2 (.2, tie with 7); candidates 1 (3), 2 (1), 3 (2), 5 (0),
     * 6 (.5), 8 (3): grow 1 and 8 (|-3| = 3 ties with 3: lower index first). Two new. */
    const Tensor9 e = {
        .w = {0.4f, 0, 0, 0, 0.7f, 0, 0, 0.2f, 0},
        .state = {1, 0, 0, 4, 5, 6, 0, 8, 0},
        .mask = {1, 1, 0, 0, 1, 0, 0, 1, 1},
        .ever = {1, 1, 1, 0, 1, 0, 1, 1, 1},
    };
    Tensor9 t = base;
    CHECK(mask_drop_grow(t.w, t.state, t.mask, t.ever, score, 9, 2, &shared_scratch) == 2, "k=2 new");
    expect_tensor(&t, &e, 9, "kernel k=2");
    CHECK(active_of(t.mask, 9) == 5, "kernel k=2 active");
    /* k = 3: drop 6, 2, 7; grow 7 (4: regrown, keeps .2 and state 8), 1 (3), 8 (3): the same
     * result, still two new */
    t = base;
    CHECK(mask_drop_grow(t.w, t.state, t.mask, t.ever, score, 9, 3, NULL) == 2, "k=3 new");
    expect_tensor(&t, &e, 9, "kernel k=3");
    CHECK(active_of(t.mask, 9) == 5, "kernel k=3 active");
}

/* A fully dense tensor: after dropping k the only inactive entries are the k dropped ones, so
 * docs/method.md's grow step ("among those inactive after the drop") must regrow exactly them,
 * whatever the scores: nothing changes and nothing is new. */
/* ---- drop/grow against a plain sort-based reference on large random tensors ---------------- */

static const uint32_t *ref_keys; /* qsort's comparator reads these */

static uint32_t ref_magnitude(float v)
{
    const float a = fabsf(v);
    uint32_t u;
    memcpy(&u, &a, sizeof u);
    return u;
}

static int ref_by_key_then_index(const void *a, const void *b)
{
    const uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    if (ref_keys[i] != ref_keys[j]) return ref_keys[i] < ref_keys[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* docs/method.md's drop and grow, sorting everything: drop the k active of smallest |w|, grow the k
 * of largest |score| among those inactive after the drop, ties to the lower index. */
static long reference_drop_grow(float *w, float *state, uint8_t *mask, uint8_t *ever,
                                const float *score, size_t n, long k)
{
    uint32_t *idx = malloc(sizeof(uint32_t) * n), *key = malloc(sizeof(uint32_t) * n);
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        key[i] = ref_magnitude(w[i]);
        if (mask[i]) idx[c++] = (uint32_t)i;
    }
    if ((size_t)k > c) k = (long)c;
    ref_keys = key;
    qsort(idx, c, sizeof *idx, ref_by_key_then_index);
    uint8_t *dropped = calloc(n, 1);
    for (long j = 0; j < k; j++) dropped[idx[j]] = 1;
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        key[i] = ~ref_magnitude(score[i]);
        if (!mask[i] || dropped[i]) idx[nc++] = (uint32_t)i;
    }
    qsort(idx, nc, sizeof *idx, ref_by_key_then_index);
    long fresh = 0;
    for (long j = 0; j < k; j++) {
        const uint32_t i = idx[j];
        if (!mask[i]) {
            fresh++;
            w[i] = 0;
            state[i] = 0;
        }
        mask[i] = 1;
        ever[i] = 1;
        dropped[i] = 0;
    }
    for (size_t i = 0; i < n; i++)
        if (dropped[i]) {
            mask[i] = 0;
            w[i] = 0;
            state[i] = 0;
        }
    free(idx);
    free(key);
    free(dropped);
    return fresh;
}

/* Random tensors of several sizes and densities, values quantised so that ties are common,
 * one whose every 8th score is huge (the sampled bound lets too few through and is lifted),
 * and -0 and NaN scores: positions, weights, state and flags equal the reference's. */
static void test_drop_grow_random_reference(void)
{
    const size_t sizes[] = {17, 1000, 100003};
    const double densities[] = {0.05, 0.3, 0.9};
    uint64_t rs = 77;
    DropGrowScratch sc = {0};
    for (int si = 0; si < 3; si++)
        for (int di = 0; di < 3; di++)
            for (int variant = 0; variant < 3; variant++) {
                const size_t n = sizes[si];
                float *w = malloc(sizeof(float) * n), *st = malloc(sizeof(float) * n);
                float *score = malloc(sizeof(float) * n);
                uint8_t *mask = malloc(n), *ever = malloc(n);
                size_t active = 0;
                for (size_t i = 0; i < n; i++) {
                    rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
                    const double u = (double)(rs >> 11) * 0x1p-53;
                    mask[i] = u < densities[di];
                    active += mask[i];
                    const int q = (int)((rs >> 20) % 64); /* 64 levels: many ties */
                    w[i] = mask[i] ? (float)(q - 32) / 16.0f : 0.0f;
                    st[i] = (float)(rs >> 40 & 0xff);
                    score[i] = (float)((int)((rs >> 30) % 32) - 16) / 8.0f;
                    if (variant == 1 && i % 8 == 0) score[i] = 1000.0f;
                    if (variant == 2 && i % 97 == 5) score[i] = i % 2 ? -0.0f : NAN;
                    ever[i] = mask[i];
                }
                const long k = (long)(active * (variant == 0 ? 0.3 : 0.5)) + 1;
                float *w2 = malloc(sizeof(float) * n), *st2 = malloc(sizeof(float) * n);
                uint8_t *mask2 = malloc(n), *ever2 = malloc(n);
                memcpy(w2, w, sizeof(float) * n);
                memcpy(st2, st, sizeof(float) * n);
                memcpy(mask2, mask, n);
                memcpy(ever2, ever, n);
                const long got = mask_drop_grow(w, st, mask, ever, score, n, k, &sc);
                const long want = reference_drop_grow(w2, st2, mask2, ever2, score, n, k);
                const int same = got == want && !memcmp(mask, mask2, n) &&
                                 !memcmp(ever, ever2, n) && !memcmp(w, w2, sizeof(float) * n) &&
                                 !memcmp(st, st2, sizeof(float) * n);
                CHECK(same, "n %zu density %.2f variant %d k %ld: drop/grow differs from the "
                      "reference (new %ld vs %ld)", n, densities[di], variant, k, got, want);
                free(w); free(st); free(score); free(mask); free(ever);
                free(w2); free(st2); free(mask2); free(ever2);
            }
    drop_grow_scratch_free(&sc);
}

static void test_drop_grow_dense(void)
{
    Tensor9 t = {
        .w = {0.8f, -0.1f, 0.6f, 0.05f, -0.9f, 0.3f, 0.2f, -0.7f},
        .state = {1, 2, 3, 4, 5, 6, 7, 8},
        .mask = {1, 1, 1, 1, 1, 1, 1, 1},
        .ever = {1, 1, 1, 1, 1, 1, 1, 1},
    };
    const Tensor9 before = t;
    const float score[8] = {100, 0, 100, 0, 100, 0, 0, 100}; /* dropped ones score lowest */
    for (long k = 0; k <= 8; k++) {
        t = before;
        CHECK(mask_drop_grow(t.w, t.state, t.mask, t.ever, score, 8, k, NULL) == 0,
              "dense k=%ld: new entries", k);
        expect_tensor(&t, &before, 8, "dense");
    }
}

/* ---- drop fraction and the mask update's k ---------------------------------------------- */

static void test_drop_fraction(void)
{
    CHECK_CLOSE(drop_fraction(0.3, 0, 1000), 0.3, 1e-15, 0, "f(0)");
    CHECK_CLOSE(drop_fraction(0.3, 500, 1000), 0.15, 1e-15, 0, "f(t_end/2)");
    CHECK(drop_fraction(0.3, 1000, 1000) == 0.0, "f(t_end) = %g", drop_fraction(0.3, 1000, 1000));
    /* 0.15 * (1 + cos(pi/4)) = 0.15 * 1.7071067811865475 */
    CHECK_CLOSE(drop_fraction(0.3, 250, 1000), 0.2560660171779821, 1e-15, 0, "f(t_end/4)");
    CHECK_CLOSE(drop_fraction(0.5, 3, 6), 0.25, 1e-15, 0, "alpha 0.5 half way");
    CHECK_CLOSE(drop_fraction(0.5, 0, 7), 0.5, 1e-15, 0, "alpha 0.5 at 0");
}

/* The mask update of src/method.c on a tiny RigL model: k = floor(f * n + 0.5) per layer.
 * fc1 10 -> 2 (20 weights), fc2 2 -> 5 (10), fc3 5 -> 2 (10); uniform density 0.5: 10, 5, 5
 * active. alpha 0.5, 800 steps, update_end 0.75: t_end = 600, an update every 150 steps.
 * Active weights are 1 + 0.01 * position (the lowest positions drop first), active gradients
 * are 0 and inactive ones 100 + position, so the k dropped are never regrown and the k grown
 * are the highest inactive positions: the dropped count per layer is k.
 *   done 150: f = 0.25 * (1 + cos(pi/4)) = 0.42678: k(10) = floor(4.268 + .5) = 4,
 *             k(5) = floor(2.134 + .5) = 2
 *   done 300: f = 0.25: k(10) = floor(2.5 + .5) = 3 (half rounds up), k(5) = floor(1.75) = 1
 *   done 450: f = 0.25 * (1 - cos(pi/4)) = 0.07322: k(10) = floor(1.232) = 1,
 *             k(5) = floor(0.866) = 0
 *   done 600 = t_end: no update. */
static void test_update_k(void)
{
    Model m;
    model_init_empty(&m, "tiny", (Shape){10, 1, 1}, 2);
    int x = model_add_linear(&m, "fc1", -1, 2, 1);
    x = model_add_linear(&m, "fc2", x, 5, 1);
    model_add_linear(&m, "fc3", x, 2, 1);
    CHECK(model_finalize(&m, 1) == 0, "finalize");
    Config c;
    config_defaults(&c);
    strcpy(c.method, "rigl");
    strcpy(c.distribution, "uniform");
    c.sparsity = 0.5;
    c.update_interval = 150;
    c.drop_fraction = 0.5;
    c.update_end = 0.75;
    c.seed = 3;
    MethodState s;
    Sgd opt;
    CHECK(method_init(&s, &c, &m, 800, 100) == 0, "method_init");
    CHECK(sgd_init(&opt, &m, 0.9, 0, 0, 0) == 0, "sgd_init");
    CHECK(s.t_end == 600, "t_end %ld", s.t_end);
    const long want_k[3][3] = {{4, 2, 2}, {3, 1, 1}, {1, 0, 0}};
    const long steps[3] = {149, 299, 449};
    uint8_t *before = malloc(m.n_params);
    double replaced = 0;
    for (int u = 0; u < 3; u++) {
        for (int ti = 0; ti < m.n_tensors; ti++) {
            const ParamTensor *t = &m.tensors[ti];
            for (size_t i = 0; i < t->len; i++) {
                const size_t j = t->off + i;
                m.params[j] = s.mask[j] ? 1.0f + 0.01f * (float)i : 0.0f;
                m.grads[j] = s.mask[j] ? 0.0f : 100.0f + (float)i;
                opt.velocity[j] = 1.0f;
            }
        }
        memcpy(before, s.mask, m.n_params);
        CHECK(method_updates_at(&s, steps[u] - 1) == 0, "no update after step %ld",
              steps[u] - 1);
        CHECK(method_updates_at(&s, steps[u]) == 1, "update after step %ld", steps[u]);
        method_after_step(&s, &m, &opt, steps[u]);
        long sum_k = 0;
        for (int ti = 0, l = 0; ti < m.n_tensors; ti++) {
            const ParamTensor *t = &m.tensors[ti];
            if (!t->prunable) {
                CHECK(!memcmp(before + t->off, s.mask + t->off, t->len), "bias mask changed");
                continue;
            }
            long dropped = 0, grown = 0, active = 0, lowest_dropped = 1;
            size_t seen_active = 0;
            for (size_t i = 0; i < t->len; i++) {
                const size_t j = t->off + i;
                if (before[j]) {
                    /* the dropped ones are the lowest active positions */
                    if (!s.mask[j] && (long)seen_active >= want_k[u][l]) lowest_dropped = 0;
                    seen_active++;
                }
                dropped += before[j] && !s.mask[j];
                grown += !before[j] && s.mask[j];
                active += s.mask[j];
                if (!before[j] && s.mask[j])
                    CHECK(m.params[j] == 0 && opt.velocity[j] == 0, "new entry not zeroed");
                if (before[j] && !s.mask[j])
                    CHECK(m.params[j] == 0 && opt.velocity[j] == 0, "dropped entry not zeroed");
                if (before[j] && s.mask[j])
                    CHECK(opt.velocity[j] == 1, "kept entry lost its state");
            }
            CHECK(dropped == want_k[u][l] && grown == want_k[u][l],
                  "update %d %s: %ld dropped, %ld grown, k = %ld expected", u, t->name, dropped,
                  grown, want_k[u][l]);
            CHECK(lowest_dropped, "update %d %s: not the smallest |w| dropped", u, t->name);
            CHECK(active == s.counts[l], "update %d %s: %ld active, %ld expected", u, t->name,
                  active, s.counts[l]);
            sum_k += want_k[u][l];
            l++;
        }
        replaced += (double)sum_k / 20.0;
        CHECK_CLOSE(s.replaced_sum, replaced, 1e-12, 0, "replaced fraction sum");
    }
    CHECK(s.updates_done == 3, "%ld updates", s.updates_done);
    CHECK(method_updates_at(&s, 599) == 0, "an update at t_end");
    free(before);
    sgd_free(&opt);
    method_free(&s);
    model_free(&m);
}

int main(void)
{
    const char *dump = getenv("CIGL_DUMP_COUNTS");
    if (dump && *dump) {
        const int rc = dump_counts(dump);
        for (int i = 0; i < N_MODELS; i++) model_free(&models[i]);
        return rc;
    }
    RUN(test_count_invariants_models);
    RUN(test_count_invariants_shapes);
    RUN(test_counts_hand);
    RUN(test_init_masks_models);
    RUN(test_init_masks_uniform);
    RUN(test_drop_grow_8);
    RUN(test_drop_grow_kernel9);
    RUN(test_drop_grow_dense);
    RUN(test_drop_grow_random_reference);
    RUN(test_drop_fraction);
    RUN(test_update_k);
    if (models_built)
        for (int i = 0; i < N_MODELS; i++) model_free(&models[i]);
    drop_grow_scratch_free(&shared_scratch);
    return CHECK_SUMMARY();
}
