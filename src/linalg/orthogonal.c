/* Orthogonality error of a square matrix and Haar-distributed random orthogonal matrices. */
#include "linalg/linalg.h"

#include <math.h>
#include <stdlib.h>

#include "linalg/rng.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

enum { GRAM_TILE = 32 }; /* columns per tile of Qᵀ·Q; a tile's sums take 8 KiB of stack */

static int min_int(int a, int b) { return a < b ? a : b; }

/* Defines NAME(q, n) = max |Qᵀ·Q - I| over the upper triangle (Qᵀ·Q is symmetric). Tiles of
 * 32 x 32 entries are accumulated row by row of Q, which reads Q contiguously and needs no
 * allocation. */
#define SQ_DEFINE_ORTHOGONALITY_ERROR(NAME, TYPE)                                              \
    double NAME(const TYPE *q, int n) {                                                        \
        double max_error = 0.0;                                                                \
        for (int i0 = 0; i0 < n; i0 += GRAM_TILE) {                                            \
            int i1 = min_int(n, i0 + GRAM_TILE);                                               \
            for (int j0 = i0; j0 < n; j0 += GRAM_TILE) {                                       \
                int j1 = min_int(n, j0 + GRAM_TILE);                                           \
                double gram[GRAM_TILE][GRAM_TILE] = {{0.0}};                                   \
                for (int r = 0; r < n; r++) {                                                  \
                    const TYPE *row = q + (size_t)r * (size_t)n;                               \
                    for (int i = i0; i < i1; i++) {                                            \
                        double qi = (double)row[i];                                            \
                        for (int j = j0; j < j1; j++) {                                        \
                            gram[i - i0][j - j0] += qi * (double)row[j];                       \
                        }                                                                      \
                    }                                                                          \
                }                                                                              \
                for (int i = i0; i < i1; i++) {                                                \
                    for (int j = (j0 > i ? j0 : i); j < j1; j++) {                             \
                        double expected = i == j ? 1.0 : 0.0;                                  \
                        double error = fabs(gram[i - i0][j - j0] - expected);                  \
                        if (!(error <= max_error)) {                                           \
                            max_error = error; /* also propagates NaN */                      \
                        }                                                                      \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        return max_error;                                                                      \
    }

SQ_DEFINE_ORTHOGONALITY_ERROR(sq_linalg_orthogonality_error_f32, float)
SQ_DEFINE_ORTHOGONALITY_ERROR(sq_linalg_orthogonality_error_f64, double)

sq_status sq_linalg_random_orthogonal_f64(int n, uint64_t seed, double *out, sq_error *err) {
    if (n < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "random orthogonal size n=%d is invalid: expected >= 0", n);
    }
    double *tau = malloc((2 * (size_t)n + 1) * sizeof(double));
    if (tau == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM,
                            "out of memory for a %d x %d random orthogonal matrix", n, n);
    }
    double *column_sign = tau + n;

    /* Gaussian matrix G, row by row. */
    sq_rng rng;
    sq_rng_seed(&rng, seed);
    for (size_t i = 0; i < (size_t)n * (size_t)n; i++) {
        out[i] = sq_rng_gaussian(&rng);
    }

    /* G = Q·R. Householder QR leaves the signs of diag(R) arbitrary. Flipping column j of Q
     * wherever R[j][j] < 0 makes the factorization unique, and then Q is Haar distributed. */
    sq_status status = sq_linalg_qr_factor(out, n, n, tau, err);
    if (status == SQ_OK) {
        for (int j = 0; j < n; j++) {
            column_sign[j] = out[(size_t)j * (size_t)n + j] < 0.0 ? -1.0 : 1.0;
        }
        status = sq_linalg_qr_form_q(out, n, n, tau, err);
    }
    if (status == SQ_OK) {
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                out[(size_t)i * (size_t)n + j] *= column_sign[j];
            }
        }
    }

    free(tau);
    return status;
}

sq_status sq_linalg_random_orthogonal_f32(int n, uint64_t seed, float *out, sq_error *err) {
    if (n < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "random orthogonal size n=%d is invalid: expected >= 0", n);
    }
    double *work = malloc((size_t)n * (size_t)n * sizeof(double) + 1);
    if (work == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM,
                            "out of memory for a %d x %d random orthogonal matrix", n, n);
    }
    sq_status status = sq_linalg_random_orthogonal_f64(n, seed, work, err);
    if (status == SQ_OK) {
        for (size_t i = 0; i < (size_t)n * (size_t)n; i++) {
            out[i] = (float)work[i];
        }
    }
    free(work);
    return status;
}
