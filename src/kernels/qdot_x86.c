/* Integer kernels for x86 SSSE3 (16 bytes per vector) and AVX2 (32 bytes per vector).
 *
 * pmaddubsw multiplies unsigned bytes by signed bytes and adds adjacent pairs into int16 with
 * saturation. The unsigned operand is the activation code (u8 in [0, 255] or u4 in [0, 15]),
 * the signed one the weight code in [-8, 7], so a pair sum lies in [-4080, 3570] and never
 * saturates. Pair sums are added in int16 for a bounded number of blocks (8 for u8 with AVX2,
 * 4 for u8 with SSSE3; more for u4) so the int16 lanes cannot overflow, then widened to int32
 * with pmaddwd by ones. Every step is exact, so the results equal the scalar reference.
 *
 * Functions carry target attributes, so this file builds without -mssse3/-mavx2 and qdot.c
 * picks a variant after a run-time CPU check. With fewer than four tokens, each activation block
 * serves four weight rows. With more, each unpacked weight block serves four tokens. The four
 * sums of a tile are reduced together by a transpose-add.
 *
 * The int8 × int16 rows sign-extend the codes to int16 (pmovsxbw, SSE4.1/AVX2) and multiply-add
 * them with the int16 activation codes by pmaddwd. */
#include "kernels/qdot_internal.h"

#if SQ_QDOT_HAVE_X86

#include <immintrin.h>

#define SQ_TARGET_SSSE3 __attribute__((target("ssse3")))
#define SQ_TARGET_AVX2 __attribute__((target("avx2")))
#define SQ_TARGET_SSE41 __attribute__((target("sse4.1")))
#define SQ_INLINE static inline __attribute__((always_inline))

/* Tokens that share one pass over a weight row. */
#define TOKEN_TILE 4

/* ---- AVX2 ---- */

/* Unpacks the 16 bytes of a q4 block into its 32 nibbles in element order: the bytes go to both
 * 128-bit halves, and the upper half is shifted right by 4 before the mask. */
SQ_TARGET_AVX2 SQ_INLINE __m256i avx2_unpack_nibbles(const uint8_t *block) {
    const __m256i mask = _mm256_set1_epi8(0x0F);
    const __m256i shifts = _mm256_set_epi64x(4, 4, 0, 0);
    __m256i packed = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)block));
    return _mm256_and_si256(_mm256_srlv_epi64(packed, shifts), mask);
}

SQ_TARGET_AVX2 SQ_INLINE int32_t avx2_sum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* Stores the lane sums of v[0..3] in sums[0..3], by a transpose-add: cheaper than four
 * separate horizontal sums when a group is one or a few blocks. */
SQ_TARGET_AVX2 SQ_INLINE void avx2_sum_4(const __m256i *v, int32_t *sums) {
    __m256i v01 = _mm256_add_epi32(_mm256_unpacklo_epi32(v[0], v[1]), _mm256_unpackhi_epi32(v[0], v[1]));
    __m256i v23 = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2], v[3]), _mm256_unpackhi_epi32(v[2], v[3]));
    __m256i v0123 = _mm256_add_epi32(_mm256_unpacklo_epi64(v01, v23), _mm256_unpackhi_epi64(v01, v23));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v0123), _mm256_extracti128_si256(v0123, 1));
    _mm_storeu_si128((__m128i *)sums, s);
}

/* Σ w·a over the whole blocks [begin, end) of one weight row for n_tokens tokens (a
 * compile-time constant after inlining). u4 selects 4-bit activation codes, and flush_blocks
 * bounds the int16 accumulation. */
SQ_TARGET_AVX2 SQ_INLINE void avx2_blocks(const uint8_t *weight_row, const uint8_t *const *act_rows, int n_tokens,
                                          int u4, int32_t begin, int32_t end, int32_t *sums) {
    const __m256i eight = _mm256_set1_epi8(8);
    const __m256i ones = _mm256_set1_epi16(1);
    const int flush_blocks = u4 ? 128 : 8;
    __m256i acc32[TOKEN_TILE];
    __m256i acc16[TOKEN_TILE];
    for (int t = 0; t < n_tokens; t++) {
        acc32[t] = _mm256_setzero_si256();
        acc16[t] = _mm256_setzero_si256();
    }
    int pending = 0;
    for (int32_t i = begin; i < end; i += SQ_Q4_BLOCK) {
        __m256i w = _mm256_sub_epi8(avx2_unpack_nibbles(weight_row + i / 2), eight);
        for (int t = 0; t < n_tokens; t++) {
            __m256i a = u4 ? avx2_unpack_nibbles(act_rows[t] + i / 2)
                           : _mm256_loadu_si256((const __m256i *)(act_rows[t] + i));
            acc16[t] = _mm256_add_epi16(acc16[t], _mm256_maddubs_epi16(a, w));
        }
        if (++pending == flush_blocks) {
            for (int t = 0; t < n_tokens; t++) {
                acc32[t] = _mm256_add_epi32(acc32[t], _mm256_madd_epi16(acc16[t], ones));
                acc16[t] = _mm256_setzero_si256();
            }
            pending = 0;
        }
    }
    for (int t = 0; t < n_tokens; t++) {
        acc32[t] = _mm256_add_epi32(acc32[t], _mm256_madd_epi16(acc16[t], ones));
    }
    if (n_tokens == TOKEN_TILE) {
        avx2_sum_4(acc32, sums);
    } else {
        for (int t = 0; t < n_tokens; t++) {
            sums[t] = avx2_sum_i32(acc32[t]);
        }
    }
}

/* Σ w·a over the whole blocks [begin, end) of four weight rows for one token: each activation
 * block serves four weight blocks, which suits decoding one token at a time. */
SQ_TARGET_AVX2 SQ_INLINE void avx2_blocks_rows(const uint8_t *const *weight_rows, const uint8_t *act_row, int u4,
                                               int32_t begin, int32_t end, int32_t *sums) {
    const __m256i eight = _mm256_set1_epi8(8);
    const __m256i ones = _mm256_set1_epi16(1);
    const int flush_blocks = u4 ? 128 : 8;
    __m256i acc32[4], acc16[4];
    for (int r = 0; r < 4; r++) {
        acc32[r] = _mm256_setzero_si256();
        acc16[r] = _mm256_setzero_si256();
    }
    int pending = 0;
    for (int32_t i = begin; i < end; i += SQ_Q4_BLOCK) {
        __m256i a = u4 ? avx2_unpack_nibbles(act_row + i / 2) : _mm256_loadu_si256((const __m256i *)(act_row + i));
        for (int r = 0; r < 4; r++) {
            __m256i w = _mm256_sub_epi8(avx2_unpack_nibbles(weight_rows[r] + i / 2), eight);
            acc16[r] = _mm256_add_epi16(acc16[r], _mm256_maddubs_epi16(a, w));
        }
        if (++pending == flush_blocks) {
            for (int r = 0; r < 4; r++) {
                acc32[r] = _mm256_add_epi32(acc32[r], _mm256_madd_epi16(acc16[r], ones));
                acc16[r] = _mm256_setzero_si256();
            }
            pending = 0;
        }
    }
    for (int r = 0; r < 4; r++) {
        acc32[r] = _mm256_add_epi32(acc32[r], _mm256_madd_epi16(acc16[r], ones));
    }
    avx2_sum_4(acc32, sums);
}

/* All groups of four weight rows r0 .. r0 + 3 for token t. */
SQ_TARGET_AVX2 SQ_INLINE void avx2_rows(const sq_qdot_args *p, int32_t r0, int32_t t, int u4) {
    const uint8_t *weight_rows[4];
    for (int r = 0; r < 4; r++) {
        weight_rows[r] = p->weights + (size_t)(r0 + r) * p->weight_stride;
    }
    const uint8_t *act_row = p->acts + (size_t)t * p->act_stride;
    int32_t n_groups = p->cols / p->group;
    int32_t *out = p->out + (size_t)t * p->out_stride + (size_t)r0 * (size_t)n_groups;
    int32_t sums[4];
    if (p->group == SQ_Q4_BLOCK) {
        /* One block per group: a literal block count lets the compiler drop the block loop. */
        for (int32_t g = 0; g < n_groups; g++) {
            avx2_blocks_rows(weight_rows, act_row, u4, g * SQ_Q4_BLOCK, g * SQ_Q4_BLOCK + SQ_Q4_BLOCK, sums);
            for (int r = 0; r < 4; r++) {
                out[(size_t)r * (size_t)n_groups + (size_t)g] = sums[r];
            }
        }
        return;
    }
    for (int32_t g = 0; g < n_groups; g++) {
        int32_t begin = g * p->group, end = begin + p->group, simd_begin, simd_end;
        sq_qdot_split_group(begin, end, &simd_begin, &simd_end);
        avx2_blocks_rows(weight_rows, act_row, u4, simd_begin, simd_end, sums);
        for (int r = 0; r < 4; r++) {
            if (simd_begin != begin || simd_end != end) {
                sums[r] += u4 ? sq_qdot_edges_u4(weight_rows[r], act_row, begin, simd_begin, simd_end, end)
                              : sq_qdot_edges_u8(weight_rows[r], act_row, begin, simd_begin, simd_end, end);
            }
            out[(size_t)r * (size_t)n_groups + (size_t)g] = sums[r];
        }
    }
}

/* All groups of one weight row for the tokens t0 .. t0 + n_tokens - 1. */
SQ_TARGET_AVX2 SQ_INLINE void avx2_row(const sq_qdot_args *p, int32_t r, int32_t t0, int n_tokens, int u4) {
    const uint8_t *weight_row = p->weights + (size_t)r * p->weight_stride;
    const uint8_t *act_rows[TOKEN_TILE];
    for (int t = 0; t < n_tokens; t++) {
        act_rows[t] = p->acts + (size_t)(t0 + t) * p->act_stride;
    }
    int32_t n_groups = p->cols / p->group;
    int32_t *out = p->out + (size_t)t0 * p->out_stride + (size_t)r * (size_t)n_groups;
    int32_t sums[TOKEN_TILE];
    if (p->group == SQ_Q4_BLOCK) {
        /* One block per group: a literal block count lets the compiler drop the block loop. */
        for (int32_t g = 0; g < n_groups; g++) {
            avx2_blocks(weight_row, act_rows, n_tokens, u4, g * SQ_Q4_BLOCK, g * SQ_Q4_BLOCK + SQ_Q4_BLOCK, sums);
            for (int t = 0; t < n_tokens; t++) {
                out[(size_t)t * p->out_stride + (size_t)g] = sums[t];
            }
        }
        return;
    }
    for (int32_t g = 0; g < n_groups; g++) {
        int32_t begin = g * p->group, end = begin + p->group, simd_begin, simd_end;
        sq_qdot_split_group(begin, end, &simd_begin, &simd_end);
        avx2_blocks(weight_row, act_rows, n_tokens, u4, simd_begin, simd_end, sums);
        for (int t = 0; t < n_tokens; t++) {
            if (simd_begin != begin || simd_end != end) {
                sums[t] += u4 ? sq_qdot_edges_u4(weight_row, act_rows[t], begin, simd_begin, simd_end, end)
                              : sq_qdot_edges_u8(weight_row, act_rows[t], begin, simd_begin, simd_end, end);
            }
            out[(size_t)t * p->out_stride + (size_t)g] = sums[t];
        }
    }
}

SQ_TARGET_AVX2 SQ_INLINE void avx2_run(const sq_qdot_args *p, int u4) {
    if (p->batch < TOKEN_TILE) {
        /* Few tokens: tiles of four rows per token, then the remaining rows one at a time. */
        int32_t r = 0;
        for (; r + 4 <= p->rows; r += 4) {
            for (int32_t t = 0; t < p->batch; t++) {
                avx2_rows(p, r, t, u4);
            }
        }
        for (; r < p->rows; r++) {
            for (int32_t t = 0; t < p->batch; t++) {
                avx2_row(p, r, t, 1, u4);
            }
        }
        return;
    }
    for (int32_t r = 0; r < p->rows; r++) {
        int32_t t = 0;
        for (; t + TOKEN_TILE <= p->batch; t += TOKEN_TILE) {
            avx2_row(p, r, t, TOKEN_TILE, u4);
        }
        for (; t < p->batch; t++) {
            avx2_row(p, r, t, 1, u4);
        }
    }
}

SQ_TARGET_AVX2 void sq_qdot_q4_u8_avx2(const sq_qdot_args *args) {
    avx2_run(args, 0);
}

SQ_TARGET_AVX2 void sq_qdot_q4_u4_avx2(const sq_qdot_args *args) {
    avx2_run(args, 1);
}

/* ---- SSSE3 ---- */

/* The low (elements 0..15) and high (elements 16..31) nibbles of a q4 block. */
SQ_TARGET_SSSE3 SQ_INLINE void ssse3_unpack_nibbles(const uint8_t *block, __m128i *low, __m128i *high) {
    const __m128i mask = _mm_set1_epi8(0x0F);
    __m128i packed = _mm_loadu_si128((const __m128i *)block);
    *low = _mm_and_si128(packed, mask);
    *high = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
}

SQ_TARGET_SSSE3 SQ_INLINE int32_t ssse3_sum_i32(__m128i s) {
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* Stores the lane sums of v[0..3] in sums[0..3], by a transpose-add. */
SQ_TARGET_SSSE3 SQ_INLINE void ssse3_sum_4(const __m128i *v, int32_t *sums) {
    __m128i v01 = _mm_add_epi32(_mm_unpacklo_epi32(v[0], v[1]), _mm_unpackhi_epi32(v[0], v[1]));
    __m128i v23 = _mm_add_epi32(_mm_unpacklo_epi32(v[2], v[3]), _mm_unpackhi_epi32(v[2], v[3]));
    _mm_storeu_si128((__m128i *)sums, _mm_add_epi32(_mm_unpacklo_epi64(v01, v23), _mm_unpackhi_epi64(v01, v23)));
}

/* Σ w·a over the whole blocks [begin, end) of one weight row for n_tokens tokens, as
 * avx2_blocks. */
SQ_TARGET_SSSE3 SQ_INLINE void ssse3_blocks(const uint8_t *weight_row, const uint8_t *const *act_rows, int n_tokens,
                                            int u4, int32_t begin, int32_t end, int32_t *sums) {
    const __m128i eight = _mm_set1_epi8(8);
    const __m128i ones = _mm_set1_epi16(1);
    /* Each block adds two pair sums per int16 lane. */
    const int flush_blocks = u4 ? 64 : 4;
    __m128i acc32[TOKEN_TILE];
    __m128i acc16[TOKEN_TILE];
    for (int t = 0; t < n_tokens; t++) {
        acc32[t] = _mm_setzero_si128();
        acc16[t] = _mm_setzero_si128();
    }
    int pending = 0;
    for (int32_t i = begin; i < end; i += SQ_Q4_BLOCK) {
        __m128i w_low, w_high;
        ssse3_unpack_nibbles(weight_row + i / 2, &w_low, &w_high);
        w_low = _mm_sub_epi8(w_low, eight);
        w_high = _mm_sub_epi8(w_high, eight);
        for (int t = 0; t < n_tokens; t++) {
            __m128i a_low, a_high;
            if (u4) {
                ssse3_unpack_nibbles(act_rows[t] + i / 2, &a_low, &a_high);
            } else {
                a_low = _mm_loadu_si128((const __m128i *)(act_rows[t] + i));
                a_high = _mm_loadu_si128((const __m128i *)(act_rows[t] + i + 16));
            }
            __m128i pairs = _mm_add_epi16(_mm_maddubs_epi16(a_low, w_low), _mm_maddubs_epi16(a_high, w_high));
            acc16[t] = _mm_add_epi16(acc16[t], pairs);
        }
        if (++pending == flush_blocks) {
            for (int t = 0; t < n_tokens; t++) {
                acc32[t] = _mm_add_epi32(acc32[t], _mm_madd_epi16(acc16[t], ones));
                acc16[t] = _mm_setzero_si128();
            }
            pending = 0;
        }
    }
    for (int t = 0; t < n_tokens; t++) {
        acc32[t] = _mm_add_epi32(acc32[t], _mm_madd_epi16(acc16[t], ones));
    }
    if (n_tokens == TOKEN_TILE) {
        ssse3_sum_4(acc32, sums);
    } else {
        for (int t = 0; t < n_tokens; t++) {
            sums[t] = ssse3_sum_i32(acc32[t]);
        }
    }
}

/* Σ w·a over the whole blocks [begin, end) of four weight rows for one token, as
 * avx2_blocks_rows. */
SQ_TARGET_SSSE3 SQ_INLINE void ssse3_blocks_rows(const uint8_t *const *weight_rows, const uint8_t *act_row, int u4,
                                                 int32_t begin, int32_t end, int32_t *sums) {
    const __m128i eight = _mm_set1_epi8(8);
    const __m128i ones = _mm_set1_epi16(1);
    const int flush_blocks = u4 ? 64 : 4;
    __m128i acc32[4], acc16[4];
    for (int r = 0; r < 4; r++) {
        acc32[r] = _mm_setzero_si128();
        acc16[r] = _mm_setzero_si128();
    }
    int pending = 0;
    for (int32_t i = begin; i < end; i += SQ_Q4_BLOCK) {
        __m128i a_low, a_high;
        if (u4) {
            ssse3_unpack_nibbles(act_row + i / 2, &a_low, &a_high);
        } else {
            a_low = _mm_loadu_si128((const __m128i *)(act_row + i));
            a_high = _mm_loadu_si128((const __m128i *)(act_row + i + 16));
        }
        for (int r = 0; r < 4; r++) {
            __m128i w_low, w_high;
            ssse3_unpack_nibbles(weight_rows[r] + i / 2, &w_low, &w_high);
            __m128i pairs = _mm_add_epi16(_mm_maddubs_epi16(a_low, _mm_sub_epi8(w_low, eight)),
                                          _mm_maddubs_epi16(a_high, _mm_sub_epi8(w_high, eight)));
            acc16[r] = _mm_add_epi16(acc16[r], pairs);
        }
        if (++pending == flush_blocks) {
            for (int r = 0; r < 4; r++) {
                acc32[r] = _mm_add_epi32(acc32[r], _mm_madd_epi16(acc16[r], ones));
                acc16[r] = _mm_setzero_si128();
            }
            pending = 0;
        }
    }
    for (int r = 0; r < 4; r++) {
        acc32[r] = _mm_add_epi32(acc32[r], _mm_madd_epi16(acc16[r], ones));
    }
    ssse3_sum_4(acc32, sums);
}

/* All groups of four weight rows r0 .. r0 + 3 for token t. */
SQ_TARGET_SSSE3 SQ_INLINE void ssse3_rows(const sq_qdot_args *p, int32_t r0, int32_t t, int u4) {
    const uint8_t *weight_rows[4];
    for (int r = 0; r < 4; r++) {
        weight_rows[r] = p->weights + (size_t)(r0 + r) * p->weight_stride;
    }
    const uint8_t *act_row = p->acts + (size_t)t * p->act_stride;
    int32_t n_groups = p->cols / p->group;
    int32_t *out = p->out + (size_t)t * p->out_stride + (size_t)r0 * (size_t)n_groups;
    int32_t sums[4];
    if (p->group == SQ_Q4_BLOCK) {
        /* One block per group: a literal block count lets the compiler drop the block loop. */
        for (int32_t g = 0; g < n_groups; g++) {
            ssse3_blocks_rows(weight_rows, act_row, u4, g * SQ_Q4_BLOCK, g * SQ_Q4_BLOCK + SQ_Q4_BLOCK, sums);
            for (int r = 0; r < 4; r++) {
                out[(size_t)r * (size_t)n_groups + (size_t)g] = sums[r];
            }
        }
        return;
    }
    for (int32_t g = 0; g < n_groups; g++) {
        int32_t begin = g * p->group, end = begin + p->group, simd_begin, simd_end;
        sq_qdot_split_group(begin, end, &simd_begin, &simd_end);
        ssse3_blocks_rows(weight_rows, act_row, u4, simd_begin, simd_end, sums);
        for (int r = 0; r < 4; r++) {
            if (simd_begin != begin || simd_end != end) {
                sums[r] += u4 ? sq_qdot_edges_u4(weight_rows[r], act_row, begin, simd_begin, simd_end, end)
                              : sq_qdot_edges_u8(weight_rows[r], act_row, begin, simd_begin, simd_end, end);
            }
            out[(size_t)r * (size_t)n_groups + (size_t)g] = sums[r];
        }
    }
}

/* All groups of one weight row for the tokens t0 .. t0 + n_tokens - 1. */
SQ_TARGET_SSSE3 SQ_INLINE void ssse3_row(const sq_qdot_args *p, int32_t r, int32_t t0, int n_tokens, int u4) {
    const uint8_t *weight_row = p->weights + (size_t)r * p->weight_stride;
    const uint8_t *act_rows[TOKEN_TILE];
    for (int t = 0; t < n_tokens; t++) {
        act_rows[t] = p->acts + (size_t)(t0 + t) * p->act_stride;
    }
    int32_t n_groups = p->cols / p->group;
    int32_t *out = p->out + (size_t)t0 * p->out_stride + (size_t)r * (size_t)n_groups;
    int32_t sums[TOKEN_TILE];
    if (p->group == SQ_Q4_BLOCK) {
        for (int32_t g = 0; g < n_groups; g++) {
            ssse3_blocks(weight_row, act_rows, n_tokens, u4, g * SQ_Q4_BLOCK, g * SQ_Q4_BLOCK + SQ_Q4_BLOCK, sums);
            for (int t = 0; t < n_tokens; t++) {
                out[(size_t)t * p->out_stride + (size_t)g] = sums[t];
            }
        }
        return;
    }
    for (int32_t g = 0; g < n_groups; g++) {
        int32_t begin = g * p->group, end = begin + p->group, simd_begin, simd_end;
        sq_qdot_split_group(begin, end, &simd_begin, &simd_end);
        ssse3_blocks(weight_row, act_rows, n_tokens, u4, simd_begin, simd_end, sums);
        for (int t = 0; t < n_tokens; t++) {
            if (simd_begin != begin || simd_end != end) {
                sums[t] += u4 ? sq_qdot_edges_u4(weight_row, act_rows[t], begin, simd_begin, simd_end, end)
                              : sq_qdot_edges_u8(weight_row, act_rows[t], begin, simd_begin, simd_end, end);
            }
            out[(size_t)t * p->out_stride + (size_t)g] = sums[t];
        }
    }
}

SQ_TARGET_SSSE3 SQ_INLINE void ssse3_run(const sq_qdot_args *p, int u4) {
    if (p->batch < TOKEN_TILE) {
        /* Few tokens: tiles of four rows per token, then the remaining rows one at a time. */
        int32_t r = 0;
        for (; r + 4 <= p->rows; r += 4) {
            for (int32_t t = 0; t < p->batch; t++) {
                ssse3_rows(p, r, t, u4);
            }
        }
        for (; r < p->rows; r++) {
            for (int32_t t = 0; t < p->batch; t++) {
                ssse3_row(p, r, t, 1, u4);
            }
        }
        return;
    }
    for (int32_t r = 0; r < p->rows; r++) {
        int32_t t = 0;
        for (; t + TOKEN_TILE <= p->batch; t += TOKEN_TILE) {
            ssse3_row(p, r, t, TOKEN_TILE, u4);
        }
        for (; t < p->batch; t++) {
            ssse3_row(p, r, t, 1, u4);
        }
    }
}

SQ_TARGET_SSSE3 void sq_qdot_q4_u8_ssse3(const sq_qdot_args *args) {
    ssse3_run(args, 0);
}

SQ_TARGET_SSSE3 void sq_qdot_q4_u4_ssse3(const sq_qdot_args *args) {
    ssse3_run(args, 1);
}

/* ---- int8 × int16 (see qdot.h): pmaddwd on sign-extended codes into one int32 accumulator,
 * which moves to int64 every SQ_I8_I16_FLUSH_COLUMNS columns ---- */

SQ_TARGET_AVX2 int64_t sq_dot_i8_i16_avx2(const int8_t *codes, const int16_t *x, int32_t n) {
    int64_t total = 0;
    int32_t whole = n / 32 * 32;
    for (int32_t c = 0; c < whole;) {
        int32_t stop = whole - c < SQ_I8_I16_FLUSH_COLUMNS ? whole : c + SQ_I8_I16_FLUSH_COLUMNS;
        __m256i acc = _mm256_setzero_si256();
        for (; c < stop; c += 32) {
            __m256i w_low = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(codes + c)));
            __m256i w_high = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(codes + c + 16)));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(w_low, _mm256_loadu_si256((const __m256i *)(x + c))));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(w_high, _mm256_loadu_si256((const __m256i *)(x + c + 16))));
        }
        int32_t lanes[8];
        _mm256_storeu_si256((__m256i *)lanes, acc);
        for (int j = 0; j < 8; j++) {
            total += lanes[j];
        }
    }
    sq_dot_i8_i16_tail(&total, codes, x, whole, n);
    return total;
}

SQ_TARGET_SSE41 int64_t sq_dot_i8_i16_sse41(const int8_t *codes, const int16_t *x, int32_t n) {
    int64_t total = 0;
    int32_t whole = n / 16 * 16;
    for (int32_t c = 0; c < whole;) {
        int32_t stop = whole - c < SQ_I8_I16_FLUSH_COLUMNS ? whole : c + SQ_I8_I16_FLUSH_COLUMNS;
        __m128i acc = _mm_setzero_si128();
        for (; c < stop; c += 16) {
            __m128i w_low = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(codes + c)));
            __m128i w_high = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(codes + c + 8)));
            acc = _mm_add_epi32(acc, _mm_madd_epi16(w_low, _mm_loadu_si128((const __m128i *)(x + c))));
            acc = _mm_add_epi32(acc, _mm_madd_epi16(w_high, _mm_loadu_si128((const __m128i *)(x + c + 8))));
        }
        int32_t lanes[4];
        _mm_storeu_si128((__m128i *)lanes, acc);
        total += (int64_t)lanes[0] + lanes[1] + lanes[2] + lanes[3];
    }
    sq_dot_i8_i16_tail(&total, codes, x, whole, n);
    return total;
}

#endif
