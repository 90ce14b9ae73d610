/* Fast Walsh-Hadamard transform (FWHT) for power-of-two sizes, with a scalar reference and
 * SIMD variants (SSE2, AVX2, WebAssembly SIMD128, AArch64 NEON) chosen in hadamard.c.
 *
 * Scaling: the orthonormal transform computes the unnormalized ±1 butterflies first and then
 * multiplies every element once by sq_hadamard_scale(n) = (float)(1/sqrt(n)), computed in
 * double and rounded once. Every path in this folder (vector, rows, columns, every ISA, and the
 * m·2^k plans of hadamard_plan.h) scales this way, so they agree bit for bit.
 *
 * Butterfly order: stage h = 1, 2, 4, …, n/2 maps (x[j], x[j+h]) to (x[j]+x[j+h], x[j]-x[j+h])
 * for every j with (j & h) == 0. The output is in natural (Sylvester/Hadamard) order, so the
 * unnormalized transform is y = H_n·x with H_n[i][j] = (-1)^popcount(i & j). The SIMD kernels
 * perform the same additions on the same operands, so their results equal the scalar ones
 * bit for bit for all finite inputs (NaN payloads may differ under WebAssembly). */
#ifndef SQ_HADAMARD_HADAMARD_H
#define SQ_HADAMARD_HADAMARD_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"

/* Instruction sets with an FWHT kernel. */
typedef enum sq_hadamard_isa {
    SQ_HADAMARD_ISA_SCALAR = 0,       /* portable C reference */
    SQ_HADAMARD_ISA_SSE2 = 1,         /* x86 SSE2, 4 floats per vector */
    SQ_HADAMARD_ISA_AVX2 = 2,         /* x86 AVX2, 8 floats per vector */
    SQ_HADAMARD_ISA_WASM_SIMD128 = 3, /* WebAssembly SIMD128 (built with -msimd128) */
    SQ_HADAMARD_ISA_NEON = 4,         /* AArch64 Advanced SIMD */
} sq_hadamard_isa;

#define SQ_HADAMARD_ISA_COUNT 5

/* Returns true when isa's kernel was compiled into this build and the CPU supports it (a
 * run-time check on x86; WebAssembly and NEON are decided at compile time). */
bool sq_hadamard_isa_available(sq_hadamard_isa isa);

/* Returns the fastest available ISA: AVX2, then SSE2, SIMD128 or NEON, else scalar. */
sq_hadamard_isa sq_hadamard_best_isa(void);

/* Returns a short name such as "avx2", or "unknown" for a value outside the enum. */
const char *sq_hadamard_isa_name(sq_hadamard_isa isa);

/* Returns true when n is a power of two >= 1. */
bool sq_hadamard_is_power_of_two(int n);

/* Returns the normalization factor (float)(1.0 / sqrt((double)n)) for n >= 1. */
float sq_hadamard_scale(int n);

/* Transforms x (n) in place to H_n·x/sqrt(n) with the best available ISA. n must be a power of
 * two (1 leaves x unchanged); otherwise returns SQ_ERR_INVALID_ARG. */
sq_status sq_hadamard_fwht(float *x, int n, sq_error *err);

/* Same as sq_hadamard_fwht for each row of x (rows, n). */
sq_status sq_hadamard_fwht_rows(float *x, int rows, int n, sq_error *err);

/* Same as sq_hadamard_fwht with a chosen ISA, for tests and benchmarks; returns
 * SQ_ERR_UNSUPPORTED when isa is not available. */
sq_status sq_hadamard_fwht_isa(sq_hadamard_isa isa, float *x, int n, sq_error *err);

/* Unnormalized transform x <- H_n·x with a chosen ISA (no 1/sqrt(n) factor), for tests and
 * for callers that fold the scale into another step. Same errors as sq_hadamard_fwht_isa. */
sq_status sq_hadamard_fwht_unscaled_isa(sq_hadamard_isa isa, float *x, int n, sq_error *err);

#endif
