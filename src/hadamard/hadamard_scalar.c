/* Scalar reference kernels: the FWHT as radix-2 butterflies, stage by stage (h = 1, 2, 4, …),
 * the dense H_m step and the final scaling. */
#include "hadamard/hadamard_kernels.h"

#include <string.h>

void sq_hadamard_fwht_unscaled_scalar(float *x, int n) {
    for (int h = 1; h < n; h *= 2) {
        for (int block = 0; block < n; block += 2 * h) {
            for (int j = block; j < block + h; j++) {
                float a = x[j];
                float b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
        }
    }
}

enum { BASE_STEP_CHUNK = 32 }; /* output floats accumulated in a local array */

void sq_hadamard_base_step_scalar(const float *signs, int m, size_t slab, const float *x,
                                  float *y) {
    for (int a = 0; a < m; a++) {
        const float *row_signs = signs + (size_t)a * (size_t)m;
        for (size_t j0 = 0; j0 < slab; j0 += BASE_STEP_CHUNK) {
            size_t length = slab - j0 < BASE_STEP_CHUNK ? slab - j0 : BASE_STEP_CHUNK;
            float sum[BASE_STEP_CHUNK];
            for (size_t j = 0; j < length; j++) {
                sum[j] = row_signs[0] * x[j0 + j];
            }
            for (int b = 1; b < m; b++) {
                const float sign = row_signs[b];
                const float *in = x + (size_t)b * slab + j0;
                for (size_t j = 0; j < length; j++) {
                    sum[j] += sign * in[j];
                }
            }
            memcpy(y + (size_t)a * slab + j0, sum, length * sizeof(float));
        }
    }
}

void sq_hadamard_scale_scalar(float *x, size_t count, float factor) {
    for (size_t i = 0; i < count; i++) {
        x[i] *= factor;
    }
}
