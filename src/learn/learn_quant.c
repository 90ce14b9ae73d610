/* The scale term of the activation and KV quantizers' backward pass. With the plain
 * straight-through estimator a quantizer's scale is a constant, so the gradient carries no
 * information about how a group's range sets its rounding error. With the scale term the
 * quantizer is differentiated as Q(x) = x + s(x)·ε, where ε = (Q(x) − x)/s is the rounding
 * error in units of the scale, held fixed, and s(x) is the scale the evaluation quantizer
 * computes from the group's extreme values. Only those extremes receive the extra gradient,
 * pushing the rotations to shrink the ranges whose rounding error raises the loss. */
#include <math.h>

#include "learn/learn_ops.h"

/* The scale of one group and its derivative with respect to the group's extremes. */
typedef struct group_scale {
    double scale;     /* s(x) of the evaluation quantizer */
    int32_t arg_low;  /* index of the element that sets the low end of the range, or -1 */
    int32_t arg_high; /* index of the element that sets the high end, or -1 */
    double d_low;     /* ∂s/∂x[arg_low] */
    double d_high;    /* ∂s/∂x[arg_high] */
} group_scale;

/* Computes s(x) the way sq_quant_act_fake does, in double: asymmetric groups span
 * [min(x, 0), max(x, 0)]·clip over 2^bits − 1 steps, symmetric ones max|x|·clip over
 * 2^(bits−1) − 1 steps. A group of zeros has a constant scale. */
static group_scale scale_of_group(const double *x, int32_t count, const sq_act_quant_params *p) {
    group_scale g = {0.0, -1, -1, 0.0, 0.0};
    int32_t arg_min = 0;
    int32_t arg_max = 0;
    for (int32_t i = 1; i < count; i++) {
        arg_min = x[i] < x[arg_min] ? i : arg_min;
        arg_max = x[i] > x[arg_max] ? i : arg_max;
    }
    double low = fmin(x[arg_min], 0.0) * p->clip_ratio;
    double high = fmax(x[arg_max], 0.0) * p->clip_ratio;

    if (!p->symmetric) {
        double steps = (double)((1 << p->bits) - 1);
        if (low == 0.0 && high == 0.0) {
            g.scale = 2.0 / steps;
            return g;
        }
        g.scale = (high - low) / steps;
        if (x[arg_min] < 0.0) {
            g.arg_low = arg_min;
            g.d_low = -p->clip_ratio / steps;
        }
        if (x[arg_max] > 0.0) {
            g.arg_high = arg_max;
            g.d_high = p->clip_ratio / steps;
        }
        return g;
    }

    double steps = (double)((1 << (p->bits - 1)) - 1);
    double max_abs = fmax(-low, high);
    if (max_abs == 0.0) {
        g.scale = 1.0;
        return g;
    }
    g.scale = max_abs / steps;
    if (high >= -low) {
        g.arg_high = arg_max;
        g.d_high = p->clip_ratio / steps;
    } else {
        g.arg_low = arg_min;
        g.d_low = -p->clip_ratio / steps;
    }
    return g;
}

static int32_t group_width(int32_t cols, const sq_act_quant_params *p) {
    return p->group_size > 0 ? p->group_size : cols;
}

void sq_learn_fake_quant_errors(double *epsilon, const double *x, const double *xq, int64_t rows, int32_t cols,
                                const sq_act_quant_params *params) {
    int32_t width = group_width(cols, params);
    for (int64_t start = 0; start < rows * cols; start += width) {
        group_scale g = scale_of_group(x + start, width, params);
        for (int32_t i = 0; i < width; i++) {
            epsilon[start + i] = (xq[start + i] - x[start + i]) / g.scale;
        }
    }
}

void sq_learn_fake_quant_replay(double *x, const double *epsilon, int64_t rows, int32_t cols,
                                const sq_act_quant_params *params) {
    int32_t width = group_width(cols, params);
    for (int64_t start = 0; start < rows * cols; start += width) {
        group_scale g = scale_of_group(x + start, width, params);
        for (int32_t i = 0; i < width; i++) {
            x[start + i] += g.scale * epsilon[start + i];
        }
    }
}

void sq_learn_fake_quant_scale_backward(double *d_x, const double *x, const double *xq, int64_t rows, int32_t cols,
                                        const sq_act_quant_params *params) {
    if (params->bits >= SQ_ACT_BITS_FULL) {
        return;
    }
    int32_t width = group_width(cols, params);
    for (int64_t start = 0; start < rows * cols; start += width) {
        group_scale g = scale_of_group(x + start, width, params);
        if (g.arg_low < 0 && g.arg_high < 0) {
            continue;
        }

        /* dL/ds = Σ dL/dQ(x)_i·ε_i */
        double d_scale = 0.0;
        for (int32_t i = 0; i < width; i++) {
            d_scale += d_x[start + i] * (xq[start + i] - x[start + i]) / g.scale;
        }

        if (g.arg_low >= 0) {
            d_x[start + g.arg_low] += d_scale * g.d_low;
        }
        if (g.arg_high >= 0) {
            d_x[start + g.arg_high] += d_scale * g.d_high;
        }
    }
}
