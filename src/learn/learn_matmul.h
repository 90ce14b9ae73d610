/* Double-precision matrix products for rotation learning. Activations, gradients and
 * rotations are double; the frozen model weights stay float and are widened to double one
 * tile at a time. Three shapes, all row-major:
 *   nt: y (rows, out) = x (rows, in) · wᵀ with w (out, in)   (a linear layer's output)
 *   nn: y (rows, out) = x (rows, in) · w  with w (in, out)   (a linear layer's input gradient)
 *   tn: c (m, n) += aᵀ · b with a (rows, m), b (rows, n)     (a sum of outer products)
 * Every output element is summed in one fixed order that depends on neither the tiling nor
 * the thread count, so the results are the same for any number of threads:
 *   nt: eight interleaved partial sums (lane j takes the elements i ≡ j mod 8 of the first
 *       8·⌊in/8⌋, the tail elements go to lanes 0, 1, ... in order), reduced as
 *       ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7));
 *   nn: one running sum over the inner index in increasing order, starting from 0;
 *   tn: one running sum over rows in increasing order, starting from the value in c.
 * The build turns off floating-point contraction, so no multiply-add is fused.
 * pool may be NULL (serial). Allocation failures of the per-task scratch space are reported
 * as SQ_ERR_NOMEM. */
#ifndef SQ_LEARN_LEARN_MATMUL_H
#define SQ_LEARN_LEARN_MATMUL_H

#include <stdint.h>

#include "core/status.h"
#include "core/threadpool.h"

sq_status sq_learn_matmul_nt_f32(sq_threadpool *pool, double *y, const double *x, const float *w, int32_t rows,
                                 int32_t in, int32_t out, sq_error *err);
sq_status sq_learn_matmul_nt_f64(sq_threadpool *pool, double *y, const double *x, const double *w, int32_t rows,
                                 int32_t in, int32_t out, sq_error *err);

sq_status sq_learn_matmul_nn_f32(sq_threadpool *pool, double *y, const double *x, const float *w, int32_t rows,
                                 int32_t in, int32_t out, sq_error *err);
sq_status sq_learn_matmul_nn_f64(sq_threadpool *pool, double *y, const double *x, const double *w, int32_t rows,
                                 int32_t in, int32_t out, sq_error *err);

void sq_learn_matmul_tn_accumulate(sq_threadpool *pool, double *c, const double *a, const double *b, int32_t rows,
                                   int32_t m, int32_t n);

#endif
