/* fp32 batched matrix product y = x·Wᵀ, tiled so that a few weight rows stay in cache while
 * every token of the batch uses them. The inner kernel computes two tokens by four rows at
 * once with GCC/Clang vector extensions; each of its lanes follows exactly the summation
 * order of sq_dot_f32, so every output equals the scalar dot product bit for bit. */
#include "forward/matmul.h"

#include <string.h>

#define SQ_MATMUL_ROW_TILE 8

typedef float v8f __attribute__((vector_size(32)));

/* Unaligned 8-float load; a macro because returning a vector type by value changes the
 * calling convention between instruction sets. */
#define LOAD_V8F(dst, p) memcpy(&(dst), (p), sizeof(v8f))

/* Finishes one output: adds the tail elements into lanes 0.. in order, then reduces pairwise. */
static inline float finish_dot(const v8f *acc, const float *a, const float *b, int32_t begin, int32_t n) {
    float lanes[8];
    memcpy(lanes, acc, sizeof(lanes));
    for (int32_t i = begin, j = 0; i < n; i++, j++) {
        lanes[j] += a[i] * b[i];
    }
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

/* y0[r], y1[r] for rows r = 0..3 of w: two tokens times four weight rows. */
static void dot_2x4(float *y0, float *y1, const float *x0, const float *x1, const float *w, int32_t n) {
    const float *w0 = w;
    const float *w1 = w + n;
    const float *w2 = w + 2 * (int64_t)n;
    const float *w3 = w + 3 * (int64_t)n;
    v8f a00 = {0}, a01 = {0}, a02 = {0}, a03 = {0};
    v8f a10 = {0}, a11 = {0}, a12 = {0}, a13 = {0};
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f u0, u1, v0, v1, v2, v3;
        LOAD_V8F(u0, x0 + i);
        LOAD_V8F(u1, x1 + i);
        LOAD_V8F(v0, w0 + i);
        LOAD_V8F(v1, w1 + i);
        LOAD_V8F(v2, w2 + i);
        LOAD_V8F(v3, w3 + i);
        a00 += u0 * v0;
        a01 += u0 * v1;
        a02 += u0 * v2;
        a03 += u0 * v3;
        a10 += u1 * v0;
        a11 += u1 * v1;
        a12 += u1 * v2;
        a13 += u1 * v3;
    }
    y0[0] = finish_dot(&a00, x0, w0, i, n);
    y0[1] = finish_dot(&a01, x0, w1, i, n);
    y0[2] = finish_dot(&a02, x0, w2, i, n);
    y0[3] = finish_dot(&a03, x0, w3, i, n);
    y1[0] = finish_dot(&a10, x1, w0, i, n);
    y1[1] = finish_dot(&a11, x1, w1, i, n);
    y1[2] = finish_dot(&a12, x1, w2, i, n);
    y1[3] = finish_dot(&a13, x1, w3, i, n);
}

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
        int32_t b = 0;
        for (; b + 2 <= batch; b += 2) {
            const float *x0 = x + (int64_t)b * in;
            float *y0 = y + (int64_t)b * out;
            int32_t row = row0;
            for (; row + 4 <= tile_end; row += 4) {
                dot_2x4(y0 + row, y0 + out + row, x0, x0 + in, w + (int64_t)row * in, in);
            }
            for (; row < tile_end; row++) {
                y0[row] = sq_dot_f32(x0, w + (int64_t)row * in, in);
                y0[out + row] = sq_dot_f32(x0 + in, w + (int64_t)row * in, in);
            }
        }
        for (; b < batch; b++) {
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
