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
 * Groups of whole 32-element blocks take a fast path with four weight rows per activation
 * block, described at "Groups of whole blocks" below, or, for one token with both group sums,
 * a path that reads the rows in memory order. Other group sizes, and u8 calls without
 * both group sums, run one (row, token, group) at a time.
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

/* Any group size: one (row, token, group) at a time, with scalar code for the columns outside
 * whole blocks and for group sums the caller did not pass. */
static void run_any_group_u8(const sq_qdot_args *p) {
    int32_t n_groups = p->cols / p->group;
    for (int32_t r = 0; r < p->rows; r++) {
        const uint8_t *weight_row = p->weights + (size_t)r * p->weight_stride;
        for (int32_t t = 0; t < p->batch; t++) {
            const uint8_t *act_row = p->acts + (size_t)t * p->act_stride;
            int32_t *out = p->out + (size_t)t * p->out_stride + (size_t)r * (size_t)n_groups;
            for (int32_t g = 0; g < n_groups; g++) {
                int32_t begin = g * p->group;
                int32_t end = begin + p->group;
                int32_t w_sum = p->weight_sums != NULL ? p->weight_sums[(size_t)r * (size_t)n_groups + (size_t)g]
                                                       : weight_sum(weight_row, begin, end);
                int32_t a_sum = p->act_sums != NULL ? p->act_sums[(size_t)t * (size_t)n_groups + (size_t)g]
                                                    : act_sum_u8(act_row, begin, end);
                out[g] = group_u8(weight_row, act_row, begin, end, w_sum, a_sum);
            }
        }
    }
}

static void run_any_group_u4(const sq_qdot_args *p) {
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

/* ---- Groups of whole blocks: four weight rows at a time ----
 * Four rows share each activation block, and one transpose-add turns their four accumulators
 * into one vector. Both activation widths use the weight nibbles u = w + 8 as the 7-bit operand:
 *   - u8: the formula above, with Σ w and Σ a from args->weight_sums and args->act_sums;
 *   - u4: the codes a (0..15) are the 8-bit operand, so R = Σ u·a and Σ w·a = R - 8·Σ a, where
 *     Σ a comes from a relaxed dot product of the codes with ones. */

/* The low (elements 0..15) and high (elements 16..31) nibbles of a q4 block, with a 16-bit
 * shift and a mask, which engines lower to fewer x86 instructions than i8x16.shr_u. */
static inline void unpack_nibbles_masked(const uint8_t *block, v128_t *low, v128_t *high) {
    const v128_t nibble = wasm_i8x16_splat(0x0F);
    v128_t packed = wasm_v128_load(block);
    *low = wasm_v128_and(packed, nibble);
    *high = wasm_v128_and(wasm_u16x8_shr(packed, 4), nibble);
}

/* Returns {Σ r0, Σ r1, Σ r2, Σ r3}: the lane sums of four vectors, by a transpose-add. */
static inline v128_t reduce_4(v128_t r0, v128_t r1, v128_t r2, v128_t r3) {
    v128_t r01 = wasm_i32x4_add(wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7));
    v128_t r23 = wasm_i32x4_add(wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5), wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7));
    return wasm_i32x4_add(wasm_i32x4_shuffle(r01, r23, 0, 1, 4, 5), wasm_i32x4_shuffle(r01, r23, 2, 3, 6, 7));
}

/* Returns the lane sum of v in every lane. */
static inline v128_t splat_sum(v128_t v) {
    v = wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
    return wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
}

/* R = Σ u·(a - 128) over the whole blocks [begin, end) of four weight rows and one u8
 * activation row, one lane per row. */
static inline v128_t rows4_group_u8(const uint8_t *const *weight_rows, const uint8_t *act_row, int32_t begin,
                                    int32_t end) {
    const v128_t sign_flip = wasm_i8x16_splat((int8_t)0x80);
    v128_t acc0 = wasm_i32x4_splat(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int32_t i = begin; i < end; i += SQ_Q4_BLOCK) {
        v128_t s_low = wasm_v128_xor(wasm_v128_load(act_row + i), sign_flip);
        v128_t s_high = wasm_v128_xor(wasm_v128_load(act_row + i + 16), sign_flip);
        v128_t u_low, u_high;
        unpack_nibbles_masked(weight_rows[0] + i / 2, &u_low, &u_high);
        acc0 = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(s_high, u_high, wasm_i32x4_relaxed_dot_i8x16_i7x16_add(s_low, u_low, acc0));
        unpack_nibbles_masked(weight_rows[1] + i / 2, &u_low, &u_high);
        acc1 = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(s_high, u_high, wasm_i32x4_relaxed_dot_i8x16_i7x16_add(s_low, u_low, acc1));
        unpack_nibbles_masked(weight_rows[2] + i / 2, &u_low, &u_high);
        acc2 = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(s_high, u_high, wasm_i32x4_relaxed_dot_i8x16_i7x16_add(s_low, u_low, acc2));
        unpack_nibbles_masked(weight_rows[3] + i / 2, &u_low, &u_high);
        acc3 = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(s_high, u_high, wasm_i32x4_relaxed_dot_i8x16_i7x16_add(s_low, u_low, acc3));
    }
    return reduce_4(acc0, acc1, acc2, acc3);
}

/* Σ w·a over the whole blocks [begin, end) of four weight rows and one u4 activation row. */
static inline v128_t rows4_group_u4(const uint8_t *const *weight_rows, const uint8_t *act_row, int32_t begin,
                                    int32_t end) {
    const v128_t ones = wasm_i8x16_splat(1);
    v128_t acc0 = wasm_i32x4_splat(0), acc1 = acc0, acc2 = acc0, acc3 = acc0, act_sum = acc0;
    for (int32_t i = begin; i < end; i += SQ_Q4_BLOCK) {
        v128_t a_low, a_high;
        unpack_nibbles_masked(act_row + i / 2, &a_low, &a_high);
        act_sum = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(wasm_i8x16_add(a_low, a_high), ones, act_sum);
        v128_t u_low, u_high;
        unpack_nibbles_masked(weight_rows[0] + i / 2, &u_low, &u_high);
        acc0 = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(a_high, u_high, wasm_i32x4_relaxed_dot_i8x16_i7x16_add(a_low, u_low, acc0));
        unpack_nibbles_masked(weight_rows[1] + i / 2, &u_low, &u_high);
        acc1 = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(a_high, u_high, wasm_i32x4_relaxed_dot_i8x16_i7x16_add(a_low, u_low, acc1));
        unpack_nibbles_masked(weight_rows[2] + i / 2, &u_low, &u_high);
        acc2 = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(a_high, u_high, wasm_i32x4_relaxed_dot_i8x16_i7x16_add(a_low, u_low, acc2));
        unpack_nibbles_masked(weight_rows[3] + i / 2, &u_low, &u_high);
        acc3 = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(a_high, u_high, wasm_i32x4_relaxed_dot_i8x16_i7x16_add(a_low, u_low, acc3));
    }
    return wasm_i32x4_sub(reduce_4(acc0, acc1, acc2, acc3), wasm_i32x4_shl(splat_sum(act_sum), 3));
}

/* Stores lane k of sums at o[k·n_groups] for the n_rows (1 to 4) real rows of a tile. */
static inline void store_rows(int32_t *o, size_t n_groups, v128_t sums, int32_t n_rows) {
    if (n_rows == 4) {
        wasm_v128_store32_lane(o, sums, 0);
        wasm_v128_store32_lane(o + n_groups, sums, 1);
        wasm_v128_store32_lane(o + 2 * n_groups, sums, 2);
        wasm_v128_store32_lane(o + 3 * n_groups, sums, 3);
        return;
    }
    int32_t lanes[4];
    wasm_v128_store(lanes, sums);
    for (int32_t k = 0; k < n_rows; k++) {
        o[(size_t)k * n_groups] = lanes[k];
    }
}

/* All groups of a tile of four weight rows for token t. At one call site group is a literal 32,
 * which lets the compiler drop the block loop. For u8, weight_sums[k] points at the group sums
 * of row k. */
static inline void rows4_token(const sq_qdot_args *p, const uint8_t *const *weight_rows,
                               const int32_t *const *weight_sums, int32_t t, int u4, int32_t group, int32_t n_rows,
                               int32_t *out) {
    int32_t n_groups = p->cols / group;
    const uint8_t *act_row = p->acts + (size_t)t * p->act_stride;
    for (int32_t g = 0; g < n_groups; g++) {
        int32_t begin = g * group;
        int32_t end = begin + group;
        v128_t sums;
        if (u4) {
            sums = rows4_group_u4(weight_rows, act_row, begin, end);
        } else {
            /* Σ w·a = R + 128·(Σ w + 8·group) - 8·Σ a */
            v128_t w_sum = wasm_i32x4_make(weight_sums[0][g], weight_sums[1][g], weight_sums[2][g], weight_sums[3][g]);
            int32_t a_sum = p->act_sums[(size_t)t * (size_t)n_groups + (size_t)g];
            v128_t offset = wasm_i32x4_shl(wasm_i32x4_add(w_sum, wasm_i32x4_splat(8 * group)), 7);
            sums = wasm_i32x4_add(rows4_group_u8(weight_rows, act_row, begin, end),
                                  wasm_i32x4_sub(offset, wasm_i32x4_splat(8 * a_sum)));
        }
        store_rows(out + g, (size_t)n_groups, sums, n_rows);
    }
}

/* Every group is whole blocks (group is a multiple of 32), and for u8 the caller passed both
 * group sums. Rows go four at a time. A last tile of one to three rows repeats its last row and
 * stores only the real ones. */
static inline void run_whole_blocks(const sq_qdot_args *p, int u4) {
    int32_t n_groups = p->cols / p->group;
    for (int32_t r0 = 0; r0 < p->rows; r0 += 4) {
        int32_t n_rows = p->rows - r0 < 4 ? p->rows - r0 : 4;
        const uint8_t *weight_rows[4];
        const int32_t *weight_sums[4];
        for (int32_t k = 0; k < 4; k++) {
            int32_t r = r0 + (k < n_rows ? k : n_rows - 1);
            weight_rows[k] = p->weights + (size_t)r * p->weight_stride;
            weight_sums[k] = u4 ? NULL : p->weight_sums + (size_t)r * (size_t)n_groups;
        }
        for (int32_t t = 0; t < p->batch; t++) {
            int32_t *out = p->out + (size_t)t * p->out_stride + (size_t)r0 * (size_t)n_groups;
            if (p->group == SQ_Q4_BLOCK) {
                rows4_token(p, weight_rows, weight_sums, t, u4, SQ_Q4_BLOCK, n_rows, out);
            } else {
                rows4_token(p, weight_rows, weight_sums, t, u4, p->group, n_rows, out);
            }
        }
    }
}

/* ---- One token with the caller's group sums: rows in memory order ----
 * In decode the weights come from main memory once per token. Reading the rows one after
 * another keeps that a single forward stream, which the four-row tiles, with four short streams
 * at once, slow down. Groups of one block take four groups of a row per transpose-add. */

/* R (u8: Σ u·(a - 128); u4: Σ u·a) over the whole blocks [begin, end) of one row, in four lanes. */
static inline v128_t row_blocks(const uint8_t *w_row, const uint8_t *act_row, int u4, int32_t begin, int32_t end,
                                v128_t acc) {
    const v128_t sign_flip = wasm_i8x16_splat((int8_t)0x80);
    for (int32_t i = begin; i < end; i += SQ_Q4_BLOCK) {
        v128_t a_low, a_high, u_low, u_high;
        if (u4) {
            unpack_nibbles_masked(act_row + i / 2, &a_low, &a_high);
        } else {
            a_low = wasm_v128_xor(wasm_v128_load(act_row + i), sign_flip);
            a_high = wasm_v128_xor(wasm_v128_load(act_row + i + 16), sign_flip);
        }
        unpack_nibbles_masked(w_row + i / 2, &u_low, &u_high);
        acc = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(a_high, u_high, wasm_i32x4_relaxed_dot_i8x16_i7x16_add(a_low, u_low, acc));
    }
    return acc;
}

/* Turns R of groups into Σ w·a: u8 adds 128·(Σ w + 8·group) - 8·Σ a, u4 subtracts 8·Σ a. */
static inline v128_t finish_groups(v128_t r, v128_t w_sum, v128_t a_sum, int u4, int32_t group) {
    v128_t result = wasm_i32x4_sub(r, wasm_i32x4_shl(a_sum, 3));
    if (!u4) {
        result = wasm_i32x4_add(result, wasm_i32x4_shl(wasm_i32x4_add(w_sum, wasm_i32x4_splat(8 * group)), 7));
    }
    return result;
}

static inline void run_rows_in_order(const sq_qdot_args *p, int u4) {
    int32_t n_groups = p->cols / p->group;
    const v128_t zero = wasm_i32x4_splat(0);
    for (int32_t r = 0; r < p->rows; r++) {
        const uint8_t *w_row = p->weights + (size_t)r * p->weight_stride;
        const int32_t *w_sums = u4 ? NULL : p->weight_sums + (size_t)r * (size_t)n_groups;
        int32_t *out = p->out + (size_t)r * (size_t)n_groups;
        int32_t g = 0;
        if (p->group == SQ_Q4_BLOCK) {
            for (; g + 4 <= n_groups; g += 4) {
                v128_t acc[4];
                for (int k = 0; k < 4; k++) {
                    int32_t i = (g + k) * SQ_Q4_BLOCK;
                    acc[k] = row_blocks(w_row, p->acts, u4, i, i + SQ_Q4_BLOCK, zero);
                }
                v128_t w_sum = u4 ? zero : wasm_v128_load(w_sums + g);
                v128_t sums = finish_groups(reduce_4(acc[0], acc[1], acc[2], acc[3]), w_sum,
                                            wasm_v128_load(p->act_sums + g), u4, SQ_Q4_BLOCK);
                wasm_v128_store(out + g, sums);
            }
        }
        for (; g < n_groups; g++) {
            v128_t acc = row_blocks(w_row, p->acts, u4, g * p->group, (g + 1) * p->group, zero);
            v128_t sums = finish_groups(wasm_i32x4_splat(sum_i32x4(acc)), wasm_i32x4_splat(u4 ? 0 : w_sums[g]),
                                        wasm_i32x4_splat(p->act_sums[g]), u4, p->group);
            out[g] = wasm_i32x4_extract_lane(sums, 0);
        }
    }
}

void sq_qdot_q4_u8_relaxed(const sq_qdot_args *p) {
    /* Callers without precomputed sums get them from scalar passes in the any-group path. */
    if (p->group % SQ_Q4_BLOCK == 0 && p->weight_sums != NULL && p->act_sums != NULL && p->batch == 1) {
        run_rows_in_order(p, 0);
    } else if (p->group % SQ_Q4_BLOCK == 0 && p->weight_sums != NULL && p->act_sums != NULL) {
        run_whole_blocks(p, 0);
    } else {
        run_any_group_u8(p);
    }
}

void sq_qdot_q4_u4_relaxed(const sq_qdot_args *p) {
    if (p->group % SQ_Q4_BLOCK == 0 && p->act_sums != NULL && p->batch == 1) {
        run_rows_in_order(p, 1);
    } else if (p->group % SQ_Q4_BLOCK == 0) {
        run_whole_blocks(p, 1);
    } else {
        run_any_group_u4(p);
    }
}

#endif
