/* int8-weight × int16-activation products; see matmul_i8.h for the formula. */
#include "kernels/matmul_i8.h"

#include <math.h>

#include "kernels/qdot.h"
#include "quant/rounding.h"

/* Rows per unit of work. The tile's codes (ROW_TILE · in bytes) stay in the CPU cache while
 * every token of a batch passes over them. */
#define ROW_TILE 16

void sq_quantize_rows_i16(int16_t *codes, float *scales, const float *x, int32_t batch, int32_t n) {
    for (int32_t t = 0; t < batch; t++) {
        const float *row = x + (int64_t)t * n;
        int16_t *out = codes + (int64_t)t * n;
        float largest = 0.0f;
        for (int32_t c = 0; c < n; c++) {
            float magnitude = fabsf(row[c]);
            largest = magnitude > largest || isnan(magnitude) ? magnitude : largest;
        }

        if (!isfinite(largest)) {
            scales[t] = NAN;
            for (int32_t c = 0; c < n; c++) {
                out[c] = 0;
            }
            continue;
        }
        float scale = largest > 0.0f ? largest / (float)SQ_I16_CODE_MAX : 1.0f;
        scales[t] = scale;
        for (int32_t c = 0; c < n; c++) {
            float code = sq_clamp_float(sq_round_half_even(row[c] / scale), -(float)SQ_I16_CODE_MAX,
                                        (float)SQ_I16_CODE_MAX);
            out[c] = (int16_t)code;
        }
    }
}

int64_t sq_dot_i8_i16_scalar(const int8_t *codes, const int16_t *x, int32_t n) {
    int64_t sum = 0;
    for (int32_t c = 0; c < n; c++) {
        sum += (int64_t)codes[c] * (int64_t)x[c];
    }
    return sum;
}

void sq_matmul_i8_i16_rows(float *y, const int16_t *x, const float *x_scales, const int8_t *codes,
                           const float *scales, int32_t batch, int32_t in, int32_t out, int32_t row_begin,
                           int32_t row_end) {
    const sq_qdot_kernels *kernels = sq_qdot_select();
    for (int32_t r0 = row_begin; r0 < row_end; r0 += ROW_TILE) {
        int32_t r1 = row_end - r0 < ROW_TILE ? row_end : r0 + ROW_TILE;
        for (int32_t t = 0; t < batch; t++) {
            float *yt = y + (int64_t)t * out;
            const int16_t *xt = x + (int64_t)t * in;
            for (int32_t r = r0; r < r1; r++) {
                int64_t sum = kernels->i8_i16(codes + (int64_t)r * in, xt, in);
                yt[r] = scales[r] * (x_scales[t] * (float)sum);
            }
        }
    }
}

typedef struct matmul_task {
    float *y;
    const int16_t *x;
    const float *x_scales;
    const int8_t *codes;
    const float *scales;
    int32_t batch;
    int32_t in;
    int32_t out;
} matmul_task;

static void matmul_task_run(void *context, int task_index, int n_tasks) {
    const matmul_task *t = context;
    int32_t tiles = (t->out + ROW_TILE - 1) / ROW_TILE;
    int32_t begin = (int32_t)((int64_t)tiles * task_index / n_tasks) * ROW_TILE;
    int32_t end = (int32_t)((int64_t)tiles * (task_index + 1) / n_tasks) * ROW_TILE;
    end = end < t->out ? end : t->out;
    if (begin < end) {
        sq_matmul_i8_i16_rows(t->y, t->x, t->x_scales, t->codes, t->scales, t->batch, t->in, t->out, begin, end);
    }
}

void sq_matmul_i8_i16_parallel(sq_threadpool *pool, float *y, const int16_t *x, const float *x_scales,
                               const int8_t *codes, const float *scales, int32_t batch, int32_t in, int32_t out) {
    matmul_task task = {y, x, x_scales, codes, scales, batch, in, out};
    sq_threadpool_run(pool, matmul_task_run, &task, sq_threadpool_size(pool) * 4);
}
