/* Integer kernels for WebAssembly SIMD128, compiled only with -msimd128.
 *
 * SIMD128 has no 8-bit multiply, so both operands go to int16 lanes and i32x4.dot_i16x8_s
 * multiplies and adds pairs of them into int32. Groups of whole 32-element blocks (group a
 * multiple of 32, as in every model this project quantizes) take a fast path, described below:
 * four weight rows share each activation block, and a transpose-add reduces their four sums at
 * once, except for one token with the caller's group sums, whose rows are read in memory order.
 * Other group sizes run one (row, token, group) at a time: the u8 activation codes are
 * widened by zero extension and the weight codes by sign extension, and for u4 activations
 * i16x8.extmul products (|product| <= 120) are added in int16 for up to 64 blocks and widened
 * with i32x4.extadd_pairwise_i16x8_s. Every step is exact, so the results equal the scalar
 * reference. */
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

/* Any group size: one (row, token, group) at a time, with scalar code for the columns outside
 * whole blocks. */
static void run_any_group(const sq_qdot_args *p, group_fn group) {
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

/* ---- Groups of whole blocks: four weight rows at a time in int16 lanes ----
 *
 * Read as eight little-endian 16-bit lanes, lane j of a q4 block holds bytes 2j and 2j + 1.
 * Its four nibbles are the elements 2j (bits 0..3), 16 + 2j (bits 4..7), 2j + 1 (bits 8..11)
 * and 17 + 2j (bits 12..15). Masks and 16-bit shifts move each of them into its own int16 vector,
 * and the activations are split the same way. i32x4.dot_i16x8_s then multiplies and adds pairs
 * of lanes (|sum| <= 2·15·255). The weights enter as their nibbles u = w + 8, so a group sum is
 *     Σ w·a = Σ u·a - 8·Σ a,
 * with Σ a computed alongside from the same int16 activation vectors. Four rows share each
 * activation block, and one transpose-add turns their four accumulators into one vector. */

/* The four int16 vectors of one block: elements 2j, 2j + 1, 16 + 2j and 17 + 2j in lane j. */
typedef struct block_i16 {
    v128_t even_low, odd_low, even_high, odd_high;
} block_i16;

static inline block_i16 unpack_q4_i16(const uint8_t *block) {
    const v128_t nibble = wasm_i16x8_splat(0x000F);
    v128_t packed = wasm_v128_load(block);
    block_i16 b;
    b.even_low = wasm_v128_and(packed, nibble);
    b.odd_low = wasm_v128_and(wasm_u16x8_shr(packed, 8), nibble);
    b.even_high = wasm_v128_and(wasm_u16x8_shr(packed, 4), nibble);
    b.odd_high = wasm_u16x8_shr(packed, 12);
    return b;
}

/* 32 u8 activation codes in the lane order of unpack_q4_i16. */
static inline block_i16 unpack_u8_i16(const uint8_t *codes) {
    const v128_t byte = wasm_i16x8_splat(0x00FF);
    v128_t low = wasm_v128_load(codes);
    v128_t high = wasm_v128_load(codes + 16);
    block_i16 b;
    b.even_low = wasm_v128_and(low, byte);
    b.odd_low = wasm_u16x8_shr(low, 8);
    b.even_high = wasm_v128_and(high, byte);
    b.odd_high = wasm_u16x8_shr(high, 8);
    return b;
}

/* acc + Σ u·a over one block, in four int32 lanes. */
static inline v128_t dot_block(v128_t acc, block_i16 w, block_i16 a) {
    v128_t low = wasm_i32x4_add(wasm_i32x4_dot_i16x8(w.even_low, a.even_low), wasm_i32x4_dot_i16x8(w.odd_low, a.odd_low));
    v128_t high =
        wasm_i32x4_add(wasm_i32x4_dot_i16x8(w.even_high, a.even_high), wasm_i32x4_dot_i16x8(w.odd_high, a.odd_high));
    return wasm_i32x4_add(acc, wasm_i32x4_add(low, high));
}

/* acc + Σ a over one block (each int16 lane sum is at most 4·255). */
static inline v128_t sum_block(v128_t acc, block_i16 a) {
    v128_t sum16 = wasm_i16x8_add(wasm_i16x8_add(a.even_low, a.odd_low), wasm_i16x8_add(a.even_high, a.odd_high));
    return wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(sum16, wasm_i16x8_splat(1)));
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

/* Returns Σ w·a over the whole blocks [begin, end) of four weight rows and one activation row,
 * one lane per row. u4 selects 4-bit activation codes (a compile-time constant after inlining). */
static inline v128_t rows4_group(const uint8_t *const *weight_rows, const uint8_t *act_row, int u4, int32_t begin,
                                 int32_t end) {
    v128_t acc0 = wasm_i32x4_splat(0), acc1 = acc0, acc2 = acc0, acc3 = acc0, act_sum = acc0;
    for (int32_t i = begin; i < end; i += SQ_Q4_BLOCK) {
        block_i16 a = u4 ? unpack_q4_i16(act_row + i / 2) : unpack_u8_i16(act_row + i);
        act_sum = sum_block(act_sum, a);
        acc0 = dot_block(acc0, unpack_q4_i16(weight_rows[0] + i / 2), a);
        acc1 = dot_block(acc1, unpack_q4_i16(weight_rows[1] + i / 2), a);
        acc2 = dot_block(acc2, unpack_q4_i16(weight_rows[2] + i / 2), a);
        acc3 = dot_block(acc3, unpack_q4_i16(weight_rows[3] + i / 2), a);
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

/* All groups of a tile of four weight rows for one token. At one call site group is a literal
 * 32, which lets the compiler drop the block loop. */
static inline void rows4_token(const uint8_t *const *weight_rows, const uint8_t *act_row, int u4, int32_t group,
                               int32_t n_groups, int32_t n_rows, int32_t *out) {
    for (int32_t g = 0; g < n_groups; g++) {
        v128_t sums = rows4_group(weight_rows, act_row, u4, g * group, g * group + group);
        store_rows(out + g, (size_t)n_groups, sums, n_rows);
    }
}

/* Every group is whole blocks (group is a multiple of 32). Rows go four at a time. A last tile
 * of one to three rows repeats its last row and stores only the real ones. */
static inline void run_whole_blocks(const sq_qdot_args *p, int u4) {
    int32_t n_groups = p->cols / p->group;
    for (int32_t r0 = 0; r0 < p->rows; r0 += 4) {
        int32_t n_rows = p->rows - r0 < 4 ? p->rows - r0 : 4;
        const uint8_t *weight_rows[4];
        for (int32_t k = 0; k < 4; k++) {
            int32_t r = r0 + (k < n_rows ? k : n_rows - 1);
            weight_rows[k] = p->weights + (size_t)r * p->weight_stride;
        }
        for (int32_t t = 0; t < p->batch; t++) {
            const uint8_t *act_row = p->acts + (size_t)t * p->act_stride;
            int32_t *out = p->out + (size_t)t * p->out_stride + (size_t)r0 * (size_t)n_groups;
            if (p->group == SQ_Q4_BLOCK) {
                rows4_token(weight_rows, act_row, u4, SQ_Q4_BLOCK, n_groups, n_rows, out);
            } else {
                rows4_token(weight_rows, act_row, u4, p->group, n_groups, n_rows, out);
            }
        }
    }
}

/* ---- One token with the caller's activation group sums: rows in memory order ----
 * In decode the weights come from main memory once per token. Reading the rows one after
 * another keeps that a single forward stream, which the four-row tiles, with four short streams
 * at once, slow down. Groups of one block take four groups of a row per transpose-add, and
 * 8·Σ a comes from args->act_sums. */
static inline void run_rows_in_order(const sq_qdot_args *p, int u4) {
    int32_t n_groups = p->cols / p->group;
    const v128_t zero = wasm_i32x4_splat(0);
    for (int32_t r = 0; r < p->rows; r++) {
        const uint8_t *w_row = p->weights + (size_t)r * p->weight_stride;
        int32_t *out = p->out + (size_t)r * (size_t)n_groups;
        int32_t g = 0;
        if (p->group == SQ_Q4_BLOCK) {
            for (; g + 4 <= n_groups; g += 4) {
                v128_t acc[4];
                for (int k = 0; k < 4; k++) {
                    int32_t i = (g + k) * SQ_Q4_BLOCK;
                    block_i16 a = u4 ? unpack_q4_i16(p->acts + i / 2) : unpack_u8_i16(p->acts + i);
                    acc[k] = dot_block(zero, unpack_q4_i16(w_row + i / 2), a);
                }
                v128_t act8 = wasm_i32x4_shl(wasm_v128_load(p->act_sums + g), 3);
                wasm_v128_store(out + g, wasm_i32x4_sub(reduce_4(acc[0], acc[1], acc[2], acc[3]), act8));
            }
        }
        for (; g < n_groups; g++) {
            v128_t acc = zero;
            for (int32_t i = g * p->group; i < (g + 1) * p->group; i += SQ_Q4_BLOCK) {
                block_i16 a = u4 ? unpack_q4_i16(p->acts + i / 2) : unpack_u8_i16(p->acts + i);
                acc = dot_block(acc, unpack_q4_i16(w_row + i / 2), a);
            }
            out[g] = sum_i32x4(acc) - 8 * p->act_sums[g];
        }
    }
}

void sq_qdot_q4_u8_wasm(const sq_qdot_args *args) {
    if (args->group % SQ_Q4_BLOCK == 0 && args->batch == 1 && args->act_sums != NULL) {
        run_rows_in_order(args, 0);
    } else if (args->group % SQ_Q4_BLOCK == 0) {
        run_whole_blocks(args, 0);
    } else {
        run_any_group(args, group_u8);
    }
}

void sq_qdot_q4_u4_wasm(const sq_qdot_args *args) {
    if (args->group % SQ_Q4_BLOCK == 0 && args->batch == 1 && args->act_sums != NULL) {
        run_rows_in_order(args, 1);
    } else if (args->group % SQ_Q4_BLOCK == 0) {
        run_whole_blocks(args, 1);
    } else {
        run_any_group(args, group_u4);
    }
}

/* int8 × int16: each 16 columns widen the codes to two i16x8 halves for i32x4.dot_i16x8_s into
 * one accumulator, which moves to int64 every SQ_I8_I16_FLUSH_COLUMNS columns. */
int64_t sq_dot_i8_i16_wasm(const int8_t *codes, const int16_t *x, int32_t n) {
    int64_t total = 0;
    int32_t whole = n / 16 * 16;
    for (int32_t c = 0; c < whole;) {
        int32_t stop = whole - c < SQ_I8_I16_FLUSH_COLUMNS ? whole : c + SQ_I8_I16_FLUSH_COLUMNS;
        v128_t acc = wasm_i32x4_splat(0);
        for (; c < stop; c += 16) {
            v128_t w = wasm_v128_load(codes + c);
            acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(w), wasm_v128_load(x + c)));
            acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(w), wasm_v128_load(x + c + 8)));
        }
        total += (int64_t)wasm_i32x4_extract_lane(acc, 0) + wasm_i32x4_extract_lane(acc, 1) +
                 wasm_i32x4_extract_lane(acc, 2) + wasm_i32x4_extract_lane(acc, 3);
    }
    sq_dot_i8_i16_tail(&total, codes, x, whole, n);
    return total;
}

#endif
