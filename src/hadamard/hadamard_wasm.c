/* FWHT kernel for WebAssembly SIMD128 (4 floats per vector), compiled only with -msimd128.
 * Same schedule as the SSE2 kernel in hadamard_x86.c: stages h = 1 and 2 in registers with
 * shuffles, then the wider stages two at a time (radix 4), so results match the scalar
 * reference bit for bit. */
#include "hadamard/hadamard_kernels.h"

#if SQ_HADAMARD_HAVE_WASM_SIMD128

#include <wasm_simd128.h>

/* Stages h = 1 and h = 2 on the 8 floats at x. */
static void wasm_stages_1_2(float *x) {
    v128_t v0 = wasm_v128_load(x);
    v128_t v1 = wasm_v128_load(x + 4);

    v128_t even = wasm_i32x4_shuffle(v0, v1, 0, 2, 4, 6);
    v128_t odd = wasm_i32x4_shuffle(v0, v1, 1, 3, 5, 7);
    v128_t sum = wasm_f32x4_add(even, odd);
    v128_t diff = wasm_f32x4_sub(even, odd);
    v0 = wasm_i32x4_shuffle(sum, diff, 0, 4, 1, 5); /* s0 d0 s1 d1 */
    v1 = wasm_i32x4_shuffle(sum, diff, 2, 6, 3, 7); /* s2 d2 s3 d3 */

    v128_t low = wasm_i32x4_shuffle(v0, v1, 0, 1, 4, 5);
    v128_t high = wasm_i32x4_shuffle(v0, v1, 2, 3, 6, 7);
    sum = wasm_f32x4_add(low, high);
    diff = wasm_f32x4_sub(low, high);
    wasm_v128_store(x, wasm_i32x4_shuffle(sum, diff, 0, 1, 4, 5));
    wasm_v128_store(x + 4, wasm_i32x4_shuffle(sum, diff, 2, 3, 6, 7));
}

/* Stages h = first_h, …, n/2 with first_h >= 4. */
static void wasm_wide_stages(float *x, int n, int first_h) {
    int h = first_h;
    for (; 4 * h <= n; h *= 4) {
        for (int block = 0; block < n; block += 4 * h) {
            for (int j = block; j < block + h; j += 4) {
                v128_t x0 = wasm_v128_load(x + j);
                v128_t x1 = wasm_v128_load(x + j + h);
                v128_t x2 = wasm_v128_load(x + j + 2 * h);
                v128_t x3 = wasm_v128_load(x + j + 3 * h);
                v128_t a0 = wasm_f32x4_add(x0, x1);
                v128_t a1 = wasm_f32x4_sub(x0, x1);
                v128_t a2 = wasm_f32x4_add(x2, x3);
                v128_t a3 = wasm_f32x4_sub(x2, x3);
                wasm_v128_store(x + j, wasm_f32x4_add(a0, a2));
                wasm_v128_store(x + j + h, wasm_f32x4_add(a1, a3));
                wasm_v128_store(x + j + 2 * h, wasm_f32x4_sub(a0, a2));
                wasm_v128_store(x + j + 3 * h, wasm_f32x4_sub(a1, a3));
            }
        }
    }
    if (2 * h == n) {
        for (int j = 0; j < h; j += 4) {
            v128_t a = wasm_v128_load(x + j);
            v128_t b = wasm_v128_load(x + j + h);
            wasm_v128_store(x + j, wasm_f32x4_add(a, b));
            wasm_v128_store(x + j + h, wasm_f32x4_sub(a, b));
        }
    }
}

void sq_hadamard_fwht_unscaled_wasm(float *x, int n) {
    if (n < 8) {
        sq_hadamard_fwht_unscaled_scalar(x, n);
        return;
    }
    for (int i = 0; i < n; i += 8) {
        wasm_stages_1_2(x + i);
    }
    wasm_wide_stages(x, n, 4);
}

/* Dense H_m step. Each pass over b accumulates four vectors (16 floats) of one output group,
 * then single vectors and scalar leftovers follow. Every output is the scalar reference's sum,
 * formed in the same order. */
void sq_hadamard_base_step_wasm(const float *signs, int m, size_t slab, const float *x,
                                float *y) {
    for (int a = 0; a < m; a++) {
        const float *row_signs = signs + (size_t)a * (size_t)m;
        float *out = y + (size_t)a * slab;
        size_t j = 0;
        for (; j + 16 <= slab; j += 16) {
            v128_t sign = wasm_f32x4_splat(row_signs[0]);
            v128_t sum0 = wasm_f32x4_mul(sign, wasm_v128_load(x + j));
            v128_t sum1 = wasm_f32x4_mul(sign, wasm_v128_load(x + j + 4));
            v128_t sum2 = wasm_f32x4_mul(sign, wasm_v128_load(x + j + 8));
            v128_t sum3 = wasm_f32x4_mul(sign, wasm_v128_load(x + j + 12));
            for (int b = 1; b < m; b++) {
                const float *in = x + (size_t)b * slab + j;
                sign = wasm_f32x4_splat(row_signs[b]);
                sum0 = wasm_f32x4_add(sum0, wasm_f32x4_mul(sign, wasm_v128_load(in)));
                sum1 = wasm_f32x4_add(sum1, wasm_f32x4_mul(sign, wasm_v128_load(in + 4)));
                sum2 = wasm_f32x4_add(sum2, wasm_f32x4_mul(sign, wasm_v128_load(in + 8)));
                sum3 = wasm_f32x4_add(sum3, wasm_f32x4_mul(sign, wasm_v128_load(in + 12)));
            }
            wasm_v128_store(out + j, sum0);
            wasm_v128_store(out + j + 4, sum1);
            wasm_v128_store(out + j + 8, sum2);
            wasm_v128_store(out + j + 12, sum3);
        }
        for (; j + 4 <= slab; j += 4) {
            v128_t sum = wasm_f32x4_mul(wasm_f32x4_splat(row_signs[0]), wasm_v128_load(x + j));
            for (int b = 1; b < m; b++) {
                v128_t in = wasm_v128_load(x + (size_t)b * slab + j);
                sum = wasm_f32x4_add(sum, wasm_f32x4_mul(wasm_f32x4_splat(row_signs[b]), in));
            }
            wasm_v128_store(out + j, sum);
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

void sq_hadamard_scale_wasm(float *x, size_t count, float factor) {
    v128_t f = wasm_f32x4_splat(factor);
    size_t i = 0;
    for (; i + 4 <= count; i += 4) {
        wasm_v128_store(x + i, wasm_f32x4_mul(wasm_v128_load(x + i), f));
    }
    for (; i < count; i++) {
        x[i] *= factor;
    }
}

#endif
