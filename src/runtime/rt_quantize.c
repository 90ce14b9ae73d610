/* Per-token quantization into integer codes; see rt_quantize.h for the formulas. */
#include "runtime/rt_quantize.h"

#include <math.h>
#include <string.h>

#include "kernels/q4_layout.h"
#include "quant/rounding.h"

void sq_rt_group_params(const float *x, int32_t n, int bits, int symmetric, float clip, float *scale,
                        int32_t *zero) {
    float lo = 0.0f;
    float hi = 0.0f;
    /* The comparisons skip NaN as fminf and fmaxf do, and compile to minss and maxss instead of
     * library calls. A -0.0 that fminf might keep would change neither the scale nor the zero
     * point. */
    for (int32_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    if (symmetric) {
        float max_abs = fmaxf(-lo * clip, hi * clip);
        float maxq = (float)((1 << (bits - 1)) - 1);
        *scale = max_abs == 0.0f ? 1.0f : max_abs / maxq;
        *zero = 1 << (bits - 1);
        return;
    }
    lo *= clip;
    hi *= clip;
    if (lo == 0.0f && hi == 0.0f) {
        lo = -1.0f;
        hi = 1.0f;
    }
    float maxq = (float)((1 << bits) - 1);
    *scale = (hi - lo) / maxq;
    *zero = (int32_t)sq_round_half_even(-lo / *scale);
}

void sq_rt_quantize_rows(const float *x, int32_t tokens, int32_t cols, const sq_rt_quant_params *p, int32_t sum_group,
                         sq_rt_act *act) {
    int32_t groups = cols / p->group;
    int32_t n_sums = cols / sum_group;
    act->groups_per_token = groups;
    for (int32_t t = 0; t < tokens; t++) {
        const float *row = x + (size_t)t * (size_t)cols;
        uint8_t *out = act->codes + (size_t)t * act->stride;
        int32_t *sums = act->sums + (size_t)t * (size_t)n_sums;
        memset(sums, 0, (size_t)n_sums * sizeof(int32_t));
        if (p->bits <= 4) {
            memset(out, 0, sq_q4_row_bytes(cols));
        }
        for (int32_t g = 0; g < groups; g++) {
            int32_t begin = g * p->group;
            float scale;
            int32_t zero;
            sq_rt_group_params(row + begin, p->group, p->bits, p->symmetric, p->clip, &scale, &zero);
            act->scales[(size_t)t * (size_t)groups + (size_t)g] = scale;
            act->zeros[(size_t)t * (size_t)groups + (size_t)g] = zero;
            for (int32_t c = begin; c < begin + p->group; c++) {
                uint8_t code = sq_rt_encode(row[c], scale, zero, p->bits);
                if (p->bits > 4) {
                    out[c] = code;
                } else {
                    sq_q4_set_nibble(out, c, code);
                }
                sums[c / sum_group] += code;
            }
        }
    }
}
