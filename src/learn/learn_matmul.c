/* Double-precision products for rotation learning, with the summation orders stated in
 * learn_matmul.h. The kernels use GCC/Clang vector extensions of eight doubles, which the
 * compiler splits into narrower registers on targets without 512-bit vectors. */
#include "learn/learn_matmul.h"

#include <stdlib.h>
#include <string.h>

typedef double v8d __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));

/* Unaligned loads and stores; macros because returning a vector type by value changes the
 * calling convention between instruction sets. */
#define LOAD_V8D(dst, p) memcpy(&(dst), (p), sizeof(v8d))
#define STORE_V8D(p, src) memcpy((p), &(src), sizeof(v8d))
#define LOAD_V8F_AS_V8D(dst, p)                                                                    \
    do {                                                                                           \
        v8f narrow_;                                                                               \
        memcpy(&narrow_, (p), sizeof(v8f));                                                        \
        (dst) = __builtin_convertvector(narrow_, v8d);                                             \
    } while (0)

enum {
    NT_ROW_TILE = 8,    /* weight rows widened and reused across all rows of x */
    NN_COLUMN_TILE = 16, /* output columns one task step keeps in registers */
    NN_K_BLOCK = 256,    /* inner-dimension block reused by every row */
    NN_ROW_BLOCK = 128,  /* rows of x whose inner-dimension block one pass keeps in cache */
    TN_ROW_TILE = 4,    /* rows of c one task step keeps in registers */
    TN_ROW_BLOCK = 128, /* rows of a and b one pass reuses from cache across all tiles of c */
};

/* ---- nt: y = x·wᵀ ---- */

static inline double finish_dot(v8d acc, const double *a, const double *b, int32_t begin, int32_t n) {
    double lanes[8];
    memcpy(lanes, &acc, sizeof(lanes));
    for (int32_t i = begin, j = 0; i < n; i++, j++) {
        lanes[j] += a[i] * b[i];
    }
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

static double dot_f64(const double *a, const double *b, int32_t n) {
    v8d acc = {0};
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8d u;
        v8d v;
        LOAD_V8D(u, a + i);
        LOAD_V8D(v, b + i);
        acc += u * v;
    }
    return finish_dot(acc, a, b, i, n);
}

/* Two rows of x times four rows of w, each output in the order of dot_f64. */
static void dot_2x4(double *y0, double *y1, const double *x0, const double *x1, const double *w, int32_t n) {
    const double *w0 = w;
    const double *w1 = w + n;
    const double *w2 = w + 2 * (int64_t)n;
    const double *w3 = w + 3 * (int64_t)n;
    v8d a00 = {0}, a01 = {0}, a02 = {0}, a03 = {0};
    v8d a10 = {0}, a11 = {0}, a12 = {0}, a13 = {0};
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8d u0, u1, v0, v1, v2, v3;
        LOAD_V8D(u0, x0 + i);
        LOAD_V8D(u1, x1 + i);
        LOAD_V8D(v0, w0 + i);
        LOAD_V8D(v1, w1 + i);
        LOAD_V8D(v2, w2 + i);
        LOAD_V8D(v3, w3 + i);
        a00 += u0 * v0;
        a01 += u0 * v1;
        a02 += u0 * v2;
        a03 += u0 * v3;
        a10 += u1 * v0;
        a11 += u1 * v1;
        a12 += u1 * v2;
        a13 += u1 * v3;
    }
    y0[0] = finish_dot(a00, x0, w0, i, n);
    y0[1] = finish_dot(a01, x0, w1, i, n);
    y0[2] = finish_dot(a02, x0, w2, i, n);
    y0[3] = finish_dot(a03, x0, w3, i, n);
    y1[0] = finish_dot(a10, x1, w0, i, n);
    y1[1] = finish_dot(a11, x1, w1, i, n);
    y1[2] = finish_dot(a12, x1, w2, i, n);
    y1[3] = finish_dot(a13, x1, w3, i, n);
}

/* Columns [first, first + count) of y from the weight rows tile (count, in), already double. */
static void nt_tile(double *y, const double *x, const double *tile, int32_t rows, int32_t in, int32_t out,
                    int32_t first, int32_t count) {
    int32_t r = 0;
    for (; r + 2 <= rows; r += 2) {
        const double *x0 = x + (int64_t)r * in;
        double *y0 = y + (int64_t)r * out + first;
        int32_t j = 0;
        for (; j + 4 <= count; j += 4) {
            dot_2x4(y0 + j, y0 + out + j, x0, x0 + in, tile + (int64_t)j * in, in);
        }
        for (; j < count; j++) {
            y0[j] = dot_f64(x0, tile + (int64_t)j * in, in);
            y0[out + j] = dot_f64(x0 + in, tile + (int64_t)j * in, in);
        }
    }
    for (; r < rows; r++) {
        const double *xr = x + (int64_t)r * in;
        double *yr = y + (int64_t)r * out + first;
        for (int32_t j = 0; j < count; j++) {
            yr[j] = dot_f64(xr, tile + (int64_t)j * in, in);
        }
    }
}

typedef struct nt_task {
    double *y;
    const double *x;
    const float *w32;  /* (out, in), or NULL */
    const double *w64; /* (out, in), or NULL */
    int32_t rows;
    int32_t in;
    int32_t out;
    double *scratch; /* (n_tasks, NT_ROW_TILE, in) widened weight rows, for w32 */
} nt_task;

static void nt_task_run(void *context, int task_index, int n_tasks) {
    const nt_task *t = context;
    int32_t tiles = (t->out + NT_ROW_TILE - 1) / NT_ROW_TILE;
    int32_t tile_begin = (int32_t)((int64_t)tiles * task_index / n_tasks);
    int32_t tile_end = (int32_t)((int64_t)tiles * (task_index + 1) / n_tasks);
    double *widened = t->scratch != NULL ? t->scratch + (int64_t)task_index * NT_ROW_TILE * t->in : NULL;

    for (int32_t tile = tile_begin; tile < tile_end; tile++) {
        int32_t first = tile * NT_ROW_TILE;
        int32_t count = t->out - first < NT_ROW_TILE ? t->out - first : NT_ROW_TILE;
        const double *rows64;
        if (t->w64 != NULL) {
            rows64 = t->w64 + (int64_t)first * t->in;
        } else {
            const float *rows32 = t->w32 + (int64_t)first * t->in;
            for (int64_t i = 0; i < (int64_t)count * t->in; i++) {
                widened[i] = (double)rows32[i];
            }
            rows64 = widened;
        }
        nt_tile(t->y, t->x, rows64, t->rows, t->in, t->out, first, count);
    }
}

/* Four tasks per thread balance uneven tiles; one task when serial. */
static int task_count(sq_threadpool *pool, int32_t tiles) {
    int n = sq_threadpool_size(pool) <= 1 ? 1 : sq_threadpool_size(pool) * 4;
    if (tiles < 1) {
        return 1;
    }
    return tiles < n ? tiles : n;
}

static sq_status run_nt(sq_threadpool *pool, nt_task *task, sq_error *err) {
    int32_t tiles = (task->out + NT_ROW_TILE - 1) / NT_ROW_TILE;
    int n_tasks = task_count(pool, tiles);
    if (task->w32 != NULL) {
        size_t doubles = (size_t)n_tasks * NT_ROW_TILE * (size_t)task->in;
        task->scratch = malloc(doubles * sizeof(double) + 1);
        if (task->scratch == NULL) {
            return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %zu bytes to widen weight rows",
                                doubles * sizeof(double));
        }
    }
    sq_threadpool_run(pool, nt_task_run, task, n_tasks);
    free(task->scratch);
    return SQ_OK;
}

sq_status sq_learn_matmul_nt_f32(sq_threadpool *pool, double *y, const double *x, const float *w, int32_t rows,
                                 int32_t in, int32_t out, sq_error *err) {
    nt_task task = {y, x, w, NULL, rows, in, out, NULL};
    return run_nt(pool, &task, err);
}

sq_status sq_learn_matmul_nt_f64(sq_threadpool *pool, double *y, const double *x, const double *w, int32_t rows,
                                 int32_t in, int32_t out, sq_error *err) {
    nt_task task = {y, x, NULL, w, rows, in, out, NULL};
    return run_nt(pool, &task, err);
}

/* ---- nn: y = x·w ---- */

typedef struct nn_task {
    double *y;
    const double *x;
    const float *w32;  /* (in, out), or NULL */
    const double *w64; /* (in, out), or NULL */
    int32_t rows;
    int32_t in;
    int32_t out;
} nn_task;

/* Loads w[k][j..j+16) as two double vectors. */
#define LOAD_W16(t, k, j, w0, w1)                                                                  \
    do {                                                                                           \
        int64_t offset_ = (int64_t)(k) * (t)->out + (j);                                           \
        if ((t)->w64 != NULL) {                                                                    \
            LOAD_V8D(w0, (t)->w64 + offset_);                                                      \
            LOAD_V8D(w1, (t)->w64 + offset_ + 8);                                                  \
        } else {                                                                                   \
            LOAD_V8F_AS_V8D(w0, (t)->w32 + offset_);                                               \
            LOAD_V8F_AS_V8D(w1, (t)->w32 + offset_ + 8);                                           \
        }                                                                                          \
    } while (0)

static inline double w_at(const nn_task *t, int32_t k, int32_t j) {
    int64_t offset = (int64_t)k * t->out + j;
    return t->w64 != NULL ? t->w64[offset] : (double)t->w32[offset];
}

/* Adds Σ_{k0 <= k < k1} x[r][k]·w[k][j..j+16) to y[r][j..j+16) for `count` rows from r (1 to 4),
 * starting from 0 when k0 is 0. The running sums stay in registers across the block. */
static void nn_block(const nn_task *t, int32_t r, int32_t count, int32_t j, int32_t k0, int32_t k1) {
    v8d acc[4][2];
    for (int32_t i = 0; i < count; i++) {
        double *yr = t->y + (int64_t)(r + i) * t->out + j;
        for (int q = 0; q < 2; q++) {
            if (k0 == 0) {
                acc[i][q] = (v8d){0};
            } else {
                LOAD_V8D(acc[i][q], yr + 8 * q);
            }
        }
    }
    const double *x0 = t->x + (int64_t)r * t->in;
    if (count == 4) {
        for (int32_t k = k0; k < k1; k++) {
            v8d w0, w1;
            LOAD_W16(t, k, j, w0, w1);
            for (int i = 0; i < 4; i++) {
                double xv = x0[(int64_t)i * t->in + k];
                acc[i][0] += xv * w0;
                acc[i][1] += xv * w1;
            }
        }
    } else {
        for (int32_t k = k0; k < k1; k++) {
            v8d w0, w1;
            LOAD_W16(t, k, j, w0, w1);
            for (int32_t i = 0; i < count; i++) {
                double xv = x0[(int64_t)i * t->in + k];
                acc[i][0] += xv * w0;
                acc[i][1] += xv * w1;
            }
        }
    }
    for (int32_t i = 0; i < count; i++) {
        double *yr = t->y + (int64_t)(r + i) * t->out + j;
        for (int q = 0; q < 2; q++) {
            STORE_V8D(yr + 8 * q, acc[i][q]);
        }
    }
}

static void nn_single(const nn_task *t, int32_t r, int32_t j) {
    const double *xr = t->x + (int64_t)r * t->in;
    double sum = 0.0;
    for (int32_t k = 0; k < t->in; k++) {
        sum += xr[k] * w_at(t, k, j);
    }
    t->y[(int64_t)r * t->out + j] = sum;
}

/* Rows and the inner dimension are cut into blocks, the outer loops, so that an
 * (NN_ROW_BLOCK, NN_K_BLOCK) slice of x stays in cache while every column tile of the task
 * uses it. Each element still sums the inner index in increasing order. */
static void nn_task_run(void *context, int task_index, int n_tasks) {
    const nn_task *t = context;
    int32_t tiles = (t->out + NN_COLUMN_TILE - 1) / NN_COLUMN_TILE;
    int32_t tile_begin = (int32_t)((int64_t)tiles * task_index / n_tasks);
    int32_t tile_end = (int32_t)((int64_t)tiles * (task_index + 1) / n_tasks);
    int32_t full_end = tile_end;
    if (tile_end == tiles && t->out % NN_COLUMN_TILE != 0) {
        full_end = tile_end - 1;
        for (int32_t r = 0; r < t->rows; r++) {
            for (int32_t jj = full_end * NN_COLUMN_TILE; jj < t->out; jj++) {
                nn_single(t, r, jj);
            }
        }
    }
    for (int32_t r0 = 0; r0 < t->rows; r0 += NN_ROW_BLOCK) {
        int32_t r1 = t->rows - r0 < NN_ROW_BLOCK ? t->rows : r0 + NN_ROW_BLOCK;
        for (int32_t k0 = 0; k0 < t->in; k0 += NN_K_BLOCK) {
            int32_t k1 = t->in - k0 < NN_K_BLOCK ? t->in : k0 + NN_K_BLOCK;
            for (int32_t tile = tile_begin; tile < full_end; tile++) {
                for (int32_t r = r0; r < r1; r += 4) {
                    nn_block(t, r, r1 - r < 4 ? r1 - r : 4, tile * NN_COLUMN_TILE, k0, k1);
                }
            }
        }
    }
}

static sq_status run_nn(sq_threadpool *pool, const nn_task *task) {
    int32_t tiles = (task->out + NN_COLUMN_TILE - 1) / NN_COLUMN_TILE;
    sq_threadpool_run(pool, nn_task_run, (void *)task, task_count(pool, tiles));
    return SQ_OK;
}

sq_status sq_learn_matmul_nn_f32(sq_threadpool *pool, double *y, const double *x, const float *w, int32_t rows,
                                 int32_t in, int32_t out, sq_error *err) {
    (void)err;
    nn_task task = {y, x, w, NULL, rows, in, out};
    return run_nn(pool, &task);
}

sq_status sq_learn_matmul_nn_f64(sq_threadpool *pool, double *y, const double *x, const double *w, int32_t rows,
                                 int32_t in, int32_t out, sq_error *err) {
    (void)err;
    nn_task task = {y, x, NULL, w, rows, in, out};
    return run_nn(pool, &task);
}

/* ---- tn: c += aᵀ·b ---- */

typedef struct tn_task {
    double *c;
    const double *a;
    const double *b;
    int32_t rows;
    int32_t m;
    int32_t n;
} tn_task;

/* c[i][j..j+16) += Σ_{r0 <= r < r1} a[r][i]·b[r][j..j+16) for TN_ROW_TILE consecutive i. */
static void tn_block(const tn_task *t, int32_t i, int32_t j, int32_t r0, int32_t r1) {
    v8d acc[TN_ROW_TILE][2];
    for (int ii = 0; ii < TN_ROW_TILE; ii++) {
        for (int q = 0; q < 2; q++) {
            LOAD_V8D(acc[ii][q], t->c + (int64_t)(i + ii) * t->n + j + 8 * q);
        }
    }
    for (int32_t r = r0; r < r1; r++) {
        const double *ar = t->a + (int64_t)r * t->m + i;
        const double *br = t->b + (int64_t)r * t->n + j;
        v8d b0, b1;
        LOAD_V8D(b0, br);
        LOAD_V8D(b1, br + 8);
        for (int ii = 0; ii < TN_ROW_TILE; ii++) {
            acc[ii][0] += ar[ii] * b0;
            acc[ii][1] += ar[ii] * b1;
        }
    }
    for (int ii = 0; ii < TN_ROW_TILE; ii++) {
        for (int q = 0; q < 2; q++) {
            STORE_V8D(t->c + (int64_t)(i + ii) * t->n + j + 8 * q, acc[ii][q]);
        }
    }
}

static void tn_single(const tn_task *t, int32_t i, int32_t j) {
    double sum = t->c[(int64_t)i * t->n + j];
    for (int32_t r = 0; r < t->rows; r++) {
        sum += t->a[(int64_t)r * t->m + i] * t->b[(int64_t)r * t->n + j];
    }
    t->c[(int64_t)i * t->n + j] = sum;
}

/* Rows are cut into blocks, the outermost loop, so that a block of a and b stays in cache
 * while every tile of the task uses it. Each element of c still takes one running sum over
 * rows in increasing order. */
static void tn_task_run(void *context, int task_index, int n_tasks) {
    const tn_task *t = context;
    int32_t tiles = (t->m + TN_ROW_TILE - 1) / TN_ROW_TILE;
    int32_t tile_begin = (int32_t)((int64_t)tiles * task_index / n_tasks);
    int32_t tile_end = (int32_t)((int64_t)tiles * (task_index + 1) / n_tasks);
    int32_t full_columns = t->n - t->n % 16;

    for (int32_t r0 = 0; r0 < t->rows; r0 += TN_ROW_BLOCK) {
        int32_t r1 = t->rows - r0 < TN_ROW_BLOCK ? t->rows : r0 + TN_ROW_BLOCK;
        for (int32_t tile = tile_begin; tile < tile_end; tile++) {
            int32_t i = tile * TN_ROW_TILE;
            if (i + TN_ROW_TILE > t->m) {
                continue;
            }
            for (int32_t j = 0; j < full_columns; j += 16) {
                tn_block(t, i, j, r0, r1);
            }
        }
    }

    /* the columns past the last full block of 16, and the rows past the last full tile */
    for (int32_t tile = tile_begin; tile < tile_end; tile++) {
        int32_t i = tile * TN_ROW_TILE;
        if (i + TN_ROW_TILE <= t->m) {
            for (int32_t ii = i; ii < i + TN_ROW_TILE; ii++) {
                for (int32_t jj = full_columns; jj < t->n; jj++) {
                    tn_single(t, ii, jj);
                }
            }
        } else {
            for (int32_t ii = i; ii < t->m; ii++) {
                for (int32_t jj = 0; jj < t->n; jj++) {
                    tn_single(t, ii, jj);
                }
            }
        }
    }
}

void sq_learn_matmul_tn_accumulate(sq_threadpool *pool, double *c, const double *a, const double *b, int32_t rows,
                                   int32_t m, int32_t n) {
    tn_task task = {c, a, b, rows, m, n};
    int32_t tiles = (m + TN_ROW_TILE - 1) / TN_ROW_TILE;
    sq_threadpool_run(pool, tn_task_run, &task, task_count(pool, tiles));
}
