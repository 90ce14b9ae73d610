/* Orthogonal "online" transforms of any size n, for the fixed rotations R3 and R4 and for
 * initializing R1 and R2.
 *
 * The transform matrix M (n, n) is one of:
 *   KRONECKER (n has a Hadamard matrix, see hadamard_matrix.h):
 *       M = (H_m ⊗ H_(2^k)) / sqrt(n), n = m·2^k.
 *   BLOCK_DIAGONAL (fallback): M = I_(n/b) ⊗ (H_m ⊗ H_(2^k)) / sqrt(b), where b = m·2^k is the
 *       largest supported Hadamard order that divides n, used when b >= SQ_HADAMARD_MIN_BLOCK.
 *   RANDOM_ORTHOGONAL (fallback): M is a dense Haar random orthogonal matrix from the plan's
 *       seed (sq_linalg_random_orthogonal_f32), used when no block of at least
 *       SQ_HADAMARD_MIN_BLOCK divides n and n <= SQ_HADAMARD_MAX_DENSE_FALLBACK.
 * Any other n (such as a large prime) is rejected with SQ_ERR_UNSUPPORTED. A fallback logs one
 * warning line naming n and the transform chosen, and plan->kind shows the caller which one it
 * got.
 *
 * Index order (the same for weights and activations): inside a block, x is viewed as
 * x[a·2^k + j] with a < m, j < 2^k. Applying M computes, for each a, the unnormalized FWHT over
 * j; then for each j, y[a] = Σ_b H_m[a][b]·x[b] (Mᵀ uses H_m[b][a], because H_m is not symmetric in general),
 * summed over b in increasing order starting from ±x[0]; then it multiplies every element once
 * by plan->scale = (float)(1/sqrt(b)). So the weight side of R4 is W ← W·Mᵀ
 * (sq_hadamard_plan_apply_rows with SQ_HADAMARD_APPLY_M on the rows of W) and the activation
 * side is x ← M·x (sq_hadamard_plan_apply with SQ_HADAMARD_APPLY_M); then
 * (W·Mᵀ)·(M·x) = W·x.
 *
 * A plan is read-only after creation, so threads may share it if each passes its own scratch. */
#ifndef SQ_HADAMARD_PLAN_H
#define SQ_HADAMARD_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "core/status.h"
#include "hadamard/hadamard.h"
#include "hadamard/hadamard_matrix.h"

/* Smallest Hadamard block accepted by the block-diagonal fallback: a smaller block would spread
 * an outlier over too few coordinates to help quantization. */
#define SQ_HADAMARD_MIN_BLOCK 8

/* Largest n for the dense random orthogonal fallback: it stores two n x n float matrices, costs
 * n^2 multiply-adds per vector, and creating it runs an O(n^3) QR (seconds for n = 2048,
 * minutes for n = 4096; see linalg.h). */
#define SQ_HADAMARD_MAX_DENSE_FALLBACK 4096

typedef enum sq_hadamard_plan_kind {
    SQ_HADAMARD_PLAN_KRONECKER = 0,
    SQ_HADAMARD_PLAN_BLOCK_DIAGONAL = 1,
    SQ_HADAMARD_PLAN_RANDOM_ORTHOGONAL = 2,
} sq_hadamard_plan_kind;

/* Which matrix an apply function multiplies by. */
typedef enum sq_hadamard_op {
    SQ_HADAMARD_APPLY_M = 0,  /* x <- M·x */
    SQ_HADAMARD_APPLY_MT = 1, /* x <- Mᵀ·x, the inverse of M */
} sq_hadamard_op;

typedef struct sq_hadamard_plan {
    int n;                                 /* transform size */
    sq_hadamard_plan_kind kind;
    int block_size;                        /* b: n for KRONECKER, the block order for
                                              BLOCK_DIAGONAL, n for RANDOM_ORTHOGONAL */
    int base_order;                        /* m; 0 for RANDOM_ORTHOGONAL */
    int power_of_two;                      /* 2^k, with block_size = m·2^k; 0 for
                                              RANDOM_ORTHOGONAL */
    sq_hadamard_construction construction; /* how H_m was built; NONE for RANDOM_ORTHOGONAL */
    int8_t *base_matrix;                   /* (m, m) ±1 entries of H_m, or NULL */
    float *base_signs;                     /* (m, m) H_m as floats ±1, or NULL */
    float *base_signs_transposed;          /* (m, m) H_mᵀ as floats ±1, or NULL */
    float scale;                           /* (float)(1/sqrt(block_size)); 1 for
                                              RANDOM_ORTHOGONAL */
    float *dense;                          /* (n, n) M for RANDOM_ORTHOGONAL, else NULL */
    float *dense_transposed;               /* (n, n) Mᵀ for RANDOM_ORTHOGONAL, else NULL */
    uint64_t seed;                         /* seed of the random orthogonal fallback */
    sq_hadamard_isa isa;                   /* FWHT kernel used by the apply functions */
} sq_hadamard_plan;

/* Builds the transform for size n >= 1 as described above, using the best available FWHT
 * kernel. seed is used only by the RANDOM_ORTHOGONAL fallback; logger may be NULL. On
 * success *plan receives a new plan to free with sq_hadamard_plan_free. */
sq_status sq_hadamard_plan_create(int n, uint64_t seed, const sq_logger *logger,
                                  sq_hadamard_plan **plan, sq_error *err);

/* Frees plan and everything it owns; NULL is allowed. */
void sq_hadamard_plan_free(sq_hadamard_plan *plan);

/* Selects the FWHT kernel for later apply calls (for tests and benchmarks; every kernel gives
 * the same bits). Returns SQ_ERR_UNSUPPORTED when isa is not available. */
sq_status sq_hadamard_plan_set_isa(sq_hadamard_plan *plan, sq_hadamard_isa isa, sq_error *err);

/* Returns the number of floats of scratch the vector and row functions need (0 for powers of
 * two). */
size_t sq_hadamard_plan_scratch_floats(const sq_hadamard_plan *plan);

/* Transforms x (n) in place: x <- M·x or Mᵀ·x. scratch has room for
 * sq_hadamard_plan_scratch_floats(plan) floats, or is NULL to allocate it for this call, in
 * which case SQ_ERR_NOMEM is possible. */
sq_status sq_hadamard_plan_apply(const sq_hadamard_plan *plan, sq_hadamard_op op, float *x,
                                 float *scratch, sq_error *err);

/* Transforms every row r of a (rows, n) as sq_hadamard_plan_apply does, so a <- a·Mᵀ for
 * SQ_HADAMARD_APPLY_M and a <- a·M for SQ_HADAMARD_APPLY_MT. Same scratch rule. */
sq_status sq_hadamard_plan_apply_rows(const sq_hadamard_plan *plan, sq_hadamard_op op, float *a,
                                      int rows, float *scratch, sq_error *err);

/* Transforms every column of a (n, cols): a <- M·a or Mᵀ·a. Allocates n·cols floats of scratch.
 * Each column gets the same bits as sq_hadamard_plan_apply on that column. */
sq_status sq_hadamard_plan_apply_columns(const sq_hadamard_plan *plan, sq_hadamard_op op,
                                         float *a, int cols, sq_error *err);

/* Writes M (n, n), row-major (M·I computed by sq_hadamard_plan_apply_columns). */
sq_status sq_hadamard_plan_to_dense(const sq_hadamard_plan *plan, float *out, sq_error *err);

#endif
