/* Internal interface between the dispatcher (hadamard.c, hadamard_plan_apply.c) and the
 * per-ISA kernel files. Each kernel set provides the unnormalized FWHT, the dense H_m step of
 * m·2^k transforms and the final scaling. All of them must give the same bits as the scalar
 * reference; hadamard.h and hadamard_plan.h define the operation order. */
#ifndef SQ_HADAMARD_KERNELS_H
#define SQ_HADAMARD_KERNELS_H

#include <stddef.h>

#include "hadamard/hadamard.h"

typedef struct sq_hadamard_kernels {
    /* x (n) <- H_n·x; n is a power of two >= 1. */
    void (*fwht_unscaled)(float *x, int n);
    /* y = S·x over m groups of slab floats: group a of y is Σ_b signs[a·m + b]·(group b of x),
     * summed in increasing b from signs[a·m]·(group 0). signs: (m, m) floats ±1, so every
     * product is exact. x, y: (m·slab), not aliasing. */
    void (*base_step)(const float *signs, int m, size_t slab, const float *x, float *y);
    /* x (count) <- x·factor, one multiplication per element. */
    void (*scale)(float *x, size_t count, float factor);
} sq_hadamard_kernels;

/* Returns the kernels for isa, or NULL when they are not compiled in or the CPU lacks them. */
const sq_hadamard_kernels *sq_hadamard_kernels_for(sq_hadamard_isa isa);

void sq_hadamard_fwht_unscaled_scalar(float *x, int n);
void sq_hadamard_base_step_scalar(const float *signs, int m, size_t slab, const float *x,
                                 float *y);
void sq_hadamard_scale_scalar(float *x, size_t count, float factor);

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define SQ_HADAMARD_HAVE_X86 1
void sq_hadamard_fwht_unscaled_sse2(float *x, int n);
void sq_hadamard_base_step_sse2(const float *signs, int m, size_t slab, const float *x,
                                 float *y);
void sq_hadamard_scale_sse2(float *x, size_t count, float factor);
void sq_hadamard_fwht_unscaled_avx2(float *x, int n);
void sq_hadamard_base_step_avx2(const float *signs, int m, size_t slab, const float *x,
                                 float *y);
void sq_hadamard_scale_avx2(float *x, size_t count, float factor);
#endif

#if defined(__wasm_simd128__)
#define SQ_HADAMARD_HAVE_WASM_SIMD128 1
void sq_hadamard_fwht_unscaled_wasm(float *x, int n);
void sq_hadamard_base_step_wasm(const float *signs, int m, size_t slab, const float *x,
                                 float *y);
void sq_hadamard_scale_wasm(float *x, size_t count, float factor);
#endif

/* AArch64 only: 32-bit ARM NEON flushes subnormals to zero, which would break bit equality. */
#if defined(__ARM_NEON) && defined(__aarch64__)
#define SQ_HADAMARD_HAVE_NEON 1
void sq_hadamard_fwht_unscaled_neon(float *x, int n);
void sq_hadamard_base_step_neon(const float *signs, int m, size_t slab, const float *x,
                                 float *y);
void sq_hadamard_scale_neon(float *x, size_t count, float factor);
#endif

#endif
