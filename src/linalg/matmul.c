/* Cache-blocked matrix products and transposes for fp32 and fp64.
 *
 * The kernel walks C in tiles and, inside a tile, adds four rank-1 updates per pass
 * (c[i][j] += a[i][p]·b[p][j] for four consecutive p) over a contiguous row segment, so the
 * compiler can vectorize over j without reassociating any sum: every c[i][j] is accumulated in
 * increasing p order, whatever the vector width. On x86 the same kernel is also compiled for
 * AVX2 (without FMA) and chosen at run time, and it gives the same bits as the baseline build. */
#include "linalg/linalg.h"

#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define SQ_MATMUL_HAVE_AVX2_CLONE 1
#define SQ_TARGET_AVX2 __attribute__((target("avx2")))
#else
#define SQ_MATMUL_HAVE_AVX2_CLONE 0
#endif

enum {
    MATMUL_ROW_BLOCK = 32,    /* rows of C per tile */
    MATMUL_COL_BLOCK = 256,   /* columns of C (and B) per tile */
    MATMUL_DEPTH_BLOCK = 128, /* inner-dimension slice per tile: B tile is 128 x 256 */
    TRANSPOSE_BLOCK = 32,
};

static int min_int(int a, int b) { return a < b ? a : b; }

/* Defines NAME(a, b, c, m, k, n) computing C = A·B for element type TYPE. */
#define SQ_DEFINE_MATMUL_KERNEL(NAME, TYPE, ATTRIBUTES)                                        \
    ATTRIBUTES static void NAME(const TYPE *restrict a, const TYPE *restrict b,                \
                                TYPE *restrict c, int m, int k, int n) {                       \
        memset(c, 0, (size_t)m * (size_t)n * sizeof(TYPE));                                    \
        for (int i0 = 0; i0 < m; i0 += MATMUL_ROW_BLOCK) {                                     \
            int i1 = min_int(m, i0 + MATMUL_ROW_BLOCK);                                        \
            for (int j0 = 0; j0 < n; j0 += MATMUL_COL_BLOCK) {                                 \
                int j1 = min_int(n, j0 + MATMUL_COL_BLOCK);                                    \
                for (int p0 = 0; p0 < k; p0 += MATMUL_DEPTH_BLOCK) {                           \
                    int p1 = min_int(k, p0 + MATMUL_DEPTH_BLOCK);                              \
                    for (int i = i0; i < i1; i++) {                                            \
                        const TYPE *a_row = a + (size_t)i * (size_t)k;                         \
                        TYPE *c_row = c + (size_t)i * (size_t)n;                               \
                        int p = p0;                                                            \
                        for (; p + 4 <= p1; p += 4) {                                          \
                            const TYPE a0 = a_row[p], a1 = a_row[p + 1];                       \
                            const TYPE a2 = a_row[p + 2], a3 = a_row[p + 3];                   \
                            const TYPE *b0 = b + (size_t)p * (size_t)n;                        \
                            const TYPE *b1 = b0 + n, *b2 = b1 + n, *b3 = b2 + n;               \
                            for (int j = j0; j < j1; j++) {                                    \
                                TYPE sum = c_row[j];                                           \
                                sum += a0 * b0[j];                                             \
                                sum += a1 * b1[j];                                             \
                                sum += a2 * b2[j];                                             \
                                sum += a3 * b3[j];                                             \
                                c_row[j] = sum;                                                \
                            }                                                                  \
                        }                                                                      \
                        for (; p < p1; p++) {                                                  \
                            const TYPE ap = a_row[p];                                          \
                            const TYPE *bp = b + (size_t)p * (size_t)n;                        \
                            for (int j = j0; j < j1; j++) {                                    \
                                c_row[j] += ap * bp[j];                                        \
                            }                                                                  \
                        }                                                                      \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }

SQ_DEFINE_MATMUL_KERNEL(matmul_f32_baseline, float, )
SQ_DEFINE_MATMUL_KERNEL(matmul_f64_baseline, double, )
#if SQ_MATMUL_HAVE_AVX2_CLONE
SQ_DEFINE_MATMUL_KERNEL(matmul_f32_avx2, float, SQ_TARGET_AVX2)
SQ_DEFINE_MATMUL_KERNEL(matmul_f64_avx2, double, SQ_TARGET_AVX2)
#endif

void sq_linalg_matmul_f32(const float *a, const float *b, float *c, int m, int k, int n) {
#if SQ_MATMUL_HAVE_AVX2_CLONE
    if (__builtin_cpu_supports("avx2")) {
        matmul_f32_avx2(a, b, c, m, k, n);
        return;
    }
#endif
    matmul_f32_baseline(a, b, c, m, k, n);
}

void sq_linalg_matmul_f64(const double *a, const double *b, double *c, int m, int k, int n) {
#if SQ_MATMUL_HAVE_AVX2_CLONE
    if (__builtin_cpu_supports("avx2")) {
        matmul_f64_avx2(a, b, c, m, k, n);
        return;
    }
#endif
    matmul_f64_baseline(a, b, c, m, k, n);
}

void sq_linalg_matmul_baseline_f32(const float *a, const float *b, float *c, int m, int k, int n) {
    matmul_f32_baseline(a, b, c, m, k, n);
}

void sq_linalg_matmul_baseline_f64(const double *a, const double *b, double *c, int m, int k,
                                   int n) {
    matmul_f64_baseline(a, b, c, m, k, n);
}

#define SQ_DEFINE_TRANSPOSE(NAME, TYPE)                                                        \
    void NAME(const TYPE *in, TYPE *out, int rows, int cols) {                                 \
        for (int r0 = 0; r0 < rows; r0 += TRANSPOSE_BLOCK) {                                   \
            int r1 = min_int(rows, r0 + TRANSPOSE_BLOCK);                                      \
            for (int c0 = 0; c0 < cols; c0 += TRANSPOSE_BLOCK) {                               \
                int c1 = min_int(cols, c0 + TRANSPOSE_BLOCK);                                  \
                for (int r = r0; r < r1; r++) {                                                \
                    for (int col = c0; col < c1; col++) {                                      \
                        out[(size_t)col * (size_t)rows + (size_t)r] =                          \
                            in[(size_t)r * (size_t)cols + (size_t)col];                        \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }

SQ_DEFINE_TRANSPOSE(sq_linalg_transpose_f32, float)
SQ_DEFINE_TRANSPOSE(sq_linalg_transpose_f64, double)

static sq_status check_gemm_sizes(int m, int n, int k, sq_error *err) {
    if (m < 0 || n < 0 || k < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "gemm sizes m=%d, n=%d, k=%d are invalid: expected all >= 0", m, n, k);
    }
    return SQ_OK;
}

/* Defines the gemm wrapper: transposed operands are copied to temporaries, then multiplied. */
#define SQ_DEFINE_GEMM(NAME, TYPE, TRANSPOSE, MATMUL)                                          \
    sq_status NAME(sq_linalg_op op_a, sq_linalg_op op_b, int m, int n, int k, const TYPE *a,   \
                   const TYPE *b, TYPE *c, sq_error *err) {                                    \
        sq_status status = check_gemm_sizes(m, n, k, err);                                     \
        if (status != SQ_OK) {                                                                 \
            return status;                                                                     \
        }                                                                                      \
        TYPE *a_copy = NULL;                                                                   \
        TYPE *b_copy = NULL;                                                                   \
        if (op_a == SQ_LINALG_TRANSPOSE) {                                                     \
            a_copy = malloc((size_t)m * (size_t)k * sizeof(TYPE) + 1);                         \
            if (a_copy == NULL) {                                                              \
                return sq_error_set(err, SQ_ERR_NOMEM,                                         \
                                    "out of memory for a %d x %d transposed operand", m, k);   \
            }                                                                                  \
            TRANSPOSE(a, a_copy, k, m);                                                        \
            a = a_copy;                                                                        \
        }                                                                                      \
        if (op_b == SQ_LINALG_TRANSPOSE) {                                                     \
            b_copy = malloc((size_t)k * (size_t)n * sizeof(TYPE) + 1);                         \
            if (b_copy == NULL) {                                                              \
                free(a_copy);                                                                  \
                return sq_error_set(err, SQ_ERR_NOMEM,                                         \
                                    "out of memory for a %d x %d transposed operand", k, n);   \
            }                                                                                  \
            TRANSPOSE(b, b_copy, n, k);                                                        \
            b = b_copy;                                                                        \
        }                                                                                      \
        MATMUL(a, b, c, m, k, n);                                                              \
        free(a_copy);                                                                          \
        free(b_copy);                                                                          \
        return SQ_OK;                                                                          \
    }

SQ_DEFINE_GEMM(sq_linalg_gemm_f32, float, sq_linalg_transpose_f32, sq_linalg_matmul_f32)
SQ_DEFINE_GEMM(sq_linalg_gemm_f64, double, sq_linalg_transpose_f64, sq_linalg_matmul_f64)
