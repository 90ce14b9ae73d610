/* FWHT kernels for x86 SSE2 (4 floats per vector) and AVX2 (8 floats per vector).
 *
 * Functions carry target attributes, so this file builds without -msse2/-mavx2 and the
 * dispatcher picks a kernel after a run-time CPU check. The first stages (h smaller than a
 * vector) run in registers with shuffles; the remaining stages run two at a time (radix 4):
 * with a0 = x0 + x1, a1 = x0 - x1, a2 = x2 + x3, a3 = x2 - x3 for elements j, j+h, j+2h, j+3h,
 * stage 2h stores a0 + a2, a1 + a3, a0 - a2, a1 - a3. These are the additions of the scalar
 * radix-2 loop on the same operands, so the results match it bit for bit. No FMA is used. */
#include "hadamard/hadamard_kernels.h"

#if SQ_HADAMARD_HAVE_X86

#include <immintrin.h>

#define SQ_TARGET_SSE2 __attribute__((target("sse2")))
#define SQ_TARGET_AVX2 __attribute__((target("avx2")))

/* ---- SSE2 ---- */

/* Stages h = 1 and h = 2 on the 8 floats at x. */
SQ_TARGET_SSE2 static void sse2_stages_1_2(float *x) {
    __m128 v0 = _mm_loadu_ps(x);
    __m128 v1 = _mm_loadu_ps(x + 4);

    /* h = 1: pair (0,1), (2,3) of each vector. */
    __m128 even = _mm_shuffle_ps(v0, v1, _MM_SHUFFLE(2, 0, 2, 0)); /* x0 x2 x4 x6 */
    __m128 odd = _mm_shuffle_ps(v0, v1, _MM_SHUFFLE(3, 1, 3, 1));  /* x1 x3 x5 x7 */
    __m128 sum = _mm_add_ps(even, odd);
    __m128 diff = _mm_sub_ps(even, odd);
    v0 = _mm_unpacklo_ps(sum, diff); /* s0 d0 s1 d1 */
    v1 = _mm_unpackhi_ps(sum, diff); /* s2 d2 s3 d3 */

    /* h = 2: pair (0,2), (1,3) of each vector. */
    __m128 low = _mm_shuffle_ps(v0, v1, _MM_SHUFFLE(1, 0, 1, 0));  /* y0 y1 y4 y5 */
    __m128 high = _mm_shuffle_ps(v0, v1, _MM_SHUFFLE(3, 2, 3, 2)); /* y2 y3 y6 y7 */
    sum = _mm_add_ps(low, high);
    diff = _mm_sub_ps(low, high);
    _mm_storeu_ps(x, _mm_shuffle_ps(sum, diff, _MM_SHUFFLE(1, 0, 1, 0)));
    _mm_storeu_ps(x + 4, _mm_shuffle_ps(sum, diff, _MM_SHUFFLE(3, 2, 3, 2)));
}

/* Stages h = first_h, 2·first_h, …, n/2 with first_h >= 4. */
SQ_TARGET_SSE2 static void sse2_wide_stages(float *x, int n, int first_h) {
    int h = first_h;
    for (; 4 * h <= n; h *= 4) {
        for (int block = 0; block < n; block += 4 * h) {
            for (int j = block; j < block + h; j += 4) {
                __m128 x0 = _mm_loadu_ps(x + j);
                __m128 x1 = _mm_loadu_ps(x + j + h);
                __m128 x2 = _mm_loadu_ps(x + j + 2 * h);
                __m128 x3 = _mm_loadu_ps(x + j + 3 * h);
                __m128 a0 = _mm_add_ps(x0, x1);
                __m128 a1 = _mm_sub_ps(x0, x1);
                __m128 a2 = _mm_add_ps(x2, x3);
                __m128 a3 = _mm_sub_ps(x2, x3);
                _mm_storeu_ps(x + j, _mm_add_ps(a0, a2));
                _mm_storeu_ps(x + j + h, _mm_add_ps(a1, a3));
                _mm_storeu_ps(x + j + 2 * h, _mm_sub_ps(a0, a2));
                _mm_storeu_ps(x + j + 3 * h, _mm_sub_ps(a1, a3));
            }
        }
    }
    if (2 * h == n) {
        for (int j = 0; j < h; j += 4) {
            __m128 a = _mm_loadu_ps(x + j);
            __m128 b = _mm_loadu_ps(x + j + h);
            _mm_storeu_ps(x + j, _mm_add_ps(a, b));
            _mm_storeu_ps(x + j + h, _mm_sub_ps(a, b));
        }
    }
}

SQ_TARGET_SSE2 void sq_hadamard_fwht_unscaled_sse2(float *x, int n) {
    if (n < 8) {
        sq_hadamard_fwht_unscaled_scalar(x, n);
        return;
    }
    for (int i = 0; i < n; i += 8) {
        sse2_stages_1_2(x + i);
    }
    sse2_wide_stages(x, n, 4);
}

/* Dense H_m step. Each pass over b accumulates four vectors (16 floats) of one output group,
 * then single vectors and scalar leftovers follow. Every output is the scalar reference's sum,
 * formed in the same order. */
SQ_TARGET_SSE2 void sq_hadamard_base_step_sse2(const float *signs, int m, size_t slab,
                                               const float *x, float *y) {
    for (int a = 0; a < m; a++) {
        const float *row_signs = signs + (size_t)a * (size_t)m;
        float *out = y + (size_t)a * slab;
        size_t j = 0;
        for (; j + 16 <= slab; j += 16) {
            __m128 sign = _mm_set1_ps(row_signs[0]);
            __m128 sum0 = _mm_mul_ps(sign, _mm_loadu_ps(x + j));
            __m128 sum1 = _mm_mul_ps(sign, _mm_loadu_ps(x + j + 4));
            __m128 sum2 = _mm_mul_ps(sign, _mm_loadu_ps(x + j + 8));
            __m128 sum3 = _mm_mul_ps(sign, _mm_loadu_ps(x + j + 12));
            for (int b = 1; b < m; b++) {
                const float *in = x + (size_t)b * slab + j;
                sign = _mm_set1_ps(row_signs[b]);
                sum0 = _mm_add_ps(sum0, _mm_mul_ps(sign, _mm_loadu_ps(in)));
                sum1 = _mm_add_ps(sum1, _mm_mul_ps(sign, _mm_loadu_ps(in + 4)));
                sum2 = _mm_add_ps(sum2, _mm_mul_ps(sign, _mm_loadu_ps(in + 8)));
                sum3 = _mm_add_ps(sum3, _mm_mul_ps(sign, _mm_loadu_ps(in + 12)));
            }
            _mm_storeu_ps(out + j, sum0);
            _mm_storeu_ps(out + j + 4, sum1);
            _mm_storeu_ps(out + j + 8, sum2);
            _mm_storeu_ps(out + j + 12, sum3);
        }
        for (; j + 4 <= slab; j += 4) {
            __m128 sum = _mm_mul_ps(_mm_set1_ps(row_signs[0]), _mm_loadu_ps(x + j));
            for (int b = 1; b < m; b++) {
                __m128 in = _mm_loadu_ps(x + (size_t)b * slab + j);
                sum = _mm_add_ps(sum, _mm_mul_ps(_mm_set1_ps(row_signs[b]), in));
            }
            _mm_storeu_ps(out + j, sum);
        }
        for (; j < slab; j++) {
            float sum = row_signs[0] * x[j];
            for (int b = 1; b < m; b++) {
                sum += row_signs[b] * x[(size_t)b * slab + j];
            }
            out[j] = sum;
        }
    }
}

SQ_TARGET_SSE2 void sq_hadamard_scale_sse2(float *x, size_t count, float factor) {
    __m128 f = _mm_set1_ps(factor);
    size_t i = 0;
    for (; i + 4 <= count; i += 4) {
        _mm_storeu_ps(x + i, _mm_mul_ps(_mm_loadu_ps(x + i), f));
    }
    for (; i < count; i++) {
        x[i] *= factor;
    }
}

/* ---- AVX2 ---- */

/* Stages h = 1, 2 and 4 on the 16 floats at x. _mm256_shuffle_ps works within each 128-bit
 * lane, so h = 1 and h = 2 use the SSE2 pattern per lane; h = 4 swaps lane halves. */
SQ_TARGET_AVX2 static void avx2_stages_1_2_4(float *x) {
    __m256 v0 = _mm256_loadu_ps(x);
    __m256 v1 = _mm256_loadu_ps(x + 8);

    __m256 even = _mm256_shuffle_ps(v0, v1, _MM_SHUFFLE(2, 0, 2, 0));
    __m256 odd = _mm256_shuffle_ps(v0, v1, _MM_SHUFFLE(3, 1, 3, 1));
    __m256 sum = _mm256_add_ps(even, odd);
    __m256 diff = _mm256_sub_ps(even, odd);
    v0 = _mm256_unpacklo_ps(sum, diff); /* elements 0..7 after h = 1 */
    v1 = _mm256_unpackhi_ps(sum, diff); /* elements 8..15 after h = 1 */

    __m256 low = _mm256_shuffle_ps(v0, v1, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 high = _mm256_shuffle_ps(v0, v1, _MM_SHUFFLE(3, 2, 3, 2));
    sum = _mm256_add_ps(low, high);
    diff = _mm256_sub_ps(low, high);
    v0 = _mm256_shuffle_ps(sum, diff, _MM_SHUFFLE(1, 0, 1, 0)); /* elements 0..7 after h = 2 */
    v1 = _mm256_shuffle_ps(sum, diff, _MM_SHUFFLE(3, 2, 3, 2)); /* elements 8..15 */

    low = _mm256_permute2f128_ps(v0, v1, 0x20);  /* z0..z3, z8..z11 */
    high = _mm256_permute2f128_ps(v0, v1, 0x31); /* z4..z7, z12..z15 */
    sum = _mm256_add_ps(low, high);
    diff = _mm256_sub_ps(low, high);
    _mm256_storeu_ps(x, _mm256_permute2f128_ps(sum, diff, 0x20));
    _mm256_storeu_ps(x + 8, _mm256_permute2f128_ps(sum, diff, 0x31));
}

/* Stages h = first_h, …, n/2 with first_h >= 8. */
SQ_TARGET_AVX2 static void avx2_wide_stages(float *x, int n, int first_h) {
    int h = first_h;
    for (; 4 * h <= n; h *= 4) {
        for (int block = 0; block < n; block += 4 * h) {
            for (int j = block; j < block + h; j += 8) {
                __m256 x0 = _mm256_loadu_ps(x + j);
                __m256 x1 = _mm256_loadu_ps(x + j + h);
                __m256 x2 = _mm256_loadu_ps(x + j + 2 * h);
                __m256 x3 = _mm256_loadu_ps(x + j + 3 * h);
                __m256 a0 = _mm256_add_ps(x0, x1);
                __m256 a1 = _mm256_sub_ps(x0, x1);
                __m256 a2 = _mm256_add_ps(x2, x3);
                __m256 a3 = _mm256_sub_ps(x2, x3);
                _mm256_storeu_ps(x + j, _mm256_add_ps(a0, a2));
                _mm256_storeu_ps(x + j + h, _mm256_add_ps(a1, a3));
                _mm256_storeu_ps(x + j + 2 * h, _mm256_sub_ps(a0, a2));
                _mm256_storeu_ps(x + j + 3 * h, _mm256_sub_ps(a1, a3));
            }
        }
    }
    if (2 * h == n) {
        for (int j = 0; j < h; j += 8) {
            __m256 a = _mm256_loadu_ps(x + j);
            __m256 b = _mm256_loadu_ps(x + j + h);
            _mm256_storeu_ps(x + j, _mm256_add_ps(a, b));
            _mm256_storeu_ps(x + j + h, _mm256_sub_ps(a, b));
        }
    }
}

SQ_TARGET_AVX2 void sq_hadamard_fwht_unscaled_avx2(float *x, int n) {
    if (n < 16) {
        sq_hadamard_fwht_unscaled_sse2(x, n);
        return;
    }
    for (int i = 0; i < n; i += 16) {
        avx2_stages_1_2_4(x + i);
    }
    avx2_wide_stages(x, n, 8);
}

/* Dense H_m step with 8-float vectors; same order as sq_hadamard_base_step_sse2. */
SQ_TARGET_AVX2 void sq_hadamard_base_step_avx2(const float *signs, int m, size_t slab,
                                               const float *x, float *y) {
    for (int a = 0; a < m; a++) {
        const float *row_signs = signs + (size_t)a * (size_t)m;
        float *out = y + (size_t)a * slab;
        size_t j = 0;
        for (; j + 32 <= slab; j += 32) {
            __m256 sign = _mm256_set1_ps(row_signs[0]);
            __m256 sum0 = _mm256_mul_ps(sign, _mm256_loadu_ps(x + j));
            __m256 sum1 = _mm256_mul_ps(sign, _mm256_loadu_ps(x + j + 8));
            __m256 sum2 = _mm256_mul_ps(sign, _mm256_loadu_ps(x + j + 16));
            __m256 sum3 = _mm256_mul_ps(sign, _mm256_loadu_ps(x + j + 24));
            for (int b = 1; b < m; b++) {
                const float *in = x + (size_t)b * slab + j;
                sign = _mm256_set1_ps(row_signs[b]);
                sum0 = _mm256_add_ps(sum0, _mm256_mul_ps(sign, _mm256_loadu_ps(in)));
                sum1 = _mm256_add_ps(sum1, _mm256_mul_ps(sign, _mm256_loadu_ps(in + 8)));
                sum2 = _mm256_add_ps(sum2, _mm256_mul_ps(sign, _mm256_loadu_ps(in + 16)));
                sum3 = _mm256_add_ps(sum3, _mm256_mul_ps(sign, _mm256_loadu_ps(in + 24)));
            }
            _mm256_storeu_ps(out + j, sum0);
            _mm256_storeu_ps(out + j + 8, sum1);
            _mm256_storeu_ps(out + j + 16, sum2);
            _mm256_storeu_ps(out + j + 24, sum3);
        }
        for (; j + 8 <= slab; j += 8) {
            __m256 sum = _mm256_mul_ps(_mm256_set1_ps(row_signs[0]), _mm256_loadu_ps(x + j));
            for (int b = 1; b < m; b++) {
                __m256 in = _mm256_loadu_ps(x + (size_t)b * slab + j);
                sum = _mm256_add_ps(sum, _mm256_mul_ps(_mm256_set1_ps(row_signs[b]), in));
            }
            _mm256_storeu_ps(out + j, sum);
        }
        for (; j < slab; j++) {
            float sum = row_signs[0] * x[j];
            for (int b = 1; b < m; b++) {
                sum += row_signs[b] * x[(size_t)b * slab + j];
            }
            out[j] = sum;
        }
    }
}

SQ_TARGET_AVX2 void sq_hadamard_scale_avx2(float *x, size_t count, float factor) {
    __m256 f = _mm256_set1_ps(factor);
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), f));
    }
    for (; i < count; i++) {
        x[i] *= factor;
    }
}

#endif
