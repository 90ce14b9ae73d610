/* Integer kernels for AArch64 NEON (baseline Advanced SIMD, no dot-product extension).
 *
 * u8 activations: each 8-element slice is widened to int16 (codes by zero extension, weights by
 * sign extension), multiplied (|product| <= 255·8 fits int16) and added pairwise into int32
 * lanes with vpadalq_s16. u4 activations: both operands fit int8, so vmull_s8 gives int16
 * products that vpadalq_s16 adds into int32. Every step is exact, so the results equal the
 * scalar reference.
 * NOTE: compiled and checked for syntax only (clang --target=aarch64-linux-gnu); no AArch64
 * machine has run it yet. */
#include "kernels/qdot_internal.h"

#if SQ_QDOT_HAVE_NEON

#include <arm_neon.h>

static inline void unpack_nibbles(const uint8_t *block, int8x16_t *low, int8x16_t *high) {
    uint8x16_t packed = vld1q_u8(block);
    *low = vreinterpretq_s8_u8(vandq_u8(packed, vdupq_n_u8(0x0F)));
    *high = vreinterpretq_s8_u8(vshrq_n_u8(packed, 4));
}

/* Σ w·a over 16 elements: w as int8 codes, a as u8 codes. */
static inline int32x4_t dot16_u8(int32x4_t acc, int8x16_t w, uint8x16_t a) {
    int16x8_t a_low = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(a)));
    int16x8_t a_high = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(a)));
    acc = vpadalq_s16(acc, vmulq_s16(a_low, vmovl_s8(vget_low_s8(w))));
    return vpadalq_s16(acc, vmulq_s16(a_high, vmovl_s8(vget_high_s8(w))));
}

/* Σ w·a over 16 elements with both operands in int8 range. */
static inline int32x4_t dot16_small(int32x4_t acc, int8x16_t w, int8x16_t a) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w), vget_low_s8(a)));
    return vpadalq_s16(acc, vmull_s8(vget_high_s8(w), vget_high_s8(a)));
}

static int32_t group_u8(const uint8_t *weight_row, const uint8_t *act_row, int32_t begin, int32_t end) {
    const int8x16_t eight = vdupq_n_s8(8);
    int32_t simd_begin, simd_end;
    sq_qdot_split_group(begin, end, &simd_begin, &simd_end);
    int32x4_t acc = vdupq_n_s32(0);
    for (int32_t i = simd_begin; i < simd_end; i += SQ_Q4_BLOCK) {
        int8x16_t w_low, w_high;
        unpack_nibbles(weight_row + i / 2, &w_low, &w_high);
        acc = dot16_u8(acc, vsubq_s8(w_low, eight), vld1q_u8(act_row + i));
        acc = dot16_u8(acc, vsubq_s8(w_high, eight), vld1q_u8(act_row + i + 16));
    }
    return vaddvq_s32(acc) + sq_qdot_edges_u8(weight_row, act_row, begin, simd_begin, simd_end, end);
}

static int32_t group_u4(const uint8_t *weight_row, const uint8_t *act_row, int32_t begin, int32_t end) {
    const int8x16_t eight = vdupq_n_s8(8);
    int32_t simd_begin, simd_end;
    sq_qdot_split_group(begin, end, &simd_begin, &simd_end);
    int32x4_t acc = vdupq_n_s32(0);
    for (int32_t i = simd_begin; i < simd_end; i += SQ_Q4_BLOCK) {
        int8x16_t w_low, w_high, a_low, a_high;
        unpack_nibbles(weight_row + i / 2, &w_low, &w_high);
        unpack_nibbles(act_row + i / 2, &a_low, &a_high);
        acc = dot16_small(acc, vsubq_s8(w_low, eight), a_low);
        acc = dot16_small(acc, vsubq_s8(w_high, eight), a_high);
    }
    return vaddvq_s32(acc) + sq_qdot_edges_u4(weight_row, act_row, begin, simd_begin, simd_end, end);
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

void sq_qdot_q4_u8_neon(const sq_qdot_args *args) {
    run(args, group_u8);
}

void sq_qdot_q4_u4_neon(const sq_qdot_args *args) {
    run(args, group_u4);
}

/* int8 × int16: widening multiply-adds of 16 columns into one int32 accumulator, which moves to
 * int64 every SQ_I8_I16_FLUSH_COLUMNS columns. */
int64_t sq_dot_i8_i16_neon(const int8_t *codes, const int16_t *x, int32_t n) {
    int64_t total = 0;
    int32_t whole = n / 16 * 16;
    for (int32_t c = 0; c < whole;) {
        int32_t stop = whole - c < SQ_I8_I16_FLUSH_COLUMNS ? whole : c + SQ_I8_I16_FLUSH_COLUMNS;
        int32x4_t acc = vdupq_n_s32(0);
        for (; c < stop; c += 16) {
            int8x16_t w = vld1q_s8(codes + c);
            int16x8_t w_low = vmovl_s8(vget_low_s8(w));
            int16x8_t w_high = vmovl_high_s8(w);
            int16x8_t x_low = vld1q_s16(x + c);
            int16x8_t x_high = vld1q_s16(x + c + 8);
            acc = vmlal_s16(acc, vget_low_s16(w_low), vget_low_s16(x_low));
            acc = vmlal_high_s16(acc, w_low, x_low);
            acc = vmlal_s16(acc, vget_low_s16(w_high), vget_low_s16(x_high));
            acc = vmlal_high_s16(acc, w_high, x_high);
        }
        total += vaddlvq_s32(acc);
    }
    sq_dot_i8_i16_tail(&total, codes, x, whole, n);
    return total;
}

#endif
