/* Round-to-nearest weight quantization with optional groups and clipping search, following
 * the rules stated in quant_weight.h. */
#include "quant/quant_weight.h"

#include <math.h>
#include <stddef.h>

#include "quant/rounding.h"

sq_status sq_weight_quant_params_check(const sq_weight_quant_params *params, int cols,
                                       sq_error *err) {
    if (params == NULL) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "weight quantizer parameters are missing");
    }
    if (params->bits < SQ_WEIGHT_BITS_MIN || params->bits > SQ_WEIGHT_BITS_MAX) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid weight bit width %d: expected %d..%d", params->bits,
                            SQ_WEIGHT_BITS_MIN, SQ_WEIGHT_BITS_MAX);
    }
    if (cols <= 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid weight matrix width %d: expected at least 1 column", cols);
    }
    if (params->group_size < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid weight group size %d: expected 0 (one scale per row) or "
                            "a positive divisor of the %d columns",
                            params->group_size, cols);
    }
    if (params->group_size > 0 && cols % params->group_size != 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "weight group size %d does not divide the %d columns: expected a "
                            "divisor of %d, or 0 for one scale per row",
                            params->group_size, cols, cols);
    }
    return SQ_OK;
}

int sq_weight_quant_qmax(int bits) {
    return (1 << (bits - 1)) - 1;
}

float sq_quant_weight_code(float w, float scale, int bits) {
    if (scale == 0.0f) {
        return 0.0f;
    }
    const float qmax = (float)sq_weight_quant_qmax(bits);
    return sq_clamp_float(sq_round_half_even(w / scale), -qmax - 1.0f, qmax);
}

/* Returns sum |v - deq(v)|^2.4 over the values for one candidate scale, or any value >= limit
 * as soon as the partial sum reaches limit (the terms are non-negative, so the candidate can
 * no longer win). */
static double clip_error(const float *values, int count, float scale, int bits, double limit) {
    double total = 0.0;
    for (int i = 0; i < count; i++) {
        const float deq = sq_quant_weight_code(values[i], scale, bits) * scale;
        const double diff = fabs((double)values[i] - (double)deq);
        total += pow(diff, SQ_WEIGHT_CLIP_NORM);
        if (total >= limit) {
            return total;
        }
    }
    return total;
}

float sq_quant_weight_find_scale(const float *values, int count, int bits, int clip_search) {
    float max_abs = 0.0f;
    for (int i = 0; i < count; i++) {
        max_abs = fmaxf(max_abs, fabsf(values[i]));
    }
    if (max_abs == 0.0f) {
        return 0.0f;
    }

    const float qmax = (float)sq_weight_quant_qmax(bits);
    if (!clip_search) {
        return max_abs / qmax;
    }

    /* Step 0 is the unclipped scale, and a later ratio must be strictly better to replace it. */
    float best_scale = 0.0f;
    double best_error = INFINITY;
    for (int step = 0; step < SQ_WEIGHT_CLIP_STEPS; step++) {
        const float ratio = (float)(1.0 - (double)step / SQ_WEIGHT_CLIP_GRID);
        const float scale = (ratio * max_abs) / qmax;
        const double error = clip_error(values, count, scale, bits, best_error);
        if (error < best_error) {
            best_error = error;
            best_scale = scale;
        }
    }
    return best_scale;
}

/* Checks sizes, parameters and that every weight is finite. */
static sq_status check_matrix(const float *w, int rows, int cols,
                              const sq_weight_quant_params *params, sq_error *err) {
    if (w == NULL) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "weight matrix is missing");
    }
    if (rows <= 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid weight matrix height %d: expected at least 1 row", rows);
    }
    sq_status status = sq_weight_quant_params_check(params, cols, err);
    if (status != SQ_OK) {
        return status;
    }
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            const float value = w[(size_t)r * (size_t)cols + (size_t)c];
            if (!isfinite(value)) {
                return sq_error_set(err, SQ_ERR_NUMERIC,
                                    "weight at row %d, column %d is %g: expected a finite "
                                    "value",
                                    r, c, (double)value);
            }
        }
    }
    return SQ_OK;
}

sq_status sq_quant_weight_rtn(const float *w, int rows, int cols,
                              const sq_weight_quant_params *params, int8_t *codes,
                              float *scales, sq_error *err) {
    sq_status status = check_matrix(w, rows, cols, params, err);
    if (status != SQ_OK) {
        return status;
    }
    if (params->bits > SQ_WEIGHT_CODE_BITS_MAX) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid weight bit width %d for integer codes: expected %d..%d "
                            "(codes are stored as int8)",
                            params->bits, SQ_WEIGHT_BITS_MIN, SQ_WEIGHT_CODE_BITS_MAX);
    }
    if (codes == NULL || scales == NULL) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "output codes or scales array is missing");
    }

    const int group = params->group_size > 0 ? params->group_size : cols;
    const int groups_per_row = cols / group;
    for (int r = 0; r < rows; r++) {
        for (int g = 0; g < groups_per_row; g++) {
            const size_t start = (size_t)r * (size_t)cols + (size_t)g * (size_t)group;
            const float scale =
                sq_quant_weight_find_scale(w + start, group, params->bits, params->clip_search);
            scales[(size_t)r * (size_t)groups_per_row + (size_t)g] = scale;
            for (int i = 0; i < group; i++) {
                codes[start + (size_t)i] =
                    (int8_t)sq_quant_weight_code(w[start + (size_t)i], scale, params->bits);
            }
        }
    }
    return SQ_OK;
}

sq_status sq_quant_weight_rtn_fake(float *w, int rows, int cols,
                                   const sq_weight_quant_params *params, sq_error *err) {
    sq_status status = check_matrix(w, rows, cols, params, err);
    if (status != SQ_OK) {
        return status;
    }
    if (params->bits >= SQ_WEIGHT_BITS_MAX) {
        return SQ_OK;
    }

    const int group = params->group_size > 0 ? params->group_size : cols;
    const int groups_per_row = cols / group;
    for (int r = 0; r < rows; r++) {
        for (int g = 0; g < groups_per_row; g++) {
            float *segment = w + (size_t)r * (size_t)cols + (size_t)g * (size_t)group;
            const float scale =
                sq_quant_weight_find_scale(segment, group, params->bits, params->clip_search);
            for (int i = 0; i < group; i++) {
                segment[i] = sq_quant_weight_code(segment[i], scale, params->bits) * scale;
            }
        }
    }
    return SQ_OK;
}
