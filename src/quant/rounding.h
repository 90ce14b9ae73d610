/* The one rounding rule every quantizer in src/quant/ uses: round half to even, the rule of
 * torch.round, so codes match the PyTorch reference on ties such as 2.5 -> 2 and -0.5 -> -0. */
#ifndef SQ_QUANT_ROUNDING_H
#define SQ_QUANT_ROUNDING_H

#include <math.h>

/* Rounds x to the nearest integer, ties to even. nearbyintf follows the current floating-point
 * rounding mode. The library never changes it from the C default (round to nearest, ties to
 * even), and WebAssembly has no other mode. */
static inline float sq_round_half_even(float x) {
    return nearbyintf(x);
}

/* Clamps x to [lo, hi]. */
static inline float sq_clamp_float(float x, float lo, float hi) {
    if (x < lo) {
        return lo;
    }
    if (x > hi) {
        return hi;
    }
    return x;
}

#endif
