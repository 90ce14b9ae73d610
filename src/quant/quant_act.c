/* Dynamic per-token activation and KV-cache fake quantization, with the formulas stated in
 * quant_act.h. */
#include "quant/quant_act.h"

#include <math.h>
#include <stddef.h>

#include "quant/rounding.h"

sq_act_quant_params sq_kv_quant_params(int bits, float clip_ratio, int head_dim) {
    sq_act_quant_params params;
    params.bits = bits;
    params.symmetric = 0;
    params.clip_ratio = clip_ratio;
    params.group_size = head_dim;
    return params;
}

sq_status sq_act_quant_params_check(const sq_act_quant_params *params, int dim, sq_error *err) {
    if (params == NULL) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "activation quantizer parameters are missing");
    }
    if (params->bits < SQ_ACT_BITS_MIN) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid activation bit width %d: expected %d..%d (%d and above "
                            "mean no quantization)",
                            params->bits, SQ_ACT_BITS_MIN, SQ_ACT_BITS_FULL - 1,
                            SQ_ACT_BITS_FULL);
    }
    if (!(params->clip_ratio > 0.0f && params->clip_ratio <= 1.0f)) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid activation clip ratio %g: expected a value in (0, 1]",
                            (double)params->clip_ratio);
    }
    if (dim <= 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid activation row length %d: expected at least 1", dim);
    }
    if (params->group_size < 0 || (params->group_size > 0 && dim % params->group_size != 0)) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid activation group size %d for rows of %d elements: "
                            "expected 0 (one scale per row) or a positive divisor of %d",
                            params->group_size, dim, dim);
    }
    return SQ_OK;
}

/* Returns the index of the first NaN or Inf among the count values, or -1 when all are finite. */
static int find_non_finite(const float *x, int count) {
    for (int i = 0; i < count; i++) {
        if (!isfinite(x[i])) {
            return i;
        }
    }
    return -1;
}

static void quantize_group_asymmetric(float *x, int count, int bits, float clip_ratio) {
    float lo = 0.0f;
    float hi = 0.0f;
    for (int i = 0; i < count; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    lo *= clip_ratio;
    hi *= clip_ratio;
    if (lo == 0.0f && hi == 0.0f) {
        lo = -1.0f;
        hi = 1.0f;
    }

    const float maxq = (float)((1 << bits) - 1);
    const float scale = (hi - lo) / maxq;
    const float zero = sq_round_half_even(-lo / scale);
    for (int i = 0; i < count; i++) {
        const float q = sq_clamp_float(sq_round_half_even(x[i] / scale) + zero, 0.0f, maxq);
        x[i] = (q - zero) * scale;
    }
}

static void quantize_group_symmetric(float *x, int count, int bits, float clip_ratio) {
    float lo = 0.0f;
    float hi = 0.0f;
    for (int i = 0; i < count; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    const float max_abs = fmaxf(-lo * clip_ratio, hi * clip_ratio);

    const float maxq = (float)((1 << (bits - 1)) - 1);
    const float scale = max_abs == 0.0f ? 1.0f : max_abs / maxq;
    for (int i = 0; i < count; i++) {
        const float q = sq_clamp_float(sq_round_half_even(x[i] / scale), -maxq - 1.0f, maxq);
        x[i] = q * scale;
    }
}

sq_status sq_quant_act_fake(float *x, int tokens, int dim, const sq_act_quant_params *params,
                            sq_error *err) {
    sq_status status = sq_act_quant_params_check(params, dim, err);
    if (status != SQ_OK) {
        return status;
    }
    if (tokens < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid token count %d: expected 0 or more", tokens);
    }
    if (x == NULL && tokens > 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "activation array is missing");
    }
    if (params->bits >= SQ_ACT_BITS_FULL) {
        return SQ_OK;
    }

    const int group = params->group_size > 0 ? params->group_size : dim;
    for (int t = 0; t < tokens; t++) {
        float *row = x + (size_t)t * (size_t)dim;
        const int bad = find_non_finite(row, dim);
        if (bad >= 0) {
            return sq_error_set(err, SQ_ERR_NUMERIC,
                                "activation of token %d, element %d is %g: expected a finite "
                                "value",
                                t, bad, (double)row[bad]);
        }
        for (int start = 0; start < dim; start += group) {
            if (params->symmetric) {
                quantize_group_symmetric(row + start, group, params->bits, params->clip_ratio);
            } else {
                quantize_group_asymmetric(row + start, group, params->bits, params->clip_ratio);
            }
        }
    }
    return SQ_OK;
}
