/* Interface between the kernel dispatcher (qdot.c) and the per-ISA kernel files, and the
 * column-range split that every SIMD variant uses. Whole 32-element blocks inside a group go to
 * SIMD code. The columns before the first and after the last whole block go to the scalar range
 * functions. */
#ifndef SQ_KERNELS_QDOT_INTERNAL_H
#define SQ_KERNELS_QDOT_INTERNAL_H

#include "kernels/qdot.h"

/* Splits group [begin, end) into the whole blocks [*simd_begin, *simd_end), both multiples of
 * 32, and the scalar columns [begin, *simd_begin) and [*simd_end, end). Without a whole block
 * the SIMD range is empty and starts at end. */
static inline void sq_qdot_split_group(int32_t begin, int32_t end, int32_t *simd_begin, int32_t *simd_end) {
    int32_t first = (begin + SQ_Q4_BLOCK - 1) / SQ_Q4_BLOCK * SQ_Q4_BLOCK;
    int32_t last = end / SQ_Q4_BLOCK * SQ_Q4_BLOCK;
    if (first >= last) {
        first = end;
        last = end;
    }
    *simd_begin = first;
    *simd_end = last;
}

/* Returns the exact Σ w·a of the scalar columns of a group split by sq_qdot_split_group. */
static inline int32_t sq_qdot_edges_u8(const uint8_t *weight_row, const uint8_t *act_row, int32_t begin,
                                       int32_t simd_begin, int32_t simd_end, int32_t end) {
    return sq_qdot_range_q4_u8(weight_row, act_row, begin, simd_begin) +
           sq_qdot_range_q4_u8(weight_row, act_row, simd_end, end);
}

static inline int32_t sq_qdot_edges_u4(const uint8_t *weight_row, const uint8_t *act_row, int32_t begin,
                                       int32_t simd_begin, int32_t simd_end, int32_t end) {
    return sq_qdot_range_q4_u4(weight_row, act_row, begin, simd_begin) +
           sq_qdot_range_q4_u4(weight_row, act_row, simd_end, end);
}

/* Finishes one int8 × fp32 sum from its eight lane sums: adds the columns [begin, n) to lanes
 * 0, 1, … in order and reduces the lanes pairwise (the order of matmul_i8.h). */
static inline float sq_dot_i8_f32_finish(float *lanes, const int8_t *codes, const float *x, int32_t begin, int32_t n) {
    for (int32_t c = begin, j = 0; c < n; c++, j++) {
        lanes[j] += (float)codes[c] * x[c];
    }
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define SQ_QDOT_HAVE_X86 1
void sq_qdot_q4_u8_ssse3(const sq_qdot_args *args);
void sq_qdot_q4_u4_ssse3(const sq_qdot_args *args);
void sq_qdot_q4_u8_avx2(const sq_qdot_args *args);
void sq_qdot_q4_u4_avx2(const sq_qdot_args *args);
void sq_dot_i8_f32_rows_sse41(float *y, const float *x, const int8_t *codes, size_t stride, int32_t n, int32_t n_rows);
void sq_dot_i8_f32_rows_avx2(float *y, const float *x, const int8_t *codes, size_t stride, int32_t n, int32_t n_rows);
#endif

#if defined(__wasm_simd128__)
#define SQ_QDOT_HAVE_WASM_SIMD128 1
void sq_qdot_q4_u8_wasm(const sq_qdot_args *args);
void sq_qdot_q4_u4_wasm(const sq_qdot_args *args);
void sq_dot_i8_f32_rows_wasm(float *y, const float *x, const int8_t *codes, size_t stride, int32_t n, int32_t n_rows);
#endif

#if defined(__wasm_relaxed_simd__)
#define SQ_QDOT_HAVE_WASM_RELAXED 1
void sq_qdot_q4_u8_relaxed(const sq_qdot_args *args);
void sq_qdot_q4_u4_relaxed(const sq_qdot_args *args);
#endif

#if defined(__ARM_NEON) && defined(__aarch64__)
#define SQ_QDOT_HAVE_NEON 1
void sq_qdot_q4_u8_neon(const sq_qdot_args *args);
void sq_qdot_q4_u4_neon(const sq_qdot_args *args);
void sq_dot_i8_f32_rows_neon(float *y, const float *x, const int8_t *codes, size_t stride, int32_t n, int32_t n_rows);
#endif

#endif
