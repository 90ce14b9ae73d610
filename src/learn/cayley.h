/* Cayley SGD on the orthogonal group, the optimizer of SpinQuant rotation learning (SGDG in
 * train_utils/optimizer.py of github.com/facebookresearch/SpinQuant, with momentum 0).
 *
 * For a rotation R (n, n) with gradient G = dL/dR:
 *   A = ½·(Rᵀ·G − Gᵀ·R), skew-symmetric;
 *   α = min(lr, 1/(‖A‖₁ + 1e-8)), ‖·‖₁ the largest column sum of absolute values;
 *   R ← R·(I + α/2·A)⁻¹·(I − α/2·A).
 * To first order this is R − α·R·A = R − α/2·(G − R·Gᵀ·R), a descent direction, and the
 * Cayley factor is orthogonal, so R stays orthogonal up to rounding. The reference computes
 * the same transform from the transposed side (its W is A and its iterate Rᵀ) with five
 * fixed-point iterations. Here an LU solve in double gives the factor exactly, so no drift
 * accumulates. sq_cayley_reorthonormalize (QR) is the remedy when it does. */
#ifndef SQ_LEARN_CAYLEY_H
#define SQ_LEARN_CAYLEY_H

#include <stdint.h>

#include "core/status.h"
#include "core/threadpool.h"

/* Scratch for steps on matrices up to n x n. */
typedef struct sq_cayley_workspace {
    int32_t n;
    double *a;      /* (n, n) A, then the LU factors of I + α/2·A */
    double *factor; /* (n, n) the Cayley factor */
    double *next;   /* (n, n) R times the factor */
} sq_cayley_workspace;

sq_status sq_cayley_workspace_init(sq_cayley_workspace *workspace, int32_t n, sq_error *err);

void sq_cayley_workspace_free(sq_cayley_workspace *workspace);

/* Takes one Cayley step on r (n, n) with gradient g (n, n) and learning rate lr > 0, and
 * writes the step size α used to *step (may be NULL). Fails with SQ_ERR_NUMERIC when g or the
 * result is not finite (r is then unchanged). */
sq_status sq_cayley_step(sq_cayley_workspace *workspace, sq_threadpool *pool, double *r, const double *g, int32_t n,
                         double lr, double *step, sq_error *err);

/* Returns ‖A‖₁ of A = ½·(Rᵀ·G − Gᵀ·R), the quantity that bounds the step. */
double sq_cayley_skew_norm(sq_cayley_workspace *workspace, sq_threadpool *pool, const double *r, const double *g,
                           int32_t n);

/* Scales every gradient by max_norm / (norm + 1e-6) when their joint Euclidean norm exceeds
 * max_norm, as torch.nn.utils.clip_grad_norm_ does; returns that norm before clipping.
 * gradients[i] has counts[i] elements. */
double sq_cayley_clip_gradients(double *const *gradients, const int64_t *counts, int32_t n_gradients,
                                double max_norm);

/* Replaces r (n, n) by the Q of its QR decomposition with the signs of Q's columns chosen so
 * that diag(R) > 0, the orthogonal matrix nearest in that sense. */
sq_status sq_cayley_reorthonormalize(double *r, int32_t n, sq_error *err);

#endif
