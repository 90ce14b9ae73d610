/* Integer kernels for WebAssembly relaxed SIMD, compiled only with -mrelaxed-simd.
 *
 * i32x4.relaxed_dot_i8x16_i7x16_add_s multiplies int8 lanes of its first operand by lanes of
 * its second and adds groups of four products into int32. Its result is exact only while every
 * lane of the second operand lies in [0, 127]; outside that range engines may differ (x86
 * engines use pmaddubsw, which reads that operand as unsigned). So:
 *   - u4 activations: the codes (0..15) are the second operand and the signed weight codes the
 *     first, which gives Σ w·a directly;
 *   - u8 activations: the codes do not fit 7 bits, so the weight nibbles u = w + 8 (0..15) are
 *     the second operand and the activations enter as s = a - 128 (int8). With R = Σ u·s over
 *     the n columns of a block range:
 *         Σ w·a = Σ (u - 8)(s + 128) = R + 128·Σ u - 8·Σ a = R + 128·(Σ w + 8n) - 8·Σ a,
 *     where Σ w and Σ a over the group come from args->weight_sums and args->act_sums (minus the
 *     scalar edge columns), or from a scalar pass when they are NULL. All terms are exact
 *     integers.
 * Node.js 20 needs --experimental-wasm-relaxed-simd, and its baseline compiler (Liftoff)
 * miscomputes this instruction, so run with --no-liftoff. */
#include "kernels/qdot_internal.h"

#if SQ_QDOT_HAVE_WASM_RELAXED

#include <wasm_simd128.h>

static inline void unpack_nibbles(const uint8_t *block, v128_t *low, v128_t *high) {
    v128_t packed = wasm_v128_load(block);
    *low = wasm_v128_and(packed, wasm_i8x16_splat(0x0F));
    *high = wasm_u8x16_shr(packed, 4);
}

static inline int32_t sum_i32x4(v128_t v) {
    return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) + wasm_i32x4_extract_lane(v, 2) +
           wasm_i32x4_extract_lane(v, 3);
}

static int32_t weight_sum(const uint8_t *row, int32_t begin, int32_t end) {
    int32_t sum = 0;
    for (int32_t c = begin; c < end; c++) {
        sum += sq_q4_get_weight(row, c);
    }
    return sum;
}

static int32_t act_sum_u8(const uint8_t *row, int32_t begin, int32_t end) {
    int32_t sum = 0;
    for (int32_t c = begin; c < end; c++) {
        sum += row[c];
    }
    return sum;
}

/* group_weight_sum and group_act_sum cover the whole group [begin, end). */
static int32_t group_u8(const uint8_t *weight_row, const uint8_t *act_row, int32_t begin, int32_t end,
                        int32_t group_weight_sum, int32_t group_act_sum) {
    const v128_t sign_flip = wasm_i8x16_splat((int8_t)0x80);
    int32_t simd_begin, simd_end;
    sq_qdot_split_group(begin, end, &simd_begin, &simd_end);
    int32_t edges = sq_qdot_edges_u8(weight_row, act_row, begin, simd_begin, simd_end, end);
    if (simd_begin == simd_end) {
        return edges;
    }

    v128_t acc = wasm_i32x4_splat(0);
    for (int32_t i = simd_begin; i < simd_end; i += SQ_Q4_BLOCK) {
        v128_t u_low, u_high;
        unpack_nibbles(weight_row + i / 2, &u_low, &u_high);
        v128_t s_low = wasm_v128_xor(wasm_v128_load(act_row + i), sign_flip);
        v128_t s_high = wasm_v128_xor(wasm_v128_load(act_row + i + 16), sign_flip);
        acc = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(s_low, u_low, acc);
        acc = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(s_high, u_high, acc);
    }
    int32_t n = simd_end - simd_begin;
    int32_t simd_weight_sum = group_weight_sum - weight_sum(weight_row, begin, simd_begin) -
                              weight_sum(weight_row, simd_end, end);
    int32_t simd_act_sum = group_act_sum - act_sum_u8(act_row, begin, simd_begin) - act_sum_u8(act_row, simd_end, end);
    return sum_i32x4(acc) + 128 * (simd_weight_sum + 8 * n) - 8 * simd_act_sum + edges;
}

static int32_t group_u4(const uint8_t *weight_row, const uint8_t *act_row, int32_t begin, int32_t end) {
    const v128_t eight = wasm_i8x16_splat(8);
    int32_t simd_begin, simd_end;
    sq_qdot_split_group(begin, end, &simd_begin, &simd_end);
    v128_t acc = wasm_i32x4_splat(0);
    for (int32_t i = simd_begin; i < simd_end; i += SQ_Q4_BLOCK) {
        v128_t w_low, w_high, a_low, a_high;
        unpack_nibbles(weight_row + i / 2, &w_low, &w_high);
        unpack_nibbles(act_row + i / 2, &a_low, &a_high);
        acc = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(wasm_i8x16_sub(w_low, eight), a_low, acc);
        acc = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(wasm_i8x16_sub(w_high, eight), a_high, acc);
    }
    return sum_i32x4(acc) + sq_qdot_edges_u4(weight_row, act_row, begin, simd_begin, simd_end, end);
}

void sq_qdot_q4_u8_relaxed(const sq_qdot_args *p) {
    int32_t n_groups = p->cols / p->group;
    for (int32_t r = 0; r < p->rows; r++) {
        const uint8_t *weight_row = p->weights + (size_t)r * p->weight_stride;
        for (int32_t t = 0; t < p->batch; t++) {
            const uint8_t *act_row = p->acts + (size_t)t * p->act_stride;
            int32_t *out = p->out + (size_t)t * p->out_stride + (size_t)r * (size_t)n_groups;
            for (int32_t g = 0; g < n_groups; g++) {
                int32_t begin = g * p->group;
                int32_t end = begin + p->group;
                /* Callers without precomputed sums get them here, at the cost of a scalar pass. */
                int32_t w_sum = p->weight_sums != NULL ? p->weight_sums[(size_t)r * (size_t)n_groups + (size_t)g]
                                                       : weight_sum(weight_row, begin, end);
                int32_t a_sum = p->act_sums != NULL ? p->act_sums[(size_t)t * (size_t)n_groups + (size_t)g]
                                                    : act_sum_u8(act_row, begin, end);
                out[g] = group_u8(weight_row, act_row, begin, end, w_sum, a_sum);
            }
        }
    }
}

void sq_qdot_q4_u4_relaxed(const sq_qdot_args *p) {
    int32_t n_groups = p->cols / p->group;
    for (int32_t r = 0; r < p->rows; r++) {
        const uint8_t *weight_row = p->weights + (size_t)r * p->weight_stride;
        for (int32_t t = 0; t < p->batch; t++) {
            const uint8_t *act_row = p->acts + (size_t)t * p->act_stride;
            int32_t *out = p->out + (size_t)t * p->out_stride + (size_t)r * (size_t)n_groups;
            for (int32_t g = 0; g < n_groups; g++) {
                out[g] = group_u4(weight_row, act_row, g * p->group, (g + 1) * p->group);
            }
        }
    }
}

#endif
