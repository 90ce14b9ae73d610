/* PCG32 generator and polar Box-Muller Gaussian; see rng.h for the reproducibility contract. */
#include "linalg/rng.h"

#include <math.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* SplitMix64 step: spreads a seed over 64 bits so that nearby seeds give unrelated streams. */
static uint64_t splitmix64_next(uint64_t *x) {
    *x += 0x9E3779B97F4A7C15ull;
    uint64_t z = *x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void sq_rng_seed(sq_rng *rng, uint64_t seed) {
    uint64_t mix = seed;
    uint64_t initial_state = splitmix64_next(&mix);
    rng->increment = (splitmix64_next(&mix) << 1) | 1u;
    rng->state = 0;
    sq_rng_next_u32(rng);
    rng->state += initial_state;
    sq_rng_next_u32(rng);
    rng->spare_gaussian = 0.0;
    rng->has_spare = false;
}

uint32_t sq_rng_next_u32(sq_rng *rng) {
    uint64_t old = rng->state;
    rng->state = old * 6364136223846793005ull + rng->increment;
    uint32_t xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
    uint32_t rotation = (uint32_t)(old >> 59);
    return (xorshifted >> rotation) | (xorshifted << ((32u - rotation) & 31u));
}

uint64_t sq_rng_next_u64(sq_rng *rng) {
    uint64_t high = sq_rng_next_u32(rng);
    uint64_t low = sq_rng_next_u32(rng);
    return (high << 32) | low;
}

uint32_t sq_rng_below(sq_rng *rng, uint32_t bound) {
    /* Reject the lowest (2^32 mod bound) values so that every residue is equally likely. */
    uint32_t threshold = (uint32_t)(-bound) % bound;
    for (;;) {
        uint32_t r = sq_rng_next_u32(rng);
        if (r >= threshold) {
            return r % bound;
        }
    }
}

double sq_rng_uniform(sq_rng *rng) {
    return (double)(sq_rng_next_u64(rng) >> 11) * 0x1.0p-53;
}

/* Natural logarithm of x > 0 from frexp and the series log(m) = 2·atanh((m-1)/(m+1)), which
 * uses only correctly rounded operations and so gives the same bits on every platform. The
 * error is a few ulp, far below what a Gaussian sample needs. */
static double portable_log(double x) {
    int exponent = 0;
    double mantissa = frexp(x, &exponent);
    if (mantissa < 0.70710678118654752440) {
        mantissa *= 2.0;
        exponent -= 1;
    }

    /* |s| <= 0.1716, so s^2 <= 0.0295 and the series is truncated after s^25 (error < 1e-19). */
    double s = (mantissa - 1.0) / (mantissa + 1.0);
    double s2 = s * s;
    double series = 1.0 / 25.0;
    for (int odd = 23; odd >= 1; odd -= 2) {
        series = series * s2 + 1.0 / (double)odd;
    }

    /* ln 2 split so that exponent·ln2_high is exact: ln2_high keeps the top 32 bits. */
    const double ln2_high = 6.93147180369123816490e-01;
    const double ln2_low = 1.90821492927058770002e-10; /* ln 2 - ln2_high */
    return (double)exponent * ln2_high + ((double)exponent * ln2_low + 2.0 * s * series);
}

double sq_rng_gaussian(sq_rng *rng) {
    if (rng->has_spare) {
        rng->has_spare = false;
        return rng->spare_gaussian;
    }

    /* Polar Box-Muller: a uniform point in the unit disc (excluding 0) gives two normals. */
    double u = 0.0;
    double v = 0.0;
    double radius2 = 0.0;
    do {
        u = 2.0 * sq_rng_uniform(rng) - 1.0;
        v = 2.0 * sq_rng_uniform(rng) - 1.0;
        radius2 = u * u + v * v;
    } while (radius2 >= 1.0 || radius2 == 0.0);

    double factor = sqrt(-2.0 * portable_log(radius2) / radius2);
    rng->spare_gaussian = v * factor;
    rng->has_spare = true;
    return u * factor;
}
