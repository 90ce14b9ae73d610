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

/* int8 × fp32: two 4-lane accumulators per row are lanes 0..3 and 4..7 of the summation order.
 * vmulq_f32 and vaddq_f32 round like the scalar code because neither fuses the multiply-add. */
static inline void i8_f32_rows(float *y, const float *x, const int8_t *codes, size_t stride, int32_t n, int n_rows) {
    float32x4_t low[4], high[4];
    for (int r = 0; r < n_rows; r++) {
        low[r] = vdupq_n_f32(0.0f);
        high[r] = vdupq_n_f32(0.0f);
    }
    int32_t c = 0;
    for (; c + 8 <= n; c += 8) {
        float32x4_t x_low = vld1q_f32(x + c);
        float32x4_t x_high = vld1q_f32(x + c + 4);
        for (int r = 0; r < n_rows; r++) {
            int16x8_t halves = vmovl_s8(vld1_s8(codes + (size_t)r * stride + (size_t)c));
            float32x4_t w_low = vcvtq_f32_s32(vmovl_s16(vget_low_s16(halves)));
            float32x4_t w_high = vcvtq_f32_s32(vmovl_s16(vget_high_s16(halves)));
            low[r] = vaddq_f32(low[r], vmulq_f32(w_low, x_low));
            high[r] = vaddq_f32(high[r], vmulq_f32(w_high, x_high));
        }
    }
    for (int r = 0; r < n_rows; r++) {
        float lanes[8];
        vst1q_f32(lanes, low[r]);
        vst1q_f32(lanes + 4, high[r]);
        y[r] = sq_dot_i8_f32_finish(lanes, codes + (size_t)r * stride, x, c, n);
    }
}

void sq_dot_i8_f32_rows_neon(float *y, const float *x, const int8_t *codes, size_t stride, int32_t n, int32_t n_rows) {
    if (n_rows == 4) {
        i8_f32_rows(y, x, codes, stride, n, 4);
        return;
    }
    for (int32_t r = 0; r < n_rows; r++) {
        i8_f32_rows(y + r, x, codes + (size_t)r * stride, stride, n, 1);
    }
}

#endif
