/* Dynamic per-token fake quantization of activations and of the KV cache. Every row of a
 * (tokens, dim) array, or every group of group_size consecutive elements of a row, gets its
 * own scale from its current values. Each value is then replaced by its dequantized value.
 *
 * Asymmetric (the default), with maxq = 2^b - 1:
 *   lo = min(min(x), 0) * clip_ratio, hi = max(max(x), 0) * clip_ratio
 *   (a group of zeros uses lo = -1, hi = 1 instead, which still dequantizes to zeros);
 *   scale = (hi - lo) / maxq, zero = round(-lo / scale),
 *   q = clamp(round(x / scale) + zero, 0, maxq), deq = (q - zero) * scale.
 * Symmetric, with maxq = 2^(b-1) - 1:
 *   m = max(|lo|, hi) with lo and hi as above, scale = m / maxq (1 when m is 0),
 *   q = clamp(round(x / scale), -maxq - 1, maxq), deq = q * scale.
 * Rounding is half to even (quant/rounding.h). bits >= 16 leaves the values unchanged.
 *
 * These are the formulas of ActQuantizer in the SpinQuant and QuaRot reference code. One
 * difference: that code includes 0 in [lo, hi] only on its per-row path (used for the K cache,
 * one head per row), not on its grouped path (used for the V cache and the o_proj input).
 * Here 0 is always included, so zero is exactly representable and a group of equal nonzero
 * values cannot give a zero scale.
 *
 * Uses in the engine (defaults of the SpinQuant method):
 *   - linear-layer inputs: asymmetric, one scale per token (group_size 0);
 *   - o_proj input: asymmetric, group_size = head_dim (one scale per head);
 *   - K cache (after RoPE and the Hadamard transform R3) and V cache: asymmetric,
 *     group_size = head_dim, built by sq_kv_quant_params.
 *
 * Straight-through estimator: when rotations are learned through this quantizer, its backward
 * pass is the identity (rounding and clamping pass the gradient unchanged, and the scale and
 * zero point receive none), so no backward function is provided. */
#ifndef SQ_QUANT_QUANT_ACT_H
#define SQ_QUANT_QUANT_ACT_H

#include "core/status.h"

#define SQ_ACT_BITS_MIN 2
#define SQ_ACT_BITS_FULL 16 /* this width and above mean no quantization */

typedef struct sq_act_quant_params {
    int bits;         /* code width, at least SQ_ACT_BITS_MIN (>= SQ_ACT_BITS_FULL: identity) */
    int symmetric;    /* 0: asymmetric with a zero point, nonzero: symmetric */
    float clip_ratio; /* in (0, 1]: lo and hi are multiplied by it before the scale */
    int group_size;   /* 0: one scale per row; otherwise elements per scale, a divisor of dim */
} sq_act_quant_params;

/* Returns the parameters of the KV-cache quantizer: asymmetric, one scale per head of each
 * token (group_size = head_dim). */
sq_act_quant_params sq_kv_quant_params(int bits, float clip_ratio, int head_dim);

/* Checks the parameters against rows of dim elements. Fails with SQ_ERR_INVALID_ARG naming the
 * value and the accepted range. */
sq_status sq_act_quant_params_check(const sq_act_quant_params *params, int dim, sq_error *err);

/* Fake-quantizes each row of x (or each group of a row) in place. Fails with
 * SQ_ERR_INVALID_ARG on bad sizes or parameters. Fails with SQ_ERR_NUMERIC, naming the token
 * and the element, when x contains NaN or Inf, and rows before that token are then already
 * quantized. */
sq_status sq_quant_act_fake(float *x /* (tokens, dim) */, int tokens, int dim,
                            const sq_act_quant_params *params, sq_error *err);

#endif
