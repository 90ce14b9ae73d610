/* A seeded pseudo-random generator with no global state: PCG32 (O'Neill's PCG-XSH-RR, 64-bit
 * state, 32-bit output), seeded through SplitMix64. Every caller owns an sq_rng and passes it
 * by pointer, so two generators with the same seed produce the same sequence.
 *
 * The Gaussian uses the polar form of the Box-Muller method. Its logarithm is written in plain
 * IEEE arithmetic instead of calling libm, so a seed gives bit-identical numbers on every
 * platform whose compiler does not fuse a*b+c into one FMA. rng.c turns that contraction off
 * for clang, and GCC does not contract in ISO C mode (-std=c11). */
#ifndef SQ_LINALG_RNG_H
#define SQ_LINALG_RNG_H

#include <stdbool.h>
#include <stdint.h>

typedef struct sq_rng {
    uint64_t state;        /* PCG32 state */
    uint64_t increment;    /* PCG32 stream selector; always odd */
    double spare_gaussian; /* second value of the last polar Box-Muller pair */
    bool has_spare;        /* true when spare_gaussian has not been returned yet */
} sq_rng;

/* Initializes rng from seed; every 64-bit seed gives a different stream. */
void sq_rng_seed(sq_rng *rng, uint64_t seed);

/* Returns the next 32 uniformly distributed bits. */
uint32_t sq_rng_next_u32(sq_rng *rng);

/* Returns the next 64 uniformly distributed bits (two 32-bit outputs, high word first). */
uint64_t sq_rng_next_u64(sq_rng *rng);

/* Returns a uniform integer in [0, bound) without modulo bias; bound must be at least 1. */
uint32_t sq_rng_below(sq_rng *rng, uint32_t bound);

/* Returns a uniform double in [0, 1) with 53 random bits. */
double sq_rng_uniform(sq_rng *rng);

/* Returns a standard normal sample (mean 0, variance 1). */
double sq_rng_gaussian(sq_rng *rng);

#endif
