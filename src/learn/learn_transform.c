/* Double-precision R3 and R4: the structured Hadamard transform of a plan, or its dense
 * random orthogonal fallback. */
#include "learn/learn_transform.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "learn/learn_matmul.h"

sq_status sq_learn_transform_init(sq_learn_transform *t, const sq_hadamard_plan *plan, sq_error *err) {
    memset(t, 0, sizeof(*t));
    t->plan = plan;
    t->n = plan->n;
    size_t n = (size_t)plan->n;
    if (plan->kind == SQ_HADAMARD_PLAN_RANDOM_ORTHOGONAL) {
        t->scale = 1.0;
        t->dense = malloc(n * n * sizeof(double));
        if (t->dense == NULL) {
            return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the dense size-%d online transform", plan->n);
        }
        for (size_t i = 0; i < n * n; i++) {
            t->dense[i] = (double)plan->dense[i];
        }
        return SQ_OK;
    }
    t->scale = 1.0 / sqrt((double)plan->block_size);
    t->scratch = malloc((size_t)plan->block_size * sizeof(double));
    if (t->scratch == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the scratch space of a size-%d transform", plan->n);
    }
    return SQ_OK;
}

void sq_learn_transform_free(sq_learn_transform *t) {
    free(t->dense);
    free(t->scratch);
    memset(t, 0, sizeof(*t));
}

/* Unnormalized Sylvester-order Walsh-Hadamard transform of x (power), a power of two. */
static void fwht(double *x, int power) {
    for (int h = 1; h < power; h *= 2) {
        for (int block = 0; block < power; block += 2 * h) {
            for (int j = block; j < block + h; j++) {
                double u = x[j];
                double v = x[j + h];
                x[j] = u + v;
                x[j + h] = u - v;
            }
        }
    }
}

/* One block x (m·power), viewed as x[a·power + j]: the FWHT over j for each a, then over a the
 * base matrix H_m (or H_mᵀ) for each j, then the scale. */
static void hadamard_block(const sq_learn_transform *t, sq_hadamard_op op, double *x) {
    const sq_hadamard_plan *plan = t->plan;
    int m = plan->base_order;
    int power = plan->power_of_two;
    for (int a = 0; a < m; a++) {
        fwht(x + (size_t)a * (size_t)power, power);
    }
    if (m > 1) {
        for (int a = 0; a < m; a++) {
            for (int j = 0; j < power; j++) {
                double sum = 0.0;
                for (int b = 0; b < m; b++) {
                    int8_t sign = op == SQ_HADAMARD_APPLY_M ? plan->base_matrix[a * m + b] : plan->base_matrix[b * m + a];
                    double value = x[(size_t)b * (size_t)power + (size_t)j];
                    sum += sign > 0 ? value : -value;
                }
                t->scratch[(size_t)a * (size_t)power + (size_t)j] = sum;
            }
        }
        memcpy(x, t->scratch, (size_t)plan->block_size * sizeof(double));
    }
    for (int i = 0; i < plan->block_size; i++) {
        x[i] *= t->scale;
    }
}

sq_status sq_learn_transform_rows(sq_learn_transform *t, sq_hadamard_op op, double *x, int64_t rows,
                                  sq_threadpool *pool, sq_error *err) {
    if (t->dense != NULL) {
        size_t count = (size_t)rows * (size_t)t->n;
        double *y = malloc(count * sizeof(double) + 1);
        if (y == NULL) {
            return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %zu bytes for an online transform",
                                count * sizeof(double));
        }
        /* Row form: M·x is x·Mᵀ (nt with M), Mᵀ·x is x·M (nn with M). */
        sq_status status = op == SQ_HADAMARD_APPLY_M
                               ? sq_learn_matmul_nt_f64(pool, y, x, t->dense, (int32_t)rows, t->n, t->n, err)
                               : sq_learn_matmul_nn_f64(pool, y, x, t->dense, (int32_t)rows, t->n, t->n, err);
        if (status == SQ_OK) {
            memcpy(x, y, count * sizeof(double));
        }
        free(y);
        return status;
    }
    for (int64_t r = 0; r < rows; r++) {
        double *row = x + r * t->n;
        for (int32_t block = 0; block < t->n; block += t->plan->block_size) {
            hadamard_block(t, op, row + block);
        }
    }
    return SQ_OK;
}
