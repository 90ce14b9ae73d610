/* Cayley SGD step, gradient clipping and QR re-orthonormalization (see cayley.h). */
#include "learn/cayley.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "learn/learn_matmul.h"
#include "linalg/linalg.h"

sq_status sq_cayley_workspace_init(sq_cayley_workspace *w, int32_t n, sq_error *err) {
    memset(w, 0, sizeof(*w));
    size_t count = (size_t)n * (size_t)n;
    w->n = n;
    w->a = malloc(count * sizeof(double) + 1);
    w->factor = malloc(count * sizeof(double) + 1);
    w->next = malloc(count * sizeof(double) + 1);
    if (w->a == NULL || w->factor == NULL || w->next == NULL) {
        sq_cayley_workspace_free(w);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the Cayley workspace for %d x %d matrices", n, n);
    }
    return SQ_OK;
}

void sq_cayley_workspace_free(sq_cayley_workspace *w) {
    free(w->a);
    free(w->factor);
    free(w->next);
    memset(w, 0, sizeof(*w));
}

/* w->a = ½·(Rᵀ·G − Gᵀ·R); returns its largest column sum of absolute values. */
static double skew_part(sq_cayley_workspace *w, sq_threadpool *pool, const double *r, const double *g, int32_t n) {
    double *p = w->factor; /* Rᵀ·G */
    memset(p, 0, (size_t)n * (size_t)n * sizeof(double));
    sq_learn_matmul_tn_accumulate(pool, p, r, g, n, n, n);
    for (int32_t i = 0; i < n; i++) {
        for (int32_t j = 0; j < n; j++) {
            w->a[(int64_t)i * n + j] = 0.5 * (p[(int64_t)i * n + j] - p[(int64_t)j * n + i]);
        }
    }
    double norm = 0.0;
    for (int32_t j = 0; j < n; j++) {
        double column_sum = 0.0;
        for (int32_t i = 0; i < n; i++) {
            column_sum += fabs(w->a[(int64_t)i * n + j]);
        }
        norm = column_sum > norm ? column_sum : norm;
    }
    return norm;
}

double sq_cayley_skew_norm(sq_cayley_workspace *w, sq_threadpool *pool, const double *r, const double *g, int32_t n) {
    return skew_part(w, pool, r, g, n);
}

/* Solves B·X = C in place by LU with partial pivoting: b (n, n) is destroyed, c (n, n)
 * becomes X. B = I + α/2·A with A skew-symmetric has singular values >= 1, so it is never
 * singular; a zero pivot can only come from NaN input and is reported by the caller's check. */
static void solve_in_place(double *b, double *c, int32_t n) {
    for (int32_t k = 0; k < n; k++) {
        int32_t pivot = k;
        for (int32_t i = k + 1; i < n; i++) {
            if (fabs(b[(int64_t)i * n + k]) > fabs(b[(int64_t)pivot * n + k])) {
                pivot = i;
            }
        }
        if (pivot != k) {
            for (int32_t j = 0; j < n; j++) {
                double t = b[(int64_t)k * n + j];
                b[(int64_t)k * n + j] = b[(int64_t)pivot * n + j];
                b[(int64_t)pivot * n + j] = t;
                t = c[(int64_t)k * n + j];
                c[(int64_t)k * n + j] = c[(int64_t)pivot * n + j];
                c[(int64_t)pivot * n + j] = t;
            }
        }
        const double *b_k = b + (int64_t)k * n;
        const double *c_k = c + (int64_t)k * n;
        for (int32_t i = k + 1; i < n; i++) {
            double *b_i = b + (int64_t)i * n;
            double *c_i = c + (int64_t)i * n;
            double f = b_i[k] / b_k[k];
            for (int32_t j = k + 1; j < n; j++) {
                b_i[j] -= f * b_k[j];
            }
            for (int32_t j = 0; j < n; j++) {
                c_i[j] -= f * c_k[j];
            }
        }
    }
    for (int32_t k = n - 1; k >= 0; k--) {
        double *c_k = c + (int64_t)k * n;
        for (int32_t i = k + 1; i < n; i++) {
            double f = b[(int64_t)k * n + i];
            const double *c_i = c + (int64_t)i * n;
            for (int32_t j = 0; j < n; j++) {
                c_k[j] -= f * c_i[j];
            }
        }
        double diagonal = b[(int64_t)k * n + k];
        for (int32_t j = 0; j < n; j++) {
            c_k[j] /= diagonal;
        }
    }
}

static int all_finite(const double *x, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        if (!isfinite(x[i])) {
            return 0;
        }
    }
    return 1;
}

sq_status sq_cayley_step(sq_cayley_workspace *w, sq_threadpool *pool, double *r, const double *g, int32_t n,
                         double lr, double *step, sq_error *err) {
    if (n > w->n || n < 1) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid rotation size %d for a Cayley step, expected 1 to the workspace size %d", n, w->n);
    }
    int64_t count = (int64_t)n * n;
    if (!all_finite(g, count)) {
        return sq_error_set(err, SQ_ERR_NUMERIC, "the gradient of a %d x %d rotation contains NaN or Inf", n, n);
    }

    /* α = min(lr, 1/‖A‖₁) */
    double norm = skew_part(w, pool, r, g, n);
    double alpha = 1.0 / (norm + 1e-8);
    alpha = lr < alpha ? lr : alpha;
    if (step != NULL) {
        *step = alpha;
    }

    /* factor = (I + α/2·A)⁻¹·(I − α/2·A): B = I + α/2·A in w->a, C = 2I − B in w->factor */
    for (int64_t i = 0; i < count; i++) {
        w->a[i] *= 0.5 * alpha;
    }
    for (int32_t i = 0; i < n; i++) {
        w->a[(int64_t)i * n + i] += 1.0;
    }
    for (int64_t i = 0; i < count; i++) {
        w->factor[i] = -w->a[i];
    }
    for (int32_t i = 0; i < n; i++) {
        w->factor[(int64_t)i * n + i] += 2.0;
    }
    solve_in_place(w->a, w->factor, n);

    sq_status status = sq_learn_matmul_nn_f64(pool, w->next, r, w->factor, n, n, n, err);
    if (status != SQ_OK) {
        return status;
    }
    if (!all_finite(w->next, count)) {
        return sq_error_set(err, SQ_ERR_NUMERIC, "the Cayley step of a %d x %d rotation produced NaN or Inf", n, n);
    }
    memcpy(r, w->next, (size_t)count * sizeof(double));
    return SQ_OK;
}

double sq_cayley_clip_gradients(double *const *gradients, const int64_t *counts, int32_t n_gradients,
                                double max_norm) {
    double sum_squares = 0.0;
    for (int32_t k = 0; k < n_gradients; k++) {
        for (int64_t i = 0; i < counts[k]; i++) {
            sum_squares += gradients[k][i] * gradients[k][i];
        }
    }
    double norm = sqrt(sum_squares);
    double coefficient = max_norm / (norm + 1e-6);
    if (coefficient < 1.0) {
        for (int32_t k = 0; k < n_gradients; k++) {
            for (int64_t i = 0; i < counts[k]; i++) {
                gradients[k][i] *= coefficient;
            }
        }
    }
    return norm;
}

sq_status sq_cayley_reorthonormalize(double *r, int32_t n, sq_error *err) {
    size_t count = (size_t)n * (size_t)n;
    double *q = malloc(count * sizeof(double) + 1);
    double *upper = malloc(count * sizeof(double) + 1);
    if (q == NULL || upper == NULL) {
        free(q);
        free(upper);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the QR of a %d x %d rotation", n, n);
    }
    sq_status status = sq_linalg_qr(r, n, n, q, upper, err);
    if (status == SQ_OK) {
        for (int32_t j = 0; j < n; j++) {
            double sign = upper[(size_t)j * (size_t)n + (size_t)j] < 0.0 ? -1.0 : 1.0;
            for (int32_t i = 0; i < n; i++) {
                r[(size_t)i * (size_t)n + (size_t)j] = sign * q[(size_t)i * (size_t)n + (size_t)j];
            }
        }
    }
    free(q);
    free(upper);
    return status;
}
