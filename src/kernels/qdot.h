/* Integer matrix products of packed 4-bit weights with 8-bit or 4-bit activation codes, for one
 * token (matrix-vector) or a few tokens at once (small matrix-matrix), accumulating in int32.
 *
 * For every token t, weight row r and column group g (columns g·group .. g·group + group - 1)
 * a kernel writes the exact integer
 *     out[t·out_stride + r·n_groups + g] = Σ_c w[r][c] · a[t][c]
 * where w is the signed weight code (nibble - 8, in [-8, 7], see q4_layout.h) and a is the
 * unsigned activation code: a byte in [0, 255] for the u8 kernels, a nibble in [0, 15] stored in
 * the q4 layout for the u4 kernels. Scales and zero points are applied by the caller: with a
 * per-token asymmetric activation x ≈ (a - zero)·s_a and weights W ≈ w·s_w, a group contributes
 * s_w·s_a·(out - zero·weight_sum), so the zero point costs one multiply per group.
 *
 * Variants: a scalar reference, x86 SSSE3 (with SSE4.1 for the int8 × int16 rows) and AVX2
 * (chosen after a run-time CPU check),
 * WebAssembly SIMD128 (-msimd128), WebAssembly relaxed SIMD (-mrelaxed-simd) and AArch64 NEON.
 * Integer sums are exact, so every variant writes the same int32 values as the scalar one for
 * any sizes (tests/c/test_kernels.c checks this). sq_qdot_select() in qdot.c is the one place
 * that picks a variant. */
#ifndef SQ_KERNELS_QDOT_H
#define SQ_KERNELS_QDOT_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/q4_layout.h"

typedef enum sq_kernel_isa {
    SQ_KERNEL_ISA_SCALAR = 0,
    SQ_KERNEL_ISA_SSSE3 = 1, /* SSSE3 and SSE4.1 */
    SQ_KERNEL_ISA_AVX2 = 2,
    SQ_KERNEL_ISA_WASM_SIMD128 = 3,
    SQ_KERNEL_ISA_WASM_RELAXED = 4,
    SQ_KERNEL_ISA_NEON = 5,
} sq_kernel_isa;

#define SQ_KERNEL_ISA_COUNT 6

typedef struct sq_qdot_args {
    int32_t *out;                /* (batch, out_stride): token t, row r, group g at
                                    t·out_stride + r·(cols / group) + g */
    size_t out_stride;           /* int32 values from one token to the next in out */
    const uint8_t *weights;      /* (rows, weight_stride) packed q4 rows */
    size_t weight_stride;        /* bytes from one weight row to the next, >= sq_q4_row_bytes(cols) */
    const uint8_t *acts;         /* (batch, act_stride): u8 codes, or u4 codes in the q4 layout */
    size_t act_stride;           /* bytes from one token to the next */
    const int32_t *weight_sums;  /* (rows, cols / group): Σ w over each group; read only by the
                                    relaxed-SIMD u8 kernel, may be NULL for the others */
    const int32_t *act_sums;     /* (batch, cols / group): Σ a over each group; read by the
                                    relaxed-SIMD u8 kernel and by the one-token WASM paths, may
                                    be NULL, which selects paths that do without */
    int32_t batch;               /* tokens, >= 1 */
    int32_t rows;                /* weight rows, >= 1 */
    int32_t cols;                /* elements per row, >= 1 */
    int32_t group;               /* columns per output sum; divides cols */
} sq_qdot_args;

typedef void (*sq_qdot_fn)(const sq_qdot_args *args);

/* Returns the exact Σ_c codes[c]·x[c] of n int8 weight codes and n int16 activation codes
 * (kernels/matmul_i8.h). Every variant equals sq_dot_i8_i16_scalar, because integer sums are
 * exact. */
typedef int64_t (*sq_dot_i8_i16_fn)(const int8_t *codes, const int16_t *x, int32_t n);

typedef struct sq_qdot_kernels {
    sq_kernel_isa isa;
    sq_qdot_fn q4_u8;          /* 4-bit weights × 8-bit activation codes */
    sq_qdot_fn q4_u4;          /* 4-bit weights × 4-bit activation codes */
    sq_dot_i8_i16_fn i8_i16;   /* int8 weights × int16 activation codes */
} sq_qdot_kernels;

/* Returns the kernels for isa, or NULL when this build or this CPU lacks them. */
const sq_qdot_kernels *sq_qdot_kernels_for(sq_kernel_isa isa);

/* Returns the fastest available kernels: AVX2, SSSE3, relaxed SIMD, SIMD128 or NEON, else
 * scalar. */
const sq_qdot_kernels *sq_qdot_select(void);

/* Returns a short name such as "avx2", or "unknown". */
const char *sq_kernel_isa_name(sq_kernel_isa isa);


/* The scalar reference kernels, also used by the SIMD variants for columns outside whole
 * 32-element blocks. */
void sq_qdot_q4_u8_scalar(const sq_qdot_args *args);
void sq_qdot_q4_u4_scalar(const sq_qdot_args *args);

/* Σ w·a over columns [begin, end) of one weight row and one activation row. */
int32_t sq_qdot_range_q4_u8(const uint8_t *weight_row, const uint8_t *act_row, int32_t begin, int32_t end);
int32_t sq_qdot_range_q4_u4(const uint8_t *weight_row, const uint8_t *act_row, int32_t begin, int32_t end);

#endif
