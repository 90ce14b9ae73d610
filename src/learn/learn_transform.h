/* The online transforms R3 (over head_dim) and R4 (over hidden_dim) in double precision, for
 * the training forward and backward passes. Each one is the matrix M of an sq_hadamard_plan
 * (hadamard_plan.h): the same Kronecker or block-diagonal Hadamard transform, applied in the
 * same index order, or for the random orthogonal fallback the plan's dense M widened to
 * double. The normalization is 1/sqrt(block size) computed in double, where the float plan
 * uses that value rounded to float. The backward pass of x ← M·x is g ← Mᵀ·g. */
#ifndef SQ_LEARN_LEARN_TRANSFORM_H
#define SQ_LEARN_LEARN_TRANSFORM_H

#include <stdint.h>

#include "core/status.h"
#include "core/threadpool.h"
#include "hadamard/hadamard_plan.h"

typedef struct sq_learn_transform {
    const sq_hadamard_plan *plan; /* not owned */
    int32_t n;                    /* transform size */
    double scale;                 /* 1/sqrt(block size); 1 for the dense fallback */
    double *dense;                /* (n, n) M for the random orthogonal fallback, else NULL */
    double *scratch;              /* (block size) */
} sq_learn_transform;

/* Prepares the double-precision form of plan. */
sq_status sq_learn_transform_init(sq_learn_transform *transform, const sq_hadamard_plan *plan, sq_error *err);

void sq_learn_transform_free(sq_learn_transform *transform);

/* Replaces every row of x (rows, n) by M·row (op SQ_HADAMARD_APPLY_M) or Mᵀ·row
 * (SQ_HADAMARD_APPLY_MT). pool is used by the dense fallback only. */
sq_status sq_learn_transform_rows(sq_learn_transform *transform, sq_hadamard_op op, double *x, int64_t rows,
                                  sq_threadpool *pool, sq_error *err);

#endif
