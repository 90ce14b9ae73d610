/* int8-weight × fp32-activation products; see matmul_i8.h for the summation order. */
#include "kernels/matmul_i8.h"

#include <stdlib.h>
#include <string.h>

#include "forward/matmul.h"
#include "kernels/qdot.h"

#define ROW_TILE 16

/* From this many tokens on, a row tile is converted to fp32 once and multiplied with the fp32
 * kernel, which costs less than converting the codes again for every token. */
#define CONVERT_MIN_BATCH 4

float sq_dot_i8_f32_scalar(const int8_t *codes, const float *x, int32_t n) {
    float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int32_t c = 0;
    for (; c + 8 <= n; c += 8) {
        for (int j = 0; j < 8; j++) {
            lanes[j] += (float)codes[c + j] * x[c + j];
        }
    }
    for (int j = 0; c < n; c++, j++) {
        lanes[j] += (float)codes[c] * x[c];
    }
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

/* Rows [row_begin, row_end) token by token, four rows per kernel call. */
static void matmul_rows_direct(const sq_qdot_kernels *kernels, float *y, const float *x, const int8_t *codes,
                               const float *scales, int32_t batch, int32_t in, int32_t out, int32_t row_begin,
                               int32_t row_end) {
    for (int32_t t = 0; t < batch; t++) {
        float *yt = y + (int64_t)t * out;
        for (int32_t r = row_begin; r < row_end; r += 4) {
            int32_t n_rows = row_end - r < 4 ? row_end - r : 4;
            kernels->i8_f32(yt + r, x + (int64_t)t * in, codes + (int64_t)r * in, (size_t)in, in, n_rows);
            for (int32_t i = 0; i < n_rows; i++) {
                yt[r + i] *= scales[r + i];
            }
        }
    }
}

/* Rows [row_begin, row_end) through fp32 copies of ROW_TILE rows: (float)code is exact and
 * sq_matmul_f32 sums in the same order, so the result is the same as the direct route. Returns
 * 0 when the scratch space cannot be allocated. */
static int matmul_rows_converted(float *y, const float *x, const int8_t *codes, const float *scales, int32_t batch,
                                 int32_t in, int32_t out, int32_t row_begin, int32_t row_end) {
    float *tile = malloc((size_t)ROW_TILE * (size_t)in * sizeof(float));
    float *products = malloc((size_t)ROW_TILE * (size_t)batch * sizeof(float));
    if (tile == NULL || products == NULL) {
        free(tile);
        free(products);
        return 0;
    }
    for (int32_t r0 = row_begin; r0 < row_end; r0 += ROW_TILE) {
        int32_t rows = row_end - r0 < ROW_TILE ? row_end - r0 : ROW_TILE;
        const int8_t *source = codes + (int64_t)r0 * in;
        for (int64_t i = 0; i < (int64_t)rows * in; i++) {
            tile[i] = (float)source[i];
        }
        sq_matmul_f32(products, x, tile, batch, in, rows);
        for (int32_t t = 0; t < batch; t++) {
            for (int32_t r = 0; r < rows; r++) {
                y[(int64_t)t * out + r0 + r] = products[(int64_t)t * rows + r] * scales[r0 + r];
            }
        }
    }
    free(tile);
    free(products);
    return 1;
}

void sq_matmul_i8_f32_rows(float *y, const float *x, const int8_t *codes, const float *scales, int32_t batch,
                           int32_t in, int32_t out, int32_t row_begin, int32_t row_end) {
    if (batch >= CONVERT_MIN_BATCH && matmul_rows_converted(y, x, codes, scales, batch, in, out, row_begin, row_end)) {
        return;
    }
    matmul_rows_direct(sq_qdot_select(), y, x, codes, scales, batch, in, out, row_begin, row_end);
}

typedef struct matmul_task {
    float *y;
    const float *x;
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
        sq_matmul_i8_f32_rows(t->y, t->x, t->codes, t->scales, t->batch, t->in, t->out, begin, end);
    }
}

void sq_matmul_i8_f32_parallel(sq_threadpool *pool, float *y, const float *x, const int8_t *codes,
                               const float *scales, int32_t batch, int32_t in, int32_t out) {
    matmul_task task = {y, x, codes, scales, batch, in, out};
    sq_threadpool_run(pool, matmul_task_run, &task, sq_threadpool_size(pool) * 4);
}
