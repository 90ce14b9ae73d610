/* Applying an sq_hadamard_plan to a vector, to the rows of a matrix and to its columns. All
 * three perform the same floating-point operations on each transformed vector, so they agree
 * bit for bit (see hadamard_plan.h for the order). */
#include "hadamard/hadamard_plan.h"

#include <stdlib.h>
#include <string.h>

#include "hadamard/hadamard_kernels.h"
#include "linalg/linalg.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* Returns the sign table for op: H_m for M, H_mᵀ for Mᵀ. */
static const float *base_signs(const sq_hadamard_plan *plan, sq_hadamard_op op) {
    return op == SQ_HADAMARD_APPLY_M ? plan->base_signs : plan->base_signs_transposed;
}

/* x (n) <- M·x or Mᵀ·x for a dense plan, accumulating y = Σ_j x_j·(column j of the matrix)
 * from 0 in increasing j, the order sq_linalg_matmul_f32 uses. scratch: (n). */
static void dense_apply_vector(const sq_hadamard_plan *plan, sq_hadamard_op op, float *x,
                               float *scratch) {
    int n = plan->n;
    /* Column j of M is row j of Mᵀ, and column j of Mᵀ is row j of M. */
    const float *rows = op == SQ_HADAMARD_APPLY_M ? plan->dense_transposed : plan->dense;
    memset(scratch, 0, (size_t)n * sizeof(float));
    for (int j = 0; j < n; j++) {
        const float xj = x[j];
        const float *row = rows + (size_t)j * (size_t)n;
        for (int i = 0; i < n; i++) {
            scratch[i] += row[i] * xj;
        }
    }
    memcpy(x, scratch, (size_t)n * sizeof(float));
}

/* x (n) <- M·x or Mᵀ·x for a Kronecker or block-diagonal plan. scratch: (block_size). */
static void hadamard_apply_vector(const sq_hadamard_plan *plan, const sq_hadamard_kernels *kernels,
                                  sq_hadamard_op op, float *x, float *scratch) {
    int m = plan->base_order;
    int power = plan->power_of_two;
    for (int block = 0; block < plan->n; block += plan->block_size) {
        float *xb = x + block;
        if (power > 1) {
            for (int a = 0; a < m; a++) {
                kernels->fwht_unscaled(xb + (size_t)a * (size_t)power, power);
            }
        }
        if (m > 1) {
            kernels->base_step(base_signs(plan, op), m, (size_t)power, xb, scratch);
            memcpy(xb, scratch, (size_t)plan->block_size * sizeof(float));
        }
    }
    kernels->scale(x, (size_t)plan->n, plan->scale);
}

static sq_status get_scratch(const sq_hadamard_plan *plan, float **scratch, float **owned,
                             sq_error *err) {
    *owned = NULL;
    size_t floats = sq_hadamard_plan_scratch_floats(plan);
    if (*scratch != NULL || floats == 0) {
        return SQ_OK;
    }
    *owned = malloc(floats * sizeof(float));
    if (*owned == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "out of memory for %zu floats of Hadamard scratch",
                            floats);
    }
    *scratch = *owned;
    return SQ_OK;
}

sq_status sq_hadamard_plan_apply_rows(const sq_hadamard_plan *plan, sq_hadamard_op op, float *a,
                                      int rows, float *scratch, sq_error *err) {
    if (rows < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "Hadamard row count %d is invalid: expected >= 0", rows);
    }
    const sq_hadamard_kernels *kernels = sq_hadamard_kernels_for(plan->isa);
    if (kernels == NULL) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "FWHT kernel '%s' is not available",
                            sq_hadamard_isa_name(plan->isa));
    }
    float *owned = NULL;
    sq_status status = get_scratch(plan, &scratch, &owned, err);
    if (status != SQ_OK) {
        return status;
    }

    for (int r = 0; r < rows; r++) {
        float *row = a + (size_t)r * (size_t)plan->n;
        if (plan->kind == SQ_HADAMARD_PLAN_RANDOM_ORTHOGONAL) {
            dense_apply_vector(plan, op, row, scratch);
        } else {
            hadamard_apply_vector(plan, kernels, op, row, scratch);
        }
    }
    free(owned);
    return SQ_OK;
}

sq_status sq_hadamard_plan_apply(const sq_hadamard_plan *plan, sq_hadamard_op op, float *x,
                                 float *scratch, sq_error *err) {
    return sq_hadamard_plan_apply_rows(plan, op, x, 1, scratch, err);
}

/* Unnormalized FWHT over the row index of a (power, cols): radix-2 butterflies between whole
 * rows, in the stage order of the scalar reference kernel. */
static void fwht_across_rows(float *a, int power, int cols) {
    for (int h = 1; h < power; h *= 2) {
        for (int block = 0; block < power; block += 2 * h) {
            for (int j = block; j < block + h; j++) {
                float *top = a + (size_t)j * (size_t)cols;
                float *bottom = a + (size_t)(j + h) * (size_t)cols;
                for (int c = 0; c < cols; c++) {
                    float u = top[c];
                    float v = bottom[c];
                    top[c] = u + v;
                    bottom[c] = u - v;
                }
            }
        }
    }
}

sq_status sq_hadamard_plan_apply_columns(const sq_hadamard_plan *plan, sq_hadamard_op op,
                                         float *a, int cols, sq_error *err) {
    if (cols < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "Hadamard column count %d is invalid: expected >= 0", cols);
    }
    const sq_hadamard_kernels *kernels = sq_hadamard_kernels_for(plan->isa);
    if (kernels == NULL) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "FWHT kernel '%s' is not available",
                            sq_hadamard_isa_name(plan->isa));
    }
    size_t total = (size_t)plan->n * (size_t)cols;
    float *scratch = malloc(total * sizeof(float) + 1);
    if (scratch == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM,
                            "out of memory for a %d x %d Hadamard column transform", plan->n, cols);
    }

    if (plan->kind == SQ_HADAMARD_PLAN_RANDOM_ORTHOGONAL) {
        const float *matrix = op == SQ_HADAMARD_APPLY_M ? plan->dense : plan->dense_transposed;
        sq_linalg_matmul_f32(matrix, a, scratch, plan->n, plan->n, cols);
        memcpy(a, scratch, total * sizeof(float));
        free(scratch);
        return SQ_OK;
    }

    int m = plan->base_order;
    int power = plan->power_of_two;
    size_t block_floats = (size_t)plan->block_size * (size_t)cols;
    for (int block = 0; block < plan->n; block += plan->block_size) {
        float *ab = a + (size_t)block * (size_t)cols;
        for (int g = 0; g < m; g++) {
            fwht_across_rows(ab + (size_t)g * (size_t)power * (size_t)cols, power, cols);
        }
        if (m > 1) {
            kernels->base_step(base_signs(plan, op), m, (size_t)power * (size_t)cols, ab,
                               scratch);
            memcpy(ab, scratch, block_floats * sizeof(float));
        }
    }
    kernels->scale(a, total, plan->scale);
    free(scratch);
    return SQ_OK;
}

sq_status sq_hadamard_plan_to_dense(const sq_hadamard_plan *plan, float *out, sq_error *err) {
    size_t n = (size_t)plan->n;
    memset(out, 0, n * n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        out[i * n + i] = 1.0f;
    }
    return sq_hadamard_plan_apply_columns(plan, SQ_HADAMARD_APPLY_M, out, plan->n, err);
}
