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

/* Columns an int8 × int16 SIMD kernel adds into its int32 lanes before it moves the lane sums
 * to int64. A lane receives at most one product in four columns, so it sums at most 256
 * products of magnitude 32767 · 128 or less, about 1.07e9, below 2^31. The kernels take one
 * row at a time: the classifier's table streams from main memory, and one forward stream reads
 * faster than several interleaved ones. */
#define SQ_I8_I16_FLUSH_COLUMNS 1024

/* Adds Σ codes[c]·x[c] over columns [begin, n) to *sum. */
static inline void sq_dot_i8_i16_tail(int64_t *sum, const int8_t *codes, const int16_t *x, int32_t begin, int32_t n) {
    for (int32_t c = begin; c < n; c++) {
        *sum += (int64_t)codes[c] * (int64_t)x[c];
    }
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define SQ_QDOT_HAVE_X86 1
void sq_qdot_q4_u8_ssse3(const sq_qdot_args *args);
void sq_qdot_q4_u4_ssse3(const sq_qdot_args *args);
void sq_qdot_q4_u8_avx2(const sq_qdot_args *args);
void sq_qdot_q4_u4_avx2(const sq_qdot_args *args);
int64_t sq_dot_i8_i16_sse41(const int8_t *codes, const int16_t *x, int32_t n);
int64_t sq_dot_i8_i16_avx2(const int8_t *codes, const int16_t *x, int32_t n);
#endif

#if defined(__wasm_simd128__)
#define SQ_QDOT_HAVE_WASM_SIMD128 1
void sq_qdot_q4_u8_wasm(const sq_qdot_args *args);
void sq_qdot_q4_u4_wasm(const sq_qdot_args *args);
int64_t sq_dot_i8_i16_wasm(const int8_t *codes, const int16_t *x, int32_t n);
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
int64_t sq_dot_i8_i16_neon(const int8_t *codes, const int16_t *x, int32_t n);
#endif

#endif
