/* Integer matrix products: kernels plus the scale and zero-point epilogue. */
#include "runtime/rt_qmatmul.h"

#include <stddef.h>

/* Rows per unit of work: enough to amortize a task, few enough to balance the threads. A
 * multiple of 4, the row tile of the SIMD kernels. */
#define ROW_CHUNK 16
#define TASKS_PER_THREAD 4
#define MAX_PRODUCTS 3

typedef struct qmatmul_task {
    const sq_qdot_kernels *kernels;
    const sq_rt_act *act;
    int act_bits;
    int32_t batch;
    const sq_rt_product *products;
    int n_products;
    int32_t chunk_begin[MAX_PRODUCTS + 1]; /* first global chunk of each product */
    int32_t *dots;             /* (n_tasks, dots_per_task) scratch */
    size_t dots_per_task;
} qmatmul_task;

/* Σ scales[g / per_scale] · dots[g] over kernel groups [begin, end), in four interleaved partial
 * sums (group g goes to sum (g - begin) mod 4) added pairwise. The sums are separate variables,
 * so that they stay in registers. */
static float scaled_dots(const float *scales, const int32_t *dots, int32_t begin, int32_t end, int32_t per_scale) {
    float p0 = 0.0f, p1 = 0.0f, p2 = 0.0f, p3 = 0.0f;
    int32_t g = begin;
    if (per_scale == 1) {
        for (; g + 4 <= end; g += 4) {
            p0 += scales[g] * (float)dots[g];
            p1 += scales[g + 1] * (float)dots[g + 1];
            p2 += scales[g + 2] * (float)dots[g + 2];
            p3 += scales[g + 3] * (float)dots[g + 3];
        }
    } else {
        for (; g + 4 <= end; g += 4) {
            p0 += scales[g / per_scale] * (float)dots[g];
            p1 += scales[(g + 1) / per_scale] * (float)dots[g + 1];
            p2 += scales[(g + 2) / per_scale] * (float)dots[g + 2];
            p3 += scales[(g + 3) / per_scale] * (float)dots[g + 3];
        }
    }
    if (g < end) {
        p0 += scales[g / per_scale] * (float)dots[g];
    }
    if (g + 1 < end) {
        p1 += scales[(g + 1) / per_scale] * (float)dots[g + 1];
    }
    if (g + 2 < end) {
        p2 += scales[(g + 2) / per_scale] * (float)dots[g + 2];
    }
    return (p0 + p1) + (p2 + p3);
}

/* Turns the sums dots (batch, r1 - r0, n_kernel_groups) of rows [r0, r1) of one product into
 * fp32 outputs. With activation scale s_a and zero point z per activation group, a row's output
 * is Σ over activation groups of s_a · (Σ_g s_w · dot - z · zero_term). The zero term is the
 * same for every token, so the model computes it once (sq_rt_matrix.zero_terms). */
static void epilogue(const qmatmul_task *t, const sq_rt_product *p, const int32_t *dots, int32_t r0, int32_t r1) {
    const sq_rt_matrix *m = p->matrix;
    const sq_spq_qmatrix *w = m->weights;
    int32_t rows = w->rows;
    int32_t n_rows = r1 - r0;
    int32_t n_groups = m->n_kernel_groups;
    int32_t weight_groups = w->cols / w->group;
    int32_t act_groups = t->act->groups_per_token;
    int32_t per_act = m->act_group / m->kernel_group;
    int32_t per_scale = w->group / m->kernel_group;
    for (int32_t b = 0; b < t->batch; b++) {
        const float *act_scales = t->act->scales + (size_t)b * (size_t)act_groups;
        const int32_t *zeros = t->act->zeros + (size_t)b * (size_t)act_groups;
        const int32_t *token_dots = dots + (size_t)b * (size_t)n_rows * (size_t)n_groups;
        float *y = p->y + (size_t)b * (size_t)rows;
        if (n_groups == 1) {
            for (int32_t r = r0; r < r1; r++) {
                const int32_t *d = token_dots + (size_t)(r - r0);
                y[r] = w->scales[(size_t)r * (size_t)weight_groups] * act_scales[0] *
                       (float)(d[0] - zeros[0] * m->weight_sums[r]);
            }
            continue;
        }
        for (int32_t r = r0; r < r1; r++) {
            const int32_t *d = token_dots + (size_t)(r - r0) * (size_t)n_groups;
            const float *weight_scales = w->scales + (size_t)r * (size_t)weight_groups;
            const float *zero_terms = m->zero_terms + (size_t)r * (size_t)act_groups;
            float sum = 0.0f;
            for (int32_t a = 0; a < act_groups; a++) {
                float scaled = scaled_dots(weight_scales, d, a * per_act, (a + 1) * per_act, per_scale);
                sum += act_scales[a] * (scaled - (float)zeros[a] * zero_terms[a]);
            }
            y[r] = sum;
        }
    }
}

/* Runs global chunk number chunk with the task's scratch dots. */
static void run_chunk(const qmatmul_task *t, int32_t chunk, int32_t *dots) {
    int j = 0;
    while (chunk >= t->chunk_begin[j + 1]) {
        j++;
    }
    const sq_rt_product *p = &t->products[j];
    const sq_rt_matrix *m = p->matrix;
    const sq_spq_qmatrix *w = m->weights;
    int32_t r0 = (chunk - t->chunk_begin[j]) * ROW_CHUNK;
    int32_t r1 = r0 + ROW_CHUNK < w->rows ? r0 + ROW_CHUNK : w->rows;

    sq_qdot_args args;
    args.out = dots;
    args.out_stride = (size_t)(r1 - r0) * (size_t)m->n_kernel_groups;
    args.weights = w->codes + (size_t)r0 * w->row_stride;
    args.weight_stride = w->row_stride;
    args.acts = t->act->codes;
    args.act_stride = t->act->stride;
    args.weight_sums = m->weight_sums + (size_t)r0 * (size_t)m->n_kernel_groups;
    args.act_sums = t->act->sums;
    args.batch = t->batch;
    args.rows = r1 - r0;
    args.cols = w->cols;
    args.group = m->kernel_group;
    (t->act_bits > 4 ? t->kernels->q4_u8 : t->kernels->q4_u4)(&args);
    epilogue(t, p, dots, r0, r1);
}

static void qmatmul_task_run(void *context, int task_index, int n_tasks) {
    const qmatmul_task *t = context;
    int32_t total = t->chunk_begin[t->n_products];
    int32_t begin = (int32_t)((int64_t)total * task_index / n_tasks);
    int32_t end = (int32_t)((int64_t)total * (task_index + 1) / n_tasks);
    int32_t *dots = t->dots + (size_t)task_index * t->dots_per_task;
    for (int32_t chunk = begin; chunk < end; chunk++) {
        run_chunk(t, chunk, dots);
    }
}

size_t sq_rt_qmatmul_scratch_count(const sq_threadpool *pool, int32_t batch, int32_t max_kernel_groups) {
    return (size_t)TASKS_PER_THREAD * (size_t)sq_threadpool_size(pool) * (size_t)batch * ROW_CHUNK *
           (size_t)max_kernel_groups;
}

void sq_rt_qmatmul(sq_threadpool *pool, const sq_qdot_kernels *kernels, const sq_rt_act *act, int act_bits,
                   int32_t batch, const sq_rt_product *products, int n_products, int32_t *dots) {
    qmatmul_task t;
    t.kernels = kernels;
    t.act = act;
    t.act_bits = act_bits;
    t.batch = batch;
    t.products = products;
    t.n_products = n_products;
    t.chunk_begin[0] = 0;
    int32_t max_groups = 1;
    for (int j = 0; j < n_products; j++) {
        const sq_rt_matrix *m = products[j].matrix;
        t.chunk_begin[j + 1] = t.chunk_begin[j] + (m->weights->rows + ROW_CHUNK - 1) / ROW_CHUNK;
        max_groups = m->n_kernel_groups > max_groups ? m->n_kernel_groups : max_groups;
    }
    t.dots = dots;
    t.dots_per_task = (size_t)batch * ROW_CHUNK * (size_t)max_groups;
    int32_t total = t.chunk_begin[n_products];
    int n_tasks = TASKS_PER_THREAD * sq_threadpool_size(pool);
    if (n_tasks > total) {
        n_tasks = total;
    }
    sq_threadpool_run(pool, qmatmul_task_run, &t, n_tasks);
}
