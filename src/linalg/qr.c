/* Householder QR in double precision (unblocked, LAPACK geqr2/org2r style).
 *
 * Each reflector is applied to the trailing matrix in two row-wise passes (w = vᵀ·A, then
 * A -= tau·v·w), so every inner loop runs over a contiguous row segment. The cost is about
 * 2·rows·cols^2 flops for the factorization and as much again for forming Q.
 * TODO: a blocked (compact WY) variant would turn the updates into matrix products; the
 * unblocked loops stream the whole trailing matrix twice per column, which makes n = 4096
 * take minutes. */
#include "linalg/linalg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static sq_status check_qr_sizes(int rows, int cols, sq_error *err) {
    if (rows < 0 || cols < 0 || rows < cols) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "QR of a %d x %d matrix is not supported: expected rows >= cols >= 0",
                            rows, cols);
    }
    return SQ_OK;
}

/* Applies H = I - tau·v·vᵀ from the left to the block a[first_row:rows, first_col:cols].
 * v: (rows - first_row) with v[0] = 1; w: scratch of (cols - first_col) doubles. */
static void apply_reflector_left(double *a, int rows, int cols, int first_row, int first_col,
                                 const double *v, double tau, double *w) {
    int width = cols - first_col;
    if (width <= 0 || tau == 0.0) {
        return;
    }

    memset(w, 0, (size_t)width * sizeof(double));
    for (int i = first_row; i < rows; i++) {
        const double vi = v[i - first_row];
        const double *row = a + (size_t)i * (size_t)cols + first_col;
        for (int j = 0; j < width; j++) {
            w[j] += vi * row[j];
        }
    }

    for (int i = first_row; i < rows; i++) {
        const double scale = tau * v[i - first_row];
        double *row = a + (size_t)i * (size_t)cols + first_col;
        for (int j = 0; j < width; j++) {
            row[j] -= scale * w[j];
        }
    }
}

/* Copies reflector k (1 on the diagonal, then the entries below it in column k) into v. */
static void load_reflector(const double *a, int rows, int cols, int k, double *v) {
    v[0] = 1.0;
    for (int i = k + 1; i < rows; i++) {
        v[i - k] = a[(size_t)i * (size_t)cols + k];
    }
}

sq_status sq_linalg_qr_factor(double *a, int rows, int cols, double *tau, sq_error *err) {
    sq_status status = check_qr_sizes(rows, cols, err);
    if (status != SQ_OK) {
        return status;
    }
    double *v = malloc(((size_t)rows + (size_t)cols + 1) * sizeof(double));
    if (v == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "out of memory for QR of a %d x %d matrix", rows,
                            cols);
    }
    double *w = v + rows;

    for (int k = 0; k < cols; k++) {
        /* Reflector that maps column k below the diagonal onto beta·e_k. */
        double alpha = a[(size_t)k * (size_t)cols + k];
        double below_norm2 = 0.0;
        for (int i = k + 1; i < rows; i++) {
            double x = a[(size_t)i * (size_t)cols + k];
            below_norm2 += x * x;
        }
        if (below_norm2 == 0.0) {
            tau[k] = 0.0; /* already upper triangular in this column: H = I */
            continue;
        }
        double beta = -copysign(sqrt(alpha * alpha + below_norm2), alpha);
        tau[k] = (beta - alpha) / beta;
        double inverse_pivot = 1.0 / (alpha - beta);
        for (int i = k + 1; i < rows; i++) {
            a[(size_t)i * (size_t)cols + k] *= inverse_pivot;
        }
        a[(size_t)k * (size_t)cols + k] = beta;

        /* Apply it to the columns on the right. */
        load_reflector(a, rows, cols, k, v);
        apply_reflector_left(a, rows, cols, k, k + 1, v, tau[k], w);
    }

    free(v);
    return SQ_OK;
}

sq_status sq_linalg_qr_form_q(double *a, int rows, int cols, const double *tau, sq_error *err) {
    sq_status status = check_qr_sizes(rows, cols, err);
    if (status != SQ_OK) {
        return status;
    }
    double *v = malloc(((size_t)rows + (size_t)cols + 1) * sizeof(double));
    if (v == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "out of memory for Q of a %d x %d matrix", rows,
                            cols);
    }
    double *w = v + rows;

    /* Q = H_0·…·H_(cols-1)·I(:, 0:cols), accumulated from the last reflector backwards. When
     * reflector k is applied, columns > k already hold H_(k+1)·…·e_j (zero above row k+1) and
     * column k is still e_k, so H_k·e_k = e_k - tau_k·v_k is written directly. */
    for (int k = cols - 1; k >= 0; k--) {
        load_reflector(a, rows, cols, k, v);
        apply_reflector_left(a, rows, cols, k, k + 1, v, tau[k], w);

        for (int i = k + 1; i < rows; i++) {
            a[(size_t)i * (size_t)cols + k] = -tau[k] * v[i - k];
        }
        a[(size_t)k * (size_t)cols + k] = 1.0 - tau[k];
        for (int i = 0; i < k; i++) {
            a[(size_t)i * (size_t)cols + k] = 0.0;
        }
    }

    free(v);
    return SQ_OK;
}

sq_status sq_linalg_qr(const double *a, int rows, int cols, double *q, double *r, sq_error *err) {
    sq_status status = check_qr_sizes(rows, cols, err);
    if (status != SQ_OK) {
        return status;
    }
    double *tau = malloc(((size_t)cols + 1) * sizeof(double));
    if (tau == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "out of memory for QR of a %d x %d matrix", rows,
                            cols);
    }

    memcpy(q, a, (size_t)rows * (size_t)cols * sizeof(double));
    status = sq_linalg_qr_factor(q, rows, cols, tau, err);

    if (status == SQ_OK && r != NULL) {
        for (int i = 0; i < cols; i++) {
            for (int j = 0; j < cols; j++) {
                r[(size_t)i * (size_t)cols + j] = j >= i ? q[(size_t)i * (size_t)cols + j] : 0.0;
            }
        }
    }
    if (status == SQ_OK) {
        status = sq_linalg_qr_form_q(q, rows, cols, tau, err);
    }

    free(tau);
    return status;
}
