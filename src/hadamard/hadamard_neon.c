/* FWHT kernels for AArch64 Advanced SIMD (NEON, 4 floats per vector). Same schedule as the SSE2
 * kernels in hadamard_x86.c, so results match the scalar reference bit for bit.
 * NOTE: the bit-equality tests passed under qemu-aarch64 user-mode emulation (aarch64-linux-gnu-
 * gcc 12) but have not run on ARM hardware. */
#include "hadamard/hadamard_kernels.h"

#if SQ_HADAMARD_HAVE_NEON

#include <arm_neon.h>

/* Stages h = 1 and h = 2 on the 8 floats at x. */
static void neon_stages_1_2(float *x) {
    float32x4_t v0 = vld1q_f32(x);
    float32x4_t v1 = vld1q_f32(x + 4);

    float32x4x2_t split = vuzpq_f32(v0, v1); /* x0 x2 x4 x6 | x1 x3 x5 x7 */
    float32x4_t sum = vaddq_f32(split.val[0], split.val[1]);
    float32x4_t diff = vsubq_f32(split.val[0], split.val[1]);
    float32x4x2_t merged = vzipq_f32(sum, diff); /* s0 d0 s1 d1 | s2 d2 s3 d3 */
    v0 = merged.val[0];
    v1 = merged.val[1];

    float32x4_t low = vcombine_f32(vget_low_f32(v0), vget_low_f32(v1));
    float32x4_t high = vcombine_f32(vget_high_f32(v0), vget_high_f32(v1));
    sum = vaddq_f32(low, high);
    diff = vsubq_f32(low, high);
    vst1q_f32(x, vcombine_f32(vget_low_f32(sum), vget_low_f32(diff)));
    vst1q_f32(x + 4, vcombine_f32(vget_high_f32(sum), vget_high_f32(diff)));
}

/* Stages h = first_h, …, n/2 with first_h >= 4. */
static void neon_wide_stages(float *x, int n, int first_h) {
    int h = first_h;
    for (; 4 * h <= n; h *= 4) {
        for (int block = 0; block < n; block += 4 * h) {
            for (int j = block; j < block + h; j += 4) {
                float32x4_t x0 = vld1q_f32(x + j);
                float32x4_t x1 = vld1q_f32(x + j + h);
                float32x4_t x2 = vld1q_f32(x + j + 2 * h);
                float32x4_t x3 = vld1q_f32(x + j + 3 * h);
                float32x4_t a0 = vaddq_f32(x0, x1);
                float32x4_t a1 = vsubq_f32(x0, x1);
                float32x4_t a2 = vaddq_f32(x2, x3);
                float32x4_t a3 = vsubq_f32(x2, x3);
                vst1q_f32(x + j, vaddq_f32(a0, a2));
                vst1q_f32(x + j + h, vaddq_f32(a1, a3));
                vst1q_f32(x + j + 2 * h, vsubq_f32(a0, a2));
                vst1q_f32(x + j + 3 * h, vsubq_f32(a1, a3));
            }
        }
    }
    if (2 * h == n) {
        for (int j = 0; j < h; j += 4) {
            float32x4_t a = vld1q_f32(x + j);
            float32x4_t b = vld1q_f32(x + j + h);
            vst1q_f32(x + j, vaddq_f32(a, b));
            vst1q_f32(x + j + h, vsubq_f32(a, b));
        }
    }
}

void sq_hadamard_fwht_unscaled_neon(float *x, int n) {
    if (n < 8) {
        sq_hadamard_fwht_unscaled_scalar(x, n);
        return;
    }
    for (int i = 0; i < n; i += 8) {
        neon_stages_1_2(x + i);
    }
    neon_wide_stages(x, n, 4);
}

/* Dense H_m step. Each pass over b accumulates four vectors (16 floats) of one output group,
 * then single vectors and scalar leftovers follow. Every output is the scalar reference's sum,
 * formed in the same order. A fused multiply-add would give the same result as the separate
 * vmulq and vaddq, because every product is exact (the signs are ±1). */
void sq_hadamard_base_step_neon(const float *signs, int m, size_t slab, const float *x,
                                float *y) {
    for (int a = 0; a < m; a++) {
        const float *row_signs = signs + (size_t)a * (size_t)m;
        float *out = y + (size_t)a * slab;
        size_t j = 0;
        for (; j + 16 <= slab; j += 16) {
            float32x4_t sign = vdupq_n_f32(row_signs[0]);
            float32x4_t sum0 = vmulq_f32(sign, vld1q_f32(x + j));
            float32x4_t sum1 = vmulq_f32(sign, vld1q_f32(x + j + 4));
            float32x4_t sum2 = vmulq_f32(sign, vld1q_f32(x + j + 8));
            float32x4_t sum3 = vmulq_f32(sign, vld1q_f32(x + j + 12));
            for (int b = 1; b < m; b++) {
                const float *in = x + (size_t)b * slab + j;
                sign = vdupq_n_f32(row_signs[b]);
                sum0 = vaddq_f32(sum0, vmulq_f32(sign, vld1q_f32(in)));
                sum1 = vaddq_f32(sum1, vmulq_f32(sign, vld1q_f32(in + 4)));
                sum2 = vaddq_f32(sum2, vmulq_f32(sign, vld1q_f32(in + 8)));
                sum3 = vaddq_f32(sum3, vmulq_f32(sign, vld1q_f32(in + 12)));
            }
            vst1q_f32(out + j, sum0);
            vst1q_f32(out + j + 4, sum1);
            vst1q_f32(out + j + 8, sum2);
            vst1q_f32(out + j + 12, sum3);
        }
        for (; j + 4 <= slab; j += 4) {
            float32x4_t sum = vmulq_f32(vdupq_n_f32(row_signs[0]), vld1q_f32(x + j));
            for (int b = 1; b < m; b++) {
                float32x4_t in = vld1q_f32(x + (size_t)b * slab + j);
                sum = vaddq_f32(sum, vmulq_f32(vdupq_n_f32(row_signs[b]), in));
            }
            vst1q_f32(out + j, sum);
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

void sq_hadamard_scale_neon(float *x, size_t count, float factor) {
    size_t i = 0;
    for (; i + 4 <= count; i += 4) {
        vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), factor));
    }
    for (; i < count; i++) {
        x[i] *= factor;
    }
}

#endif
