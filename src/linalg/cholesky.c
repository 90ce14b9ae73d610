/* Cholesky factorization, triangular solves and the inverse from a Cholesky factor, in double
 * precision (GPTQ's Hessian handling needs all three). Inner products use four interleaved
 * partial sums in a fixed order, so results do not depend on the compiler's vectorization. */
#include "linalg/linalg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* Returns Σ x[i]·y[i] as ((s0 + s1) + (s2 + s3)) + tail, with s_l summing every fourth term. */
static double dot_f64(const double *x, const double *y, int n) {
    double partial[4] = {0.0, 0.0, 0.0, 0.0};
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        for (int lane = 0; lane < 4; lane++) {
            partial[lane] += x[i + lane] * y[i + lane];
        }
    }
    double sum = (partial[0] + partial[1]) + (partial[2] + partial[3]);
    for (; i < n; i++) {
        sum += x[i] * y[i];
    }
    return sum;
}

sq_status sq_linalg_cholesky(double *a, int n, sq_error *err) {
    if (n < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "Cholesky size n=%d is invalid: expected >= 0",
                            n);
    }

    /* Row-oriented: L[i][j] = (A[i][j] - L[i][0:j]·L[j][0:j]) / L[j][j], row i left to right. */
    for (int i = 0; i < n; i++) {
        double *row_i = a + (size_t)i * (size_t)n;
        for (int j = 0; j <= i; j++) {
            const double *row_j = a + (size_t)j * (size_t)n;
            double value = row_i[j] - dot_f64(row_i, row_j, j);
            if (j < i) {
                row_i[j] = value / row_j[j];
                continue;
            }
            if (!(value > 0.0) || !isfinite(value)) {
                return sq_error_set(err, SQ_ERR_NUMERIC,
                                    "Cholesky failed at column %d of %d: pivot %g is not positive, "
                                    "so the matrix is not positive definite (add dampening to its "
                                    "diagonal)",
                                    i, n, value);
            }
            row_i[i] = sqrt(value);
        }
        for (int j = i + 1; j < n; j++) {
            row_i[j] = 0.0;
        }
    }
    return SQ_OK;
}

sq_status sq_linalg_solve_triangular(const double *t, int n, bool lower, sq_linalg_op op,
                                     double *b, int nrhs, sq_error *err) {
    if (n < 0 || nrhs < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "triangular solve sizes n=%d, nrhs=%d are invalid: expected >= 0", n,
                            nrhs);
    }
    for (int i = 0; i < n; i++) {
        double diagonal = t[(size_t)i * (size_t)n + i];
        if (diagonal == 0.0 || !isfinite(diagonal)) {
            return sq_error_set(err, SQ_ERR_NUMERIC,
                                "triangular solve failed: diagonal entry %d of %d is %g, expected "
                                "a finite nonzero value",
                                i, n, diagonal);
        }
    }

    /* op(T) is lower triangular when exactly one of "lower" and "transposed" holds. */
    bool transposed = op == SQ_LINALG_TRANSPOSE;
    bool forward = lower != transposed;
    for (int step = 0; step < n; step++) {
        int i = forward ? step : n - 1 - step;
        double *x_i = b + (size_t)i * (size_t)nrhs;

        /* x_i = (b_i - Σ op(T)[i][p]·x_p) / T[i][i] over the rows p already solved. */
        int p_begin = forward ? 0 : i + 1;
        int p_end = forward ? i : n;
        for (int p = p_begin; p < p_end; p++) {
            double coefficient = transposed ? t[(size_t)p * (size_t)n + i] : t[(size_t)i * (size_t)n + p];
            const double *x_p = b + (size_t)p * (size_t)nrhs;
            for (int c = 0; c < nrhs; c++) {
                x_i[c] -= coefficient * x_p[c];
            }
        }
        double diagonal = t[(size_t)i * (size_t)n + i];
        for (int c = 0; c < nrhs; c++) {
            x_i[c] /= diagonal;
        }
    }
    return SQ_OK;
}

sq_status sq_linalg_cholesky_inverse(const double *l, int n, double *inverse, sq_error *err) {
    if (n < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "Cholesky inverse size n=%d is invalid: expected >= 0", n);
    }

    /* inverse = L⁻ᵀ·(L⁻¹·I): two triangular solves with n right-hand sides. */
    memset(inverse, 0, (size_t)n * (size_t)n * sizeof(double));
    for (int i = 0; i < n; i++) {
        inverse[(size_t)i * (size_t)n + i] = 1.0;
    }
    sq_status status =
        sq_linalg_solve_triangular(l, n, true, SQ_LINALG_NO_TRANSPOSE, inverse, n, err);
    if (status == SQ_OK) {
        status = sq_linalg_solve_triangular(l, n, true, SQ_LINALG_TRANSPOSE, inverse, n, err);
    }
    if (status != SQ_OK) {
        return status;
    }

    /* Rounding leaves the two triangles slightly different; average them so the result is
     * exactly symmetric. */
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            double mean = 0.5 * (inverse[(size_t)i * (size_t)n + j] + inverse[(size_t)j * (size_t)n + i]);
            inverse[(size_t)i * (size_t)n + j] = mean;
            inverse[(size_t)j * (size_t)n + i] = mean;
        }
    }
    return SQ_OK;
}
