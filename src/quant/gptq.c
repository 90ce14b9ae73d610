/* GPTQ column-by-column quantization with lazy block updates, following the steps listed in
 * gptq.h. The dense Cholesky factorization and triangular inverse it needs are private to this
 * file.
 * TODO: use the shared routines of src/linalg/ once they exist. */
#include "quant/gptq.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

sq_gptq_params sq_gptq_params_default(int bits) {
    sq_gptq_params params;
    params.weight.bits = bits;
    params.weight.group_size = 0;
    params.weight.clip_search = 0;
    params.damp_ratio = SQ_GPTQ_DEFAULT_DAMP_RATIO;
    params.block_size = SQ_GPTQ_DEFAULT_BLOCK_SIZE;
    params.act_order = 0;
    return params;
}

/* Dense algebra on row-major (n, n) double matrices. */

/* Replaces the lower triangle of a (diagonal included) by the Cholesky factor L of a = L L^T,
 * reading only the lower triangle. Returns -1 on success, or the index of the first pivot that
 * is not positive and finite (the matrix is then not positive definite). */
static long cholesky_lower(double *a, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double *row_i = a + i * n;
        for (size_t j = 0; j <= i; j++) {
            const double *row_j = a + j * n;
            double sum = row_i[j];
            for (size_t k = 0; k < j; k++) {
                sum -= row_i[k] * row_j[k];
            }
            if (j < i) {
                row_i[j] = sum / row_j[j];
            } else if (sum > 0.0 && isfinite(sum)) {
                row_i[i] = sqrt(sum);
            } else {
                return (long)i;
            }
        }
    }
    return -1;
}

/* Replaces the lower triangular L in the lower triangle of a by M = L^-1. Row i of M solves
 * sum_k L[i][k] * M[k][:] = e_i, using the rows k < i already inverted. scratch has room for
 * n doubles. */
static void invert_lower(double *a, size_t n, double *scratch) {
    for (size_t i = 0; i < n; i++) {
        double *row = a + i * n;
        memcpy(scratch, row, (i + 1) * sizeof(double));
        for (size_t c = 0; c < i; c++) {
            row[c] = 0.0;
        }
        for (size_t k = 0; k < i; k++) {
            const double coefficient = scratch[k];
            const double *row_k = a + k * n;
            for (size_t c = 0; c <= k; c++) {
                row[c] -= coefficient * row_k[c];
            }
        }
        const double pivot = scratch[i];
        for (size_t c = 0; c < i; c++) {
            row[c] /= pivot;
        }
        row[i] = 1.0 / pivot;
    }
}

static void copy_lower_to_upper(double *a, size_t n) {
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            a[i * n + j] = a[j * n + i];
        }
    }
}

/* With T = M^T in the upper triangle of a (diagonal included), writes M^T M into the lower
 * triangle: entry (b, c), c <= b, is the dot product of rows c and b of T over columns b..n-1.
 * Each row's diagonal entry is written last, because T[b][b] is read by the other entries of
 * row b and by no later row. */
static void gram_upper_to_lower(double *a, size_t n) {
    for (size_t b = 0; b < n; b++) {
        const double *t_b = a + b * n;
        for (size_t c = 0; c <= b; c++) {
            const double *t_c = a + c * n;
            double sum = 0.0;
            for (size_t k = b; k < n; k++) {
                sum += t_c[k] * t_b[k];
            }
            a[b * n + c] = sum;
        }
    }
}

/* Replaces the symmetric positive definite h (lower triangle read) by U, the upper Cholesky
 * factor of h^-1 (h^-1 = U^T U), stored in the upper triangle. Steps: h = L L^T, M = L^-1,
 * h^-1 = M^T M, h^-1 = L2 L2^T, U = L2^T. Returns -1 on success or the failing pivot index. */
static long inverse_cholesky_upper(double *h, size_t n, double *scratch) {
    long pivot = cholesky_lower(h, n);
    if (pivot >= 0) {
        return pivot;
    }
    invert_lower(h, n, scratch);
    copy_lower_to_upper(h, n);
    gram_upper_to_lower(h, n);
    pivot = cholesky_lower(h, n);
    if (pivot >= 0) {
        return pivot;
    }
    copy_lower_to_upper(h, n);
    return -1;
}

/* Argument checks. */

static sq_status check_finite_and_symmetric(const double *hessian, int cols, sq_error *err) {
    const size_t n = (size_t)cols;
    double max_diagonal = 0.0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            if (!isfinite(hessian[i * n + j])) {
                return sq_error_set(err, SQ_ERR_NUMERIC,
                                    "Hessian entry (%zu, %zu) is %g: expected a finite value", i,
                                    j, hessian[i * n + j]);
            }
        }
        max_diagonal = fmax(max_diagonal, fabs(hessian[i * n + i]));
    }

    /* H = 2 X^T X / n is symmetric up to the rounding of however the caller summed it. */
    const double tolerance = 1e-9 * max_diagonal;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            if (fabs(hessian[i * n + j] - hessian[j * n + i]) > tolerance) {
                return sq_error_set(err, SQ_ERR_INVALID_ARG,
                                    "Hessian is not symmetric: entry (%zu, %zu) is %g but "
                                    "(%zu, %zu) is %g",
                                    i, j, hessian[i * n + j], j, i, hessian[j * n + i]);
            }
        }
    }
    return SQ_OK;
}

static sq_status check_args(const float *w, int rows, int cols, const double *hessian,
                            const sq_gptq_params *params, sq_error *err) {
    if (w == NULL || hessian == NULL || params == NULL) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "GPTQ weights, Hessian or parameters are missing");
    }
    if (rows <= 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid weight matrix height %d: expected at least 1 row", rows);
    }
    sq_status status = sq_weight_quant_params_check(&params->weight, cols, err);
    if (status != SQ_OK) {
        return status;
    }
    if (params->block_size < 1) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid GPTQ block size %d: expected at least 1 (default %d)",
                            params->block_size, SQ_GPTQ_DEFAULT_BLOCK_SIZE);
    }
    if (!(params->damp_ratio >= 0.0 && isfinite(params->damp_ratio))) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid GPTQ dampening ratio %g: expected a finite value >= 0 "
                            "(default %g)",
                            params->damp_ratio, SQ_GPTQ_DEFAULT_DAMP_RATIO);
    }
    if ((size_t)cols > SIZE_MAX / sizeof(double) / (size_t)cols ||
        (size_t)rows > SIZE_MAX / sizeof(float) / (size_t)cols) {
        return sq_error_set(err, SQ_ERR_NOMEM,
                            "GPTQ working memory for a (%d, %d) weight exceeds the address "
                            "space",
                            rows, cols);
    }

    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            const float value = w[(size_t)r * (size_t)cols + (size_t)c];
            if (!isfinite(value)) {
                return sq_error_set(err, SQ_ERR_NUMERIC,
                                    "weight at row %d, column %d is %g: expected a finite "
                                    "value",
                                    r, c, (double)value);
            }
        }
    }
    return check_finite_and_symmetric(hessian, cols, err);
}

/* Working state of one GPTQ call. */
typedef struct gptq_work {
    size_t rows;
    size_t cols;
    int *order;      /* (cols): order[k] is the original index of the k-th processed column */
    double *diag;    /* (cols): Hessian diagonal with dead columns set to 1, original order */
    double *hinv;    /* (cols, cols): the permuted Hessian, then U in its upper triangle */
    float *wt;       /* (cols, rows): weights transposed, row k = processed column k */
    float *errors;   /* (block_size, rows): (w - q) / U_ii of the current block's columns */
    float *scale;    /* (rows): the scale of each row for the current column */
    float *values;   /* (rows, group_size), or (cols) without groups: input of find_scale */
    double *scratch; /* (cols) */
} gptq_work;

static void work_free(gptq_work *work) {
    free(work->order);
    free(work->diag);
    free(work->hinv);
    free(work->wt);
    free(work->errors);
    free(work->scale);
    free(work->values);
    free(work->scratch);
}

static sq_status work_alloc(gptq_work *work, int rows, int cols, const sq_gptq_params *params,
                            sq_error *err) {
    memset(work, 0, sizeof(*work));
    work->rows = (size_t)rows;
    work->cols = (size_t)cols;
    const size_t block = (size_t)(params->block_size < cols ? params->block_size : cols);
    const size_t group = (size_t)params->weight.group_size;
    const size_t values = group > 0 ? work->rows * group : work->cols;

    work->order = malloc(work->cols * sizeof(int));
    work->diag = malloc(work->cols * sizeof(double));
    work->hinv = malloc(work->cols * work->cols * sizeof(double));
    work->wt = malloc(work->rows * work->cols * sizeof(float));
    work->errors = malloc(block * work->rows * sizeof(float));
    work->scale = malloc(work->rows * sizeof(float));
    work->values = malloc(values * sizeof(float));
    work->scratch = malloc(work->cols * sizeof(double));
    if (work->order == NULL || work->diag == NULL || work->hinv == NULL || work->wt == NULL ||
        work->errors == NULL || work->scale == NULL || work->values == NULL ||
        work->scratch == NULL) {
        work_free(work);
        return sq_error_set(err, SQ_ERR_NOMEM,
                            "cannot allocate GPTQ working memory for a (%d, %d) weight "
                            "(%zu MiB for the Hessian inverse)",
                            rows, cols, work->cols * work->cols * sizeof(double) >> 20);
    }
    return SQ_OK;
}

typedef struct diagonal_key {
    double value;
    int index;
} diagonal_key;

/* Orders by descending diagonal, then by ascending index, so ties keep their original order. */
static int compare_diagonal_keys(const void *left, const void *right) {
    const diagonal_key *a = left;
    const diagonal_key *b = right;
    if (a->value != b->value) {
        return a->value > b->value ? -1 : 1;
    }
    return (a->index > b->index) - (a->index < b->index);
}

/* Fills order: the identity, or by descending diagonal for activation order. */
static sq_status build_order(gptq_work *work, int act_order, sq_error *err) {
    const size_t n = work->cols;
    for (size_t i = 0; i < n; i++) {
        work->order[i] = (int)i;
    }
    if (!act_order) {
        return SQ_OK;
    }

    diagonal_key *keys = malloc(n * sizeof(diagonal_key));
    if (keys == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the GPTQ column order");
    }
    for (size_t i = 0; i < n; i++) {
        keys[i].value = work->diag[i];
        keys[i].index = (int)i;
    }
    qsort(keys, n, sizeof(diagonal_key), compare_diagonal_keys);
    for (size_t i = 0; i < n; i++) {
        work->order[i] = keys[i].index;
    }
    free(keys);
    return SQ_OK;
}

/* Steps 1-4 of gptq.h for the Hessian: dead columns, order, dampening, then U. */
static sq_status prepare_hessian(gptq_work *work, const double *hessian,
                                 const sq_gptq_params *params, sq_error *err) {
    const size_t n = work->cols;
    double diagonal_sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double value = hessian[i * n + i];
        work->diag[i] = value == 0.0 ? 1.0 : value;
        diagonal_sum += work->diag[i];
    }
    sq_status status = build_order(work, params->act_order, err);
    if (status != SQ_OK) {
        return status;
    }

    const double damp = params->damp_ratio * diagonal_sum / (double)n;
    for (size_t a = 0; a < n; a++) {
        const size_t source = (size_t)work->order[a];
        for (size_t b = 0; b < n; b++) {
            work->hinv[a * n + b] = hessian[source * n + (size_t)work->order[b]];
        }
        work->hinv[a * n + a] = work->diag[source] + damp;
    }

    const long pivot = inverse_cholesky_upper(work->hinv, n, work->scratch);
    if (pivot >= 0) {
        return sq_error_set(err, SQ_ERR_NUMERIC,
                            "GPTQ Hessian is not positive definite after dampening (Cholesky "
                            "pivot %ld of %zu failed, dampening ratio %g): increase the "
                            "dampening ratio or use more calibration tokens",
                            pivot, n, params->damp_ratio);
    }
    return SQ_OK;
}

/* Copies w into wt in processing order, with dead columns set to 0. */
static void load_weights(gptq_work *work, const float *w, const double *hessian) {
    for (size_t k = 0; k < work->cols; k++) {
        const size_t column = (size_t)work->order[k];
        const int dead = hessian[column * work->cols + column] == 0.0;
        float *target = work->wt + k * work->rows;
        for (size_t r = 0; r < work->rows; r++) {
            target[r] = dead ? 0.0f : w[r * work->cols + column];
        }
    }
}

/* Sets the per-row scales used for every column when there are no groups, from the weights
 * with dead columns zeroed (in original column order). */
static void compute_row_scales(gptq_work *work, const sq_weight_quant_params *quant) {
    for (size_t r = 0; r < work->rows; r++) {
        for (size_t k = 0; k < work->cols; k++) {
            work->values[work->order[k]] = work->wt[k * work->rows + r];
        }
        work->scale[r] = sq_quant_weight_find_scale(work->values, (int)work->cols, quant->bits,
                                                    quant->clip_search);
    }
}

/* Sets the scales of the group whose first column is first (inside the block starting at
 * block_start and ending before block_end), from the weights with every update so far
 * applied. Columns of the block are up to date in wt. Later columns still lack the updates of
 * the block's columns before first, so those are added here, in the order the lazy block
 * update will add them. */
static void compute_group_scales(gptq_work *work, const sq_weight_quant_params *quant,
                                 size_t first, size_t block_start, size_t block_end) {
    const size_t group = (size_t)quant->group_size;
    const size_t n = work->cols;
    for (size_t offset = 0; offset < group; offset++) {
        const size_t column = first + offset;
        const float *current = work->wt + column * work->rows;
        for (size_t r = 0; r < work->rows; r++) {
            float value = current[r];
            if (column >= block_end) {
                for (size_t k = block_start; k < first; k++) {
                    const float u = (float)work->hinv[k * n + column];
                    value -= work->errors[(k - block_start) * work->rows + r] * u;
                }
            }
            work->values[r * group + offset] = value;
        }
    }
    for (size_t r = 0; r < work->rows; r++) {
        work->scale[r] = sq_quant_weight_find_scale(work->values + r * group, (int)group,
                                                    quant->bits, quant->clip_search);
    }
}

/* Quantizes processed column i in place, records its scaled errors in the block's error
 * buffer, and writes its codes when codes is not NULL. */
static void quantize_column(gptq_work *work, size_t i, size_t block_start, int bits,
                            int8_t *codes) {
    const float pivot = (float)work->hinv[i * work->cols + i];
    float *column = work->wt + i * work->rows;
    float *errors = work->errors + (i - block_start) * work->rows;
    const size_t original = (size_t)work->order[i];
    for (size_t r = 0; r < work->rows; r++) {
        const float code = sq_quant_weight_code(column[r], work->scale[r], bits);
        const float dequantized = code * work->scale[r];
        errors[r] = (column[r] - dequantized) / pivot;
        column[r] = dequantized;
        if (codes != NULL) {
            /* A NaN code is reported later by check_result; converting it to int8 is undefined. */
            codes[r * work->cols + original] = isfinite(code) ? (int8_t)code : 0;
        }
    }
}

/* Subtracts errors * U[k][j] (error row of processed column k) from processed column j. */
static void apply_update(gptq_work *work, size_t j, size_t k, const float *errors) {
    const float u = (float)work->hinv[k * work->cols + j];
    if (u == 0.0f) {
        return;
    }
    float *column = work->wt + j * work->rows;
    for (size_t r = 0; r < work->rows; r++) {
        column[r] -= errors[r] * u;
    }
}

/* Step 5 of gptq.h over all columns, block by block. */
static void quantize_columns(gptq_work *work, const sq_gptq_params *params, int8_t *codes,
                             float *scales) {
    const size_t n = work->cols;
    const size_t block = (size_t)params->block_size;
    const size_t group = (size_t)params->weight.group_size;
    if (group == 0) {
        compute_row_scales(work, &params->weight);
        if (scales != NULL) {
            memcpy(scales, work->scale, work->rows * sizeof(float));
        }
    }

    for (size_t block_start = 0; block_start < n; block_start += block) {
        const size_t block_end = n - block_start < block ? n : block_start + block;

        for (size_t i = block_start; i < block_end; i++) {
            if (group > 0 && i % group == 0) {
                compute_group_scales(work, &params->weight, i, block_start, block_end);
                if (scales != NULL) {
                    /* Codes with groups imply no activation order, so i is the original index. */
                    const size_t groups_per_row = n / group;
                    for (size_t r = 0; r < work->rows; r++) {
                        scales[r * groups_per_row + i / group] = work->scale[r];
                    }
                }
            }
            quantize_column(work, i, block_start, params->weight.bits, codes);
            const float *errors = work->errors + (i - block_start) * work->rows;
            for (size_t j = i + 1; j < block_end; j++) {
                apply_update(work, j, i, errors);
            }
        }

        for (size_t j = block_end; j < n; j++) {
            for (size_t k = block_start; k < block_end; k++) {
                apply_update(work, j, k, work->errors + (k - block_start) * work->rows);
            }
        }
    }
}

/* Fails when an update produced NaN or Inf, which a positive definite Hessian should not allow
 * but an ill-conditioned one can through float overflow. */
static sq_status check_result(const gptq_work *work, const sq_gptq_params *params,
                              sq_error *err) {
    for (size_t k = 0; k < work->cols; k++) {
        for (size_t r = 0; r < work->rows; r++) {
            if (!isfinite(work->wt[k * work->rows + r])) {
                return sq_error_set(err, SQ_ERR_NUMERIC,
                                    "GPTQ produced a non-finite weight at row %zu, column %d: "
                                    "the Hessian is too ill-conditioned; increase the "
                                    "dampening ratio (now %g)",
                                    r, work->order[k], params->damp_ratio);
            }
        }
    }
    return SQ_OK;
}

sq_status sq_gptq_quantize_codes(float *w, int rows, int cols, const double *hessian,
                                 const sq_gptq_params *params, int8_t *codes, float *scales,
                                 sq_error *err) {
    sq_status status = check_args(w, rows, cols, hessian, params, err);
    if (status != SQ_OK) {
        return status;
    }
    if ((codes == NULL) != (scales == NULL)) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "GPTQ codes and scales must both be given or both be NULL");
    }
    if (codes != NULL && params->weight.bits > SQ_WEIGHT_CODE_BITS_MAX) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid weight bit width %d for integer codes: expected %d..%d "
                            "(codes are stored as int8)",
                            params->weight.bits, SQ_WEIGHT_BITS_MIN, SQ_WEIGHT_CODE_BITS_MAX);
    }
    if (codes != NULL && params->act_order && params->weight.group_size > 0) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                            "GPTQ integer codes with both activation order and groups (group "
                            "size %d) are not supported: the groups follow the permuted column "
                            "order; disable one of them",
                            params->weight.group_size);
    }
    if (params->weight.bits >= SQ_WEIGHT_BITS_MAX) {
        return SQ_OK;
    }

    gptq_work work;
    status = work_alloc(&work, rows, cols, params, err);
    if (status != SQ_OK) {
        return status;
    }
    status = prepare_hessian(&work, hessian, params, err);
    if (status == SQ_OK) {
        load_weights(&work, w, hessian);
        quantize_columns(&work, params, codes, scales);
        status = check_result(&work, params, err);
    }
    if (status == SQ_OK) {
        for (size_t k = 0; k < work.cols; k++) {
            const size_t column = (size_t)work.order[k];
            for (size_t r = 0; r < work.rows; r++) {
                w[r * work.cols + column] = work.wt[k * work.rows + r];
            }
        }
    }
    work_free(&work);
    return status;
}

sq_status sq_gptq_quantize(float *w, int rows, int cols, const double *hessian,
                           const sq_gptq_params *params, sq_error *err) {
    return sq_gptq_quantize_codes(w, rows, cols, hessian, params, NULL, NULL, err);
}
