/* The running GPTQ Hessian H = 2 * X^T X / n over every calibration input seen so far. */
#include "quant/gptq.h"

#include <math.h>
#include <stddef.h>

/* Tokens whose outer products are added per pass over H: a chunk of 64 rows of x stays in
 * cache while each row of H is updated. */
#define HESSIAN_TOKEN_CHUNK 64

sq_status sq_gptq_hessian_add(double *h, const float *x, int n_tokens, int cols, long *n_seen,
                              sq_error *err) {
    if (h == NULL || n_seen == NULL) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "Hessian or sample counter is missing");
    }
    if (cols <= 0 || n_tokens < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid Hessian input shape (%d tokens, %d columns): expected "
                            "0 or more tokens and at least 1 column",
                            n_tokens, cols);
    }
    if (*n_seen < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid Hessian sample count %ld: expected 0 or more", *n_seen);
    }
    if (n_tokens == 0) {
        return SQ_OK;
    }
    if (x == NULL) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "Hessian input rows are missing");
    }
    for (int t = 0; t < n_tokens; t++) {
        for (int c = 0; c < cols; c++) {
            const float value = x[(size_t)t * (size_t)cols + (size_t)c];
            if (!isfinite(value)) {
                return sq_error_set(err, SQ_ERR_NUMERIC,
                                    "Hessian input at token %d, column %d is %g: expected a "
                                    "finite value",
                                    t, c, (double)value);
            }
        }
    }

    const size_t n = (size_t)cols;
    const double total = (double)*n_seen + (double)n_tokens;
    const double keep = (double)*n_seen / total;
    const double weight = 2.0 / total;

    /* Only the upper triangle is updated, and the lower one is mirrored from it at the end. */
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i; j < n; j++) {
            h[i * n + j] *= keep;
        }
    }

    for (int chunk = 0; chunk < n_tokens; chunk += HESSIAN_TOKEN_CHUNK) {
        const int chunk_end =
            n_tokens - chunk < HESSIAN_TOKEN_CHUNK ? n_tokens : chunk + HESSIAN_TOKEN_CHUNK;
        for (size_t i = 0; i < n; i++) {
            double *h_row = h + i * n;
            int t = chunk;

            /* Four tokens per pass over the row of H: one load and store of H per four
             * products. */
            for (; t + 4 <= chunk_end; t += 4) {
                const float *x0 = x + (size_t)t * n;
                const float *x1 = x0 + n;
                const float *x2 = x1 + n;
                const float *x3 = x2 + n;
                const double c0 = weight * (double)x0[i];
                const double c1 = weight * (double)x1[i];
                const double c2 = weight * (double)x2[i];
                const double c3 = weight * (double)x3[i];
                for (size_t j = i; j < n; j++) {
                    h_row[j] += c0 * (double)x0[j] + c1 * (double)x1[j] + c2 * (double)x2[j] +
                                c3 * (double)x3[j];
                }
            }
            for (; t < chunk_end; t++) {
                const float *x_row = x + (size_t)t * n;
                const double coefficient = weight * (double)x_row[i];
                for (size_t j = i; j < n; j++) {
                    h_row[j] += coefficient * (double)x_row[j];
                }
            }
        }
    }

    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            h[j * n + i] = h[i * n + j];
        }
    }
    *n_seen += n_tokens;
    return SQ_OK;
}
