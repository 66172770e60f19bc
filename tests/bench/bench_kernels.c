/* The forward sparse kernel alone, on one core, against the GEMM peak (tests/bench/README.md,
 * "The floor of the 95% step").
 *
 * For resnet20's three stride-1 3x3 conv shapes (16, 32 and 64 channels at 32x32, 16x16 and
 * 8x8) and a range of densities, sparse_mm computes one padded sample's output rows exactly as
 * the direct path of src/sparse/sparse_conv.c lays them out (row offsets c * ch_stride +
 * kh * wp + kw into zero-padded planes). Reported per case: GFLOP/s of useful work (2 x stored
 * weights x output pixels), its share of the one-core sgemm peak, and the time against a dense
 * GEMM of the same layer (OC x 9C times a given 9C x pixels matrix, the im2col form), so
 * "vs dense GEMM" is the speed-up the kernel gives before any copies.
 *
 * The probe row (`--probe`, on by default) repeats layer1 at 13.5% (what ERK keeps there at
 * 95%) with every entry reading the same aligned row: no cache misses, no loads split across
 * cache lines. If the kernel were bound by its memory access, the probe would be much faster;
 * the gap between the two is what better data layout could give at most.
 *
 * One thread (the kernel is serial; callers split rows or samples over threads). Random
 * patterns from the project's Philox stream, so every run times the same patterns. */
#include "bench_common.h"
#include "cigl/sparse.h"

#include <cblas.h>
#ifdef CIGL_ONEDNN
#include <dnnl.h>
#endif
#include <math.h>
#include <stdio.h>

enum { MAX_REPS = 64 };

typedef struct {
    const char *name;
    int c, hw; /* in = out channels, plane side */
} ConvShape;

static const ConvShape shapes[] = {{"layer1 16ch 32x32", 16, 32},
                                   {"layer2 32ch 16x16", 32, 16},
                                   {"layer3 64ch 8x8", 64, 8}};

static void sgemm_rowmajor(int m, int n, int k, const float *a, const float *b, float *c)
{
#ifdef CIGL_ONEDNN
    dnnl_sgemm('N', 'N', m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
#else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c,
                n);
#endif
}

/* Median seconds per call over `reps` blocks of at least min_time each. */
#define TIME_MEDIAN(result, reps, min_time, call)                                                \
    do {                                                                                         \
        double t_[MAX_REPS];                                                                     \
        for (int r_ = 0; r_ < (reps); r_++) {                                                    \
            long n_ = 0;                                                                         \
            const double t0_ = bench_now();                                                      \
            double el_;                                                                          \
            do {                                                                                 \
                call;                                                                            \
                n_++;                                                                            \
            } while ((el_ = bench_now() - t0_) < (min_time));                                    \
            t_[r_] = el_ / (double)n_;                                                           \
        }                                                                                        \
        (result) = bench_median(t_, (reps));                                                     \
    } while (0)

/* One n x n x n sgemm's GFLOP/s: the peak the kernel is compared with. */
static double sgemm_peak(int n, int reps, double min_time)
{
    const size_t nn = (size_t)n * n;
    float *a = malloc(sizeof(float) * nn), *b = malloc(sizeof(float) * nn),
          *c = malloc(sizeof(float) * nn);
    if (!a || !b || !c) exit(1);
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)rng_uniform(3, RNG_INIT, 0, i) - 0.5f;
        b[i] = (float)rng_uniform(3, RNG_INIT, 1, i) - 0.5f;
    }
    double t;
    TIME_MEDIAN(t, reps, min_time, sgemm_rowmajor(n, n, n, a, b, c));
    free(a);
    free(b);
    free(c);
    return 2.0 * n * (double)n * n / t * 1e-9;
}

typedef struct {
    double gflops, vs_gemm, nnz;
} KernelResult;

/* floats -> bytes rounded up to 64 (aligned_alloc's size rule) */
static size_t aligned_bytes(size_t floats) { return (sizeof(float) * floats + 63) & ~(size_t)63; }

/* sparse_mm over one padded sample of shape sh at `density` (probe: every entry reads row 0). */
static KernelResult time_kernel(const ConvShape *sh, double density, int probe, int reps,
                                double min_time)
{
    const int c = sh->c, oc = sh->c, k = 3, hw = sh->hw, wp = hw + 2, kk = c * k * k;
    const size_t plane = (size_t)wp * wp, ch_stride = plane + k, ncols = (size_t)hw * wp;
    uint8_t *mask = malloc((size_t)oc * kk);
    float *w = malloc(sizeof(float) * (size_t)oc * kk);
    /* 64-byte aligned, as the model's workspace slots are (src/nn/conv_common.c) */
    float *in = aligned_alloc(64, aligned_bytes((size_t)c * ch_stride + 16));
    float *out = aligned_alloc(64, aligned_bytes((size_t)oc * plane));
    float *cols = malloc(sizeof(float) * (size_t)kk * hw * hw);
    float *dense_out = malloc(sizeof(float) * (size_t)oc * hw * hw);
    if (!mask || !w || !in || !out || !cols || !dense_out) exit(1);
    size_t nnz = 0;
    for (int i = 0; i < oc * kk; i++) {
        mask[i] = rng_uniform(5, RNG_INIT, 0, (uint64_t)i) < density;
        w[i] = mask[i] ? (float)rng_uniform(5, RNG_INIT, 1, (uint64_t)i) - 0.5f : 0.0f;
        nnz += mask[i];
    }
    for (size_t i = 0; i < (size_t)c * ch_stride + 16; i++)
        in[i] = (float)rng_uniform(5, RNG_INIT, 2, i) - 0.5f;
    for (size_t i = 0; i < (size_t)kk * hw * hw; i++) cols[i] = in[i % ((size_t)c * ch_stride)];
    SparseMatrix s = {0};
    if (sparse_matrix_build(&s, mask, oc, kk)) exit(1);
    for (int j = 0; j < kk; j++) {
        const int ch = j / (k * k), kh = (j / k) % k, kw = j % k;
        s.row_off[j] = probe ? 0 : (size_t)ch * ch_stride + (size_t)kh * wp + (size_t)kw;
    }
    double ts, td;
    TIME_MEDIAN(ts, reps, min_time,
                sparse_mm(&s, w, 1.0f, NULL, s.row_off, 0, oc, in, 0, 0, ncols, out, plane, 0));
    TIME_MEDIAN(td, reps, min_time, sgemm_rowmajor(oc, hw * hw, kk, w, cols, dense_out));
    sparse_matrix_free(&s);
    free(mask);
    free(w);
    free(in);
    free(out);
    free(cols);
    free(dense_out);
    KernelResult r = {2.0 * (double)nnz * hw * hw / ts * 1e-9, td / ts, (double)nnz};
    return r;
}

int main(int argc, char **argv)
{
    int reps = 5, probe = 1;
    double min_time = 0.05;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--no-probe")) probe = 0;
        else {
            fprintf(stderr, "usage: bench_kernels [--reps R (1-%d)] [--min-time S] [--no-probe]\n",
                    MAX_REPS);
            return 2;
        }
    }
    if (reps < 1 || reps > MAX_REPS || !(min_time > 0)) {
        fprintf(stderr, "bench_kernels: --reps must be 1-%d and --min-time > 0\n", MAX_REPS);
        return 2;
    }
    omp_set_num_threads(1);
    const double peak = sgemm_peak(512, reps, min_time);
    printf("bench_kernels: sparse_mm alone, 1 thread, one padded sample; sgemm peak %.1f GFLOP/s "
           "(512^3, %s, median of %d)\n", peak,
#ifdef CIGL_ONEDNN
           "dnnl_sgemm",
#else
           "OpenBLAS",
#endif
           reps);
    printf("BENCH {\"kind\":\"kernel_peak\",\"gflops\":%.2f,\"reps\":%d}\n", peak, reps);
    static const double densities[] = {0.03, 0.06, 0.135, 0.3};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (size_t di = 0; di < sizeof densities / sizeof densities[0]; di++) {
            const KernelResult r = time_kernel(&shapes[si], densities[di], 0, reps, min_time);
            printf("%-18s density %.3f (%5.0f weights): %6.1f GFLOP/s useful = %5.1f%% of the "
                   "sgemm peak; %.2fx faster than the dense GEMM\n", shapes[si].name, densities[di],
                   r.nnz, r.gflops, 100 * r.gflops / peak, r.vs_gemm);
            printf("BENCH {\"kind\":\"kernel\",\"shape\":\"%s\",\"density\":%.3f,\"gflops\":%.2f,"
                   "\"peak_frac\":%.4f,\"vs_dense_gemm\":%.3f}\n", shapes[si].name,
                   densities[di], r.gflops, r.gflops / peak, r.vs_gemm);
        }
    if (probe) {
        const KernelResult r = time_kernel(&shapes[0], 0.135, 1, reps, min_time);
        printf("%-18s density 0.135, every entry reading one aligned row (probe): %6.1f GFLOP/s "
               "useful = %5.1f%% of the peak\n", shapes[0].name, r.gflops, 100 * r.gflops / peak);
        printf("BENCH {\"kind\":\"kernel_probe\",\"shape\":\"%s\",\"density\":0.135,"
               "\"gflops\":%.2f,\"peak_frac\":%.4f}\n", shapes[0].name, r.gflops, r.gflops / peak);
    }
    return 0;
}
