/* Integer kernels for WebAssembly SIMD128, compiled only with -msimd128.
 *
 * SIMD128 has no 8-bit multiply, so each 16-element half block is widened to int16: the u8
 * activation codes by zero extension, the weight codes by sign extension. i32x4.dot_i16x8_s
 * then multiplies and adds adjacent pairs into int32 (|product| <= 255·8, exact). For u4
 * activations both operands fit int8, so i16x8.extmul products (|product| <= 120) are added in
 * int16 for up to 64 blocks and widened with i32x4.extadd_pairwise_i16x8_s. Every step is
 * exact, so the results equal the scalar reference. */
#include "kernels/qdot_internal.h"

#if SQ_QDOT_HAVE_WASM_SIMD128

#include <wasm_simd128.h>

/* The low (elements 0..15) and high (elements 16..31) nibbles of a q4 block. */
static inline void unpack_nibbles(const uint8_t *block, v128_t *low, v128_t *high) {
    v128_t packed = wasm_v128_load(block);
    *low = wasm_v128_and(packed, wasm_i8x16_splat(0x0F));
    *high = wasm_u8x16_shr(packed, 4);
}

static inline int32_t sum_i32x4(v128_t v) {
    return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) + wasm_i32x4_extract_lane(v, 2) +
           wasm_i32x4_extract_lane(v, 3);
}

/* Σ w·a over 16 elements: weights as int8 codes, activations as u8 codes. */
static inline v128_t dot16_u8(v128_t acc, v128_t w, v128_t a) {
    v128_t a_low = wasm_u16x8_extend_low_u8x16(a);
    v128_t a_high = wasm_u16x8_extend_high_u8x16(a);
    v128_t w_low = wasm_i16x8_extend_low_i8x16(w);
    v128_t w_high = wasm_i16x8_extend_high_i8x16(w);
    acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(a_low, w_low));
    return wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(a_high, w_high));
}

/* Σ w·a over 16 elements with both operands in int8 range, into int16 lanes. */
static inline v128_t dot16_small(v128_t acc16, v128_t w, v128_t a) {
    acc16 = wasm_i16x8_add(acc16, wasm_i16x8_extmul_low_i8x16(w, a));
    return wasm_i16x8_add(acc16, wasm_i16x8_extmul_high_i8x16(w, a));
}

static int32_t group_u8(const uint8_t *weight_row, const uint8_t *act_row, int32_t begin, int32_t end) {
    const v128_t eight = wasm_i8x16_splat(8);
    int32_t simd_begin, simd_end;
    sq_qdot_split_group(begin, end, &simd_begin, &simd_end);
    v128_t acc = wasm_i32x4_splat(0);
    for (int32_t i = simd_begin; i < simd_end; i += SQ_Q4_BLOCK) {
        v128_t w_low, w_high;
        unpack_nibbles(weight_row + i / 2, &w_low, &w_high);
        acc = dot16_u8(acc, wasm_i8x16_sub(w_low, eight), wasm_v128_load(act_row + i));
        acc = dot16_u8(acc, wasm_i8x16_sub(w_high, eight), wasm_v128_load(act_row + i + 16));
    }
    return sum_i32x4(acc) + sq_qdot_edges_u8(weight_row, act_row, begin, simd_begin, simd_end, end);
}

static int32_t group_u4(const uint8_t *weight_row, const uint8_t *act_row, int32_t begin, int32_t end) {
    const v128_t eight = wasm_i8x16_splat(8);
    /* Each block adds four products of magnitude <= 120 to every int16 lane. */
    const int flush_blocks = 64;
    int32_t simd_begin, simd_end;
    sq_qdot_split_group(begin, end, &simd_begin, &simd_end);
    v128_t acc = wasm_i32x4_splat(0);
    v128_t acc16 = wasm_i16x8_splat(0);
    int pending = 0;
    for (int32_t i = simd_begin; i < simd_end; i += SQ_Q4_BLOCK) {
        v128_t w_low, w_high, a_low, a_high;
        unpack_nibbles(weight_row + i / 2, &w_low, &w_high);
        unpack_nibbles(act_row + i / 2, &a_low, &a_high);
        acc16 = dot16_small(acc16, wasm_i8x16_sub(w_low, eight), a_low);
        acc16 = dot16_small(acc16, wasm_i8x16_sub(w_high, eight), a_high);
        if (++pending == flush_blocks) {
            acc = wasm_i32x4_add(acc, wasm_i32x4_extadd_pairwise_i16x8(acc16));
            acc16 = wasm_i16x8_splat(0);
            pending = 0;
        }
    }
    acc = wasm_i32x4_add(acc, wasm_i32x4_extadd_pairwise_i16x8(acc16));
    return sum_i32x4(acc) + sq_qdot_edges_u4(weight_row, act_row, begin, simd_begin, simd_end, end);
}

typedef int32_t (*group_fn)(const uint8_t *weight_row, const uint8_t *act_row, int32_t begin, int32_t end);

static void run(const sq_qdot_args *p, group_fn group) {
    int32_t n_groups = p->cols / p->group;
    for (int32_t r = 0; r < p->rows; r++) {
        const uint8_t *weight_row = p->weights + (size_t)r * p->weight_stride;
        for (int32_t t = 0; t < p->batch; t++) {
            const uint8_t *act_row = p->acts + (size_t)t * p->act_stride;
            int32_t *out = p->out + (size_t)t * p->out_stride + (size_t)r * (size_t)n_groups;
            for (int32_t g = 0; g < n_groups; g++) {
                out[g] = group(weight_row, act_row, g * p->group, (g + 1) * p->group);
            }
        }
    }
}

void sq_qdot_q4_u8_wasm(const sq_qdot_args *args) {
    run(args, group_u8);
}

void sq_qdot_q4_u4_wasm(const sq_qdot_args *args) {
    run(args, group_u4);
}

/* int8 × fp32: two 4-lane accumulators per row hold lanes 0..3 and 4..7 of the summation order. */
static inline void i8_f32_rows(float *y, const float *x, const int8_t *codes, size_t stride, int32_t n, int n_rows) {
    v128_t low[4], high[4];
    for (int r = 0; r < n_rows; r++) {
        low[r] = wasm_f32x4_splat(0.0f);
        high[r] = wasm_f32x4_splat(0.0f);
    }
    int32_t c = 0;
    for (; c + 8 <= n; c += 8) {
        v128_t x_low = wasm_v128_load(x + c);
        v128_t x_high = wasm_v128_load(x + c + 4);
        for (int r = 0; r < n_rows; r++) {
            v128_t halves = wasm_i16x8_extend_low_i8x16(wasm_v128_load64_zero(codes + (size_t)r * stride + (size_t)c));
            v128_t w_low = wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(halves));
            v128_t w_high = wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(halves));
            low[r] = wasm_f32x4_add(low[r], wasm_f32x4_mul(w_low, x_low));
            high[r] = wasm_f32x4_add(high[r], wasm_f32x4_mul(w_high, x_high));
        }
    }
    for (int r = 0; r < n_rows; r++) {
        float lanes[8];
        wasm_v128_store(lanes, low[r]);
        wasm_v128_store(lanes + 4, high[r]);
        y[r] = sq_dot_i8_f32_finish(lanes, codes + (size_t)r * stride, x, c, n);
    }
}

void sq_dot_i8_f32_rows_wasm(float *y, const float *x, const int8_t *codes, size_t stride, int32_t n, int32_t n_rows) {
    if (n_rows == 4) {
        i8_f32_rows(y, x, codes, stride, n, 4);
        return;
    }
    for (int32_t r = 0; r < n_rows; r++) {
        i8_f32_rows(y + r, x, codes + (size_t)r * stride, stride, n, 1);
    }
}

#endif
