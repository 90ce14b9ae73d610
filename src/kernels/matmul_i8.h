/* Products of int8 weight codes (one fp32 scale per row) with activations quantized to int16, for
 * the classifier, whose input SpinQuant leaves at 16 bits:
 *     y[t][r] = scale[r] · (x_scale[t] · (float)Σ_c code[r][c] · x_code[t][c]).
 * The activation codes are symmetric per token: x_code = round(x / x_scale) with
 * x_scale = max|x| / 32767. The sum is an exact int64, so every SIMD kernel
 * (sq_qdot_kernels.i8_i16, one per ISA) equals the scalar reference bit for bit, and a token gets
 * the same logits alone or in a batch. */
#ifndef SQ_KERNELS_MATMUL_I8_H
#define SQ_KERNELS_MATMUL_I8_H

#include <stdint.h>

#include "core/threadpool.h"

/* The largest int16 activation code; the range is symmetric, [-32767, 32767]. */
#define SQ_I16_CODE_MAX 32767

/* Quantizes x (batch, n) into codes (batch, n) and scales (batch) as above. A row of zeros gets
 * scale 1. A row containing NaN or Inf gets scale NaN with zero codes, so its outputs become
 * NaN. */
void sq_quantize_rows_i16(int16_t *codes, float *scales, const float *x, int32_t batch, int32_t n);

/* Scalar reference: returns the exact Σ codes[c]·x[c] over n columns. */
int64_t sq_dot_i8_i16_scalar(const int8_t *codes, const int16_t *x, int32_t n);

/* Computes y (batch, out) for rows [row_begin, row_end) as above. codes (out, in), scales (out),
 * x (batch, in), x_scales (batch). */
void sq_matmul_i8_i16_rows(float *y, const int16_t *x, const float *x_scales, const int8_t *codes,
                           const float *scales, int32_t batch, int32_t in, int32_t out, int32_t row_begin,
                           int32_t row_end);

/* Computes every row of y, split across the pool's threads (NULL runs serially). */
void sq_matmul_i8_i16_parallel(sq_threadpool *pool, float *y, const int16_t *x, const float *x_scales,
                               const int8_t *codes, const float *scales, int32_t batch, int32_t in, int32_t out);

#endif
