/* Dynamic per-token quantization of activations and of the KV cache into integer codes, with
 * the formulas of quant/quant_act.h, so a code times its scale minus the zero point equals the
 * value the fake-quant evaluator computes for the same input:
 *   asymmetric (maxq = 2^b - 1): lo = min(min(x), 0)·clip, hi = max(max(x), 0)·clip (lo = -1,
 *     hi = 1 when both are 0), scale = (hi - lo) / maxq, zero = round(-lo / scale),
 *     code = clamp(round(x / scale) + zero, 0, maxq);
 *   symmetric (maxq = 2^(b-1) - 1): scale = max(-lo, hi) / maxq (1 when 0),
 *     code = clamp(round(x / scale), -maxq - 1, maxq) + 2^(b-1), zero = 2^(b-1);
 * in both cases x ≈ (code - zero)·scale with 0 <= code < 2^b. Rounding is half to even. */
#ifndef SQ_RUNTIME_RT_QUANTIZE_H
#define SQ_RUNTIME_RT_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

#include "quant/rounding.h"

typedef struct sq_rt_quant_params {
    int bits;        /* 2..8; codes of up to 4 bits are stored as nibbles */
    int symmetric;
    float clip;      /* in (0, 1] */
    int32_t group;   /* elements per scale; divides the row length */
} sq_rt_quant_params;

/* Quantized activations of a batch: codes and per-group scales and zero points. */
typedef struct sq_rt_act {
    uint8_t *codes;      /* (tokens, stride): u8 codes, or u4 codes in the q4 layout */
    size_t stride;       /* bytes per token */
    float *scales;       /* (tokens, groups_per_token) */
    int32_t *zeros;      /* (tokens, groups_per_token) */
    int32_t *sums;       /* (tokens, cols / sum_group): Σ codes per kernel group */
    int32_t groups_per_token;
} sq_rt_act;

/* Quantizes x (tokens, cols) into act. sum_group (a divisor of cols) sets the grouping of
 * act->sums. act->stride must hold a row: cols bytes for bits > 4, sq_q4_row_bytes(cols)
 * otherwise. Non-finite inputs give code 0 for that element (callers check the logits). */
void sq_rt_quantize_rows(const float *x, int32_t tokens, int32_t cols, const sq_rt_quant_params *params,
                         int32_t sum_group, sq_rt_act *act);

/* Computes the scale and zero point of one group of n values. */
void sq_rt_group_params(const float *x, int32_t n, int bits, int symmetric, float clip, float *scale, int32_t *zero);

/* Returns the code clamp(round(x / scale) + zero, 0, 2^bits - 1); NaN gives 0. Both rules
 * reduce to this form once the symmetric offset is the zero point. */
static inline uint8_t sq_rt_encode(float x, float scale, int32_t zero, int bits) {
    float code = sq_round_half_even(x / scale) + (float)zero;
    float maxq = (float)((1 << bits) - 1);
    if (!(code >= 0.0f)) {
        return 0;
    }
    return (uint8_t)(code > maxq ? maxq : code);
}

#endif
