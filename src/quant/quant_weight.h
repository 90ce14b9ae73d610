/* Round-to-nearest (RTN) weight quantization: symmetric, one scale per output channel (row)
 * or per group of columns in a row, with an optional clipping search. Pure functions on
 * row-major float arrays; nothing here allocates.
 *
 * For a b-bit code, qmax = 2^(b-1) - 1 and qmin = -2^(b-1) (4 bits: [-8, 7]). A row or group
 * with maximum magnitude m gets scale = m / qmax, and each weight w becomes
 * q = clamp(round(w / scale), qmin, qmax) and dequantizes to q * scale. Rounding is half to
 * even (see quant/rounding.h). A row or group that is all zeros gets scale 0 and codes 0.
 *
 * Clipping search: for the shrink ratios p = 1 - i/100, i = 0..79, the scale p * m / qmax is
 * tried and the one with the smallest sum over the row or group of |w - q * scale|^2.4 is
 * kept. Ties keep the larger p, and i = 0 is the plain scale, so the search never does worse
 * than no clipping under that metric. This follows the weight quantizer of the SpinQuant and
 * QuaRot reference code (mse=True, norm 2.4, grid 100, maxshrink 0.8).
 *
 * 8 bits per channel (group_size 0, bits 8) is the setting for embeddings and the classifier.
 *
 * Straight-through estimator: when rotations are learned through fake-quantized weights, the
 * gradient of the fake quantizer with respect to w is taken as the identity, because rounding
 * and clamping pass the gradient unchanged. The scale receives no gradient. So the backward
 * pass needs no function from this module. */
#ifndef SQ_QUANT_QUANT_WEIGHT_H
#define SQ_QUANT_QUANT_WEIGHT_H

#include <stdint.h>

#include "core/status.h"

#define SQ_WEIGHT_BITS_MIN 2
#define SQ_WEIGHT_BITS_MAX 16     /* 16 means full precision: fake quantization is the identity */
#define SQ_WEIGHT_CODE_BITS_MAX 8 /* widest code that fits the int8 output of sq_quant_weight_rtn */
#define SQ_WEIGHT_CLIP_GRID 100   /* shrink ratios step by 1/100 */
#define SQ_WEIGHT_CLIP_STEPS 80   /* ratios 1.00, 0.99, ..., 0.21 */
#define SQ_WEIGHT_CLIP_NORM 2.4   /* exponent of the per-element error that the search minimizes */

typedef struct sq_weight_quant_params {
    int bits;        /* code width, SQ_WEIGHT_BITS_MIN..SQ_WEIGHT_BITS_MAX */
    int group_size;  /* 0: one scale per row; otherwise columns per scale, a divisor of cols */
    int clip_search; /* nonzero: pick each scale by the clipping search described above */
} sq_weight_quant_params;

/* Checks bits and group_size against a matrix with cols columns. Fails with
 * SQ_ERR_INVALID_ARG naming the value and the accepted range. */
sq_status sq_weight_quant_params_check(const sq_weight_quant_params *params, int cols,
                                       sq_error *err);

/* Returns qmax = 2^(bits-1) - 1 for a symmetric code. bits must be in 2..16. */
int sq_weight_quant_qmax(int bits);

/* Computes the scale of one row or group of count finite values (by plain max or by the
 * clipping search). Returns 0 when every value is zero. bits must be in 2..16. */
float sq_quant_weight_find_scale(const float *values /* (count) */, int count, int bits,
                                 int clip_search);

/* Returns the code clamp(round(w / scale), qmin, qmax) as an integer-valued float, or 0 when
 * scale is 0. bits must be in 2..16. */
float sq_quant_weight_code(float w, float scale, int bits);

/* Quantizes w and writes the integer codes and the scales, leaving w unchanged. The dequantized
 * weight of element (r, c) is codes[r * cols + c] * scales[r * (cols / g) + c / g], with
 * g = group_size, or g = cols when group_size is 0. Requires bits <= 8 so codes fit int8.
 * Fails with SQ_ERR_INVALID_ARG on bad sizes or parameters and SQ_ERR_NUMERIC when w contains
 * NaN or Inf. */
sq_status sq_quant_weight_rtn(const float *w /* (rows, cols) */, int rows, int cols,
                              const sq_weight_quant_params *params,
                              int8_t *codes /* (rows, cols) */,
                              float *scales /* (rows, cols / g) */, sq_error *err);

/* Fake-quantizes w in place: each weight is replaced by its dequantized value. bits 16 leaves
 * w unchanged. Same errors as sq_quant_weight_rtn, but any bits in 2..16 is accepted. */
sq_status sq_quant_weight_rtn_fake(float *w /* (rows, cols) */, int rows, int cols,
                                   const sq_weight_quant_params *params, sq_error *err);

#endif
