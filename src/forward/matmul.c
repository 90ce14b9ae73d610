/* fp32 batched matrix product y = x·Wᵀ, tiled so that a few weight rows stay in cache while
 * every token of the batch uses them. */
#include "forward/matmul.h"

#define SQ_MATMUL_ROW_TILE 8

float sq_dot_f32(const float *a, const float *b, int32_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; j++) {
            acc[j] += a[i + j] * b[i + j];
        }
    }
    for (int j = 0; i < n; i++, j++) {
        acc[j] += a[i] * b[i];
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* Computes output columns [row_begin, row_end) of y for every batch row. */
static void matmul_rows(float *y, const float *x, const float *w, int32_t batch, int32_t in, int32_t out,
                        int32_t row_begin, int32_t row_end) {
    for (int32_t row0 = row_begin; row0 < row_end; row0 += SQ_MATMUL_ROW_TILE) {
        int32_t tile_end = row0 + SQ_MATMUL_ROW_TILE < row_end ? row0 + SQ_MATMUL_ROW_TILE : row_end;
        for (int32_t b = 0; b < batch; b++) {
            const float *xb = x + (int64_t)b * in;
            float *yb = y + (int64_t)b * out;
            for (int32_t row = row0; row < tile_end; row++) {
                yb[row] = sq_dot_f32(xb, w + (int64_t)row * in, in);
            }
        }
    }
}

void sq_matmul_f32(float *y, const float *x, const float *w, int32_t batch, int32_t in, int32_t out) {
    matmul_rows(y, x, w, batch, in, out, 0, out);
}

typedef struct matmul_task {
    float *y;
    const float *x;
    const float *w;
    int32_t batch;
    int32_t in;
    int32_t out;
} matmul_task;

static void matmul_task_run(void *context, int task_index, int n_tasks) {
    const matmul_task *t = context;
    int32_t tiles = (t->out + SQ_MATMUL_ROW_TILE - 1) / SQ_MATMUL_ROW_TILE;
    int32_t tile_begin = (int32_t)((int64_t)tiles * task_index / n_tasks);
    int32_t tile_end = (int32_t)((int64_t)tiles * (task_index + 1) / n_tasks);
    int32_t row_begin = tile_begin * SQ_MATMUL_ROW_TILE;
    int32_t row_end = tile_end * SQ_MATMUL_ROW_TILE < t->out ? tile_end * SQ_MATMUL_ROW_TILE : t->out;
    if (row_begin < row_end) {
        matmul_rows(t->y, t->x, t->w, t->batch, t->in, t->out, row_begin, row_end);
    }
}

void sq_matmul_f32_parallel(sq_threadpool *pool, float *y, const float *x, const float *w, int32_t batch,
                            int32_t in, int32_t out) {
    int n_threads = sq_threadpool_size(pool);
    if (n_threads <= 1) {
        sq_matmul_f32(y, x, w, batch, in, out);
        return;
    }
    matmul_task task = {y, x, w, batch, in, out};
    sq_threadpool_run(pool, matmul_task_run, &task, n_threads * 4);
}
