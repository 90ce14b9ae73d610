/* fp32 reference matrix products for the forward pass. Summation order is fixed (eight
 * interleaved partial sums, reduced pairwise) and the build disables floating-point
 * contraction, so native and WebAssembly builds produce the same bits. */
#ifndef SQ_FORWARD_MATMUL_H
#define SQ_FORWARD_MATMUL_H

#include <stdint.h>

/* Returns the dot product of a and b (n floats each) in the fixed summation order. */
float sq_dot_f32(const float *a, const float *b, int32_t n);

/* y = x·Wᵀ for a batch: y (batch, out), x (batch, in), w (out, in), all row-major. */
void sq_matmul_f32(float *y, const float *x, const float *w, int32_t batch, int32_t in, int32_t out);



#include "core/threadpool.h"

/* sq_matmul_f32 with the output rows split across the pool's threads; the result is identical
 * to the serial one for any thread count. */
void sq_matmul_f32_parallel(sq_threadpool *pool, float *y, const float *x, const float *w, int32_t batch,
                            int32_t in, int32_t out);
#endif
