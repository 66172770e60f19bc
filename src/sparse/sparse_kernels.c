/* The three sparse kernels (see include/cigl/sparse.h for the format and why): CSR times
 * feature-major dense rows, its transpose, and the sampled dense-dense product. Each inner loop
 * is an axpy or a dot product over a row of the dense operand; on x86-64 gcc compiles every
 * kernel three times (AVX-512, AVX2, baseline SSE2) and picks one when the program starts, since
 * the build uses plain -O2 for portability. -std=c11 turns off FMA contraction, so the clones
 * compute the same products and sums element by element, and the dot product adds in 16 fixed
 * lanes (dot_lanes), so every clone gives the same bits. */
#include "cigl/sparse.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KERNEL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KERNEL_CLONES
#endif

void sparse_split_rows(const SparseMatrix *s, int t, int T, int *r0, int *r1)
{
    /* first row whose entries start at or after the part's share of the entries */
    int b[2];
    for (int e = 0; e < 2; e++) {
        const int part = t + e;
        if (part <= 0) { b[e] = 0; continue; }
        if (part >= T) { b[e] = s->rows; continue; }
        const int32_t target = (int32_t)((long long)s->nnz * part / T);
        int lo = 0, hi = s->rows;
        while (lo < hi) {
            const int mid = (lo + hi) / 2;
            if (s->row_ptr[mid] < target) lo = mid + 1;
            else hi = mid;
        }
        b[e] = lo;
    }
    *r0 = b[0];
    *r1 = b[1] < b[0] ? b[0] : b[1];
}

/* Entries in four at a time, so each C element is loaded and stored once per four entries. */
KERNEL_CLONES
void sparse_mm(const SparseMatrix *s, const float *w, float scale, const uint8_t *act,
               const size_t *row_off, int r0, int r1, const float *B, size_t ldb, size_t c0,
               size_t c1, float *C, size_t ldc, int acc)
{
    const size_t n = c1 - c0;
    for (int i = r0; i < r1; i++) {
        float *restrict c = C + (size_t)i * ldc + c0;
        if (!acc) memset(c, 0, sizeof(float) * n);
        const float *wr = w + (size_t)i * s->cols;
        const uint8_t *ar = act ? act + (size_t)i * s->cols : NULL;
        float wv[4];
        const float *bp[4];
        int q = 0;
        for (int32_t k = s->row_ptr[i]; k < s->row_ptr[i + 1]; k++) {
            const int32_t j = s->col[k];
            if (ar && !ar[j]) continue;
            wv[q] = wr[j] * scale;
            bp[q] = B + (row_off ? row_off[j] : (size_t)j * ldb) + c0;
            if (++q < 4) continue;
            const float w0 = wv[0], w1 = wv[1], w2 = wv[2], w3 = wv[3];
            const float *restrict b0 = bp[0], *restrict b1 = bp[1], *restrict b2 = bp[2],
                                  *restrict b3 = bp[3];
#pragma omp simd
            for (size_t x = 0; x < n; x++)
                c[x] = c[x] + w0 * b0[x] + w1 * b1[x] + w2 * b2[x] + w3 * b3[x];
            q = 0;
        }
        for (int e = 0; e < q; e++) {
            const float we = wv[e];
            const float *restrict b = bp[e];
#pragma omp simd
            for (size_t x = 0; x < n; x++) c[x] += we * b[x];
        }
    }
}

KERNEL_CLONES
void sparse_mm_t(const SparseMatrix *s, const float *w, float scale, const uint8_t *act,
                 const size_t *row_off, int r0, int r1, const float *B, size_t ldb, size_t c0,
                 size_t c1, float *C, size_t ldc)
{
    const size_t n = c1 - c0;
    for (int i = r0; i < r1; i++) {
        const float *restrict b = B + (size_t)i * ldb + c0;
        const float *wr = w + (size_t)i * s->cols;
        const uint8_t *ar = act ? act + (size_t)i * s->cols : NULL;
        for (int32_t k = s->row_ptr[i]; k < s->row_ptr[i + 1]; k++) {
            const int32_t j = s->col[k];
            if (ar && !ar[j]) continue;
            const float we = wr[j] * scale;
            float *restrict c = C + (row_off ? row_off[j] : (size_t)j * ldc) + c0;
#pragma omp simd
            for (size_t x = 0; x < n; x++) c[x] += we * b[x];
        }
    }
}

/* The 16 lanes of a dot product added by a fixed tree: the same association whatever the
 * vector width, so every clone gives the same bits. (An omp simd reduction left the lanes to
 * the compiler, whose epilogue added them one by one: 16 dependent scalar additions per stored
 * entry, most of the weight-gradient kernel's time.) always_inline here and below: a helper
 * the target_clones kernels call out of line is compiled for the SSE baseline only. */
static inline __attribute__((always_inline)) float lanes_sum(float acc[16])
{
#pragma omp simd
    for (int l = 0; l < 8; l++) acc[l] += acc[l + 8];
#pragma omp simd
    for (int l = 0; l < 4; l++) acc[l] += acc[l + 4];
    acc[0] += acc[2];
    acc[1] += acc[3];
    return acc[0] + acc[1];
}

/* sum_x a[x] b[x], lane l taking x = l mod 16 */
static inline __attribute__((always_inline)) float dot_lanes(const float *restrict a,
                                                             const float *restrict b, size_t n)
{
    float acc[16] = {0};
    size_t x = 0;
    for (; x + 16 <= n; x += 16)
#pragma omp simd
        for (int l = 0; l < 16; l++) acc[l] += a[x + l] * b[x + l];
    for (int l = 0; x + (size_t)l < n; l++) acc[l] += a[x + l] * b[x + l];
    return lanes_sum(acc);
}

/* dot_lanes of one row a against four rows at once: a is loaded once for four products (the
 * kernel is load-bound: two loads per multiply-add alone, 1.25 here), and each product keeps
 * dot_lanes's lanes and tree, so the four results are the bits dot_lanes gives. */
static inline __attribute__((always_inline)) void
dot_lanes4(const float *restrict a, const float *restrict b0, const float *restrict b1,
           const float *restrict b2, const float *restrict b3, size_t n, float out[4])
{
    float acc[4][16] = {{0}};
    size_t x = 0;
    for (; x + 16 <= n; x += 16)
#pragma omp simd
        for (int l = 0; l < 16; l++) {
            const float av = a[x + l];
            acc[0][l] += av * b0[x + l];
            acc[1][l] += av * b1[x + l];
            acc[2][l] += av * b2[x + l];
            acc[3][l] += av * b3[x + l];
        }
    for (int l = 0; x + (size_t)l < n; l++) {
        const float av = a[x + l];
        acc[0][l] += av * b0[x + l];
        acc[1][l] += av * b1[x + l];
        acc[2][l] += av * b2[x + l];
        acc[3][l] += av * b3[x + l];
    }
    for (int e = 0; e < 4; e++) out[e] = lanes_sum(acc[e]);
}

KERNEL_CLONES
void sparse_sddmm(const SparseMatrix *s, const uint8_t *act, const size_t *row_off, int r0,
                  int r1, const float *A, size_t lda, const float *B, size_t ldb, size_t n,
                  float *g, int acc)
{
    for (int i = r0; i < r1; i++) {
        const float *restrict a = A + (size_t)i * lda;
        const uint8_t *ar = act ? act + (size_t)i * s->cols : NULL;
        int32_t ks[4];
        const float *bs[4];
        int q = 0;
        for (int32_t k = s->row_ptr[i]; k < s->row_ptr[i + 1]; k++) {
            const int32_t j = s->col[k];
            if (ar && !ar[j]) {
                if (!acc) g[k] = 0.0f;
                continue;
            }
            ks[q] = k;
            bs[q] = B + (row_off ? row_off[j] : (size_t)j * ldb);
            if (++q < 4) continue;
            float sum[4];
            dot_lanes4(a, bs[0], bs[1], bs[2], bs[3], n, sum);
            for (int e = 0; e < 4; e++) g[ks[e]] = acc ? g[ks[e]] + sum[e] : sum[e];
            q = 0;
        }
        for (int e = 0; e < q; e++) {
            const float sum = dot_lanes(a, bs[e], n);
            g[ks[e]] = acc ? g[ks[e]] + sum : sum;
        }
    }
}
