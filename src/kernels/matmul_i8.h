/* Products of int8 weight codes (one fp32 scale per row) with fp32 activations, for the
 * classifier and any other layer whose input stays in floating point:
 *     y[t][r] = scale[r] · Σ_c (float)code[r][c] · x[t][c].
 * The sum uses eight interleaved partial sums (column c goes to lane c mod 8, the columns after
 * the last whole group of eight go to lanes 0, 1, … in order) reduced pairwise, the order of
 * sq_dot_f32. The SIMD kernels (sq_qdot_kernels.i8_f32, one per ISA) keep that order lane by
 * lane and the build disables floating-point contraction, so they equal the scalar reference
 * bit for bit on every target. */
#ifndef SQ_KERNELS_MATMUL_I8_H
#define SQ_KERNELS_MATMUL_I8_H

#include <stdint.h>

#include "core/threadpool.h"

/* Scalar reference: returns Σ (float)codes[c]·x[c] over n columns in the order above. */
float sq_dot_i8_f32_scalar(const int8_t *codes, const float *x, int32_t n);

/* y (batch, out) for rows [row_begin, row_end): y[t·out + r] = scales[r]·Σ codes[r·in + c]·x[t·in + c].
 * codes (out, in), scales (out), x (batch, in). */
void sq_matmul_i8_f32_rows(float *y, const float *x, const int8_t *codes, const float *scales, int32_t batch,
                           int32_t in, int32_t out, int32_t row_begin, int32_t row_end);

/* The same over every row, split across the pool's threads (NULL runs serially). From four
 * tokens on, row tiles are converted to fp32 once and multiplied with sq_matmul_f32, which sums
 * in the same order, so the result is the same either way. */
void sq_matmul_i8_f32_parallel(sq_threadpool *pool, float *y, const float *x, const int8_t *codes,
                               const float *scales, int32_t batch, int32_t in, int32_t out);

#endif
