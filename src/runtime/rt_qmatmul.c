/* Integer matrix products: kernels plus the scale and zero-point epilogue. */
#include "runtime/rt_qmatmul.h"

#include <stddef.h>

/* Rows per unit of work: enough to amortize a task, few enough to balance the threads. A
 * multiple of 4, the row tile of the SIMD kernels. */
#define ROW_CHUNK 16
#define TASKS_PER_THREAD 4
#define MAX_PRODUCTS 3
/* Kernel groups per step of the epilogue, which keeps ROW_CHUNK × GROUP_BLOCK fp32 terms on the
 * stack. */
#define GROUP_BLOCK 64

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

/* Adds the groups [g0, g0 + n_block) of one token to the running sums of rows [r0, r0 + n_rows).
 * A term is weight_scale · act_scale · (dot - zero · weight_sum), in this order of operations.
 * The terms of all groups of a row are computed first, in a loop over contiguous memory that
 * compilers vectorize. They are then added to their row's sum in group order, so every row gets
 * the same sum as when it adds one group at a time. */
static void add_group_block(const sq_rt_matrix *m, const float *group_act_scales, const int32_t *group_zeros,
                            const int32_t *token_dots, int32_t r0, int32_t n_rows, int32_t g0, int32_t n_block,
                            float *sums) {
    const sq_spq_qmatrix *w = m->weights;
    int32_t n_groups = m->n_kernel_groups;
    int32_t weight_groups = w->cols / w->group;
    int32_t groups_per_weight_scale = w->group / m->kernel_group;
    float terms[ROW_CHUNK][GROUP_BLOCK];
    for (int32_t k = 0; k < n_rows; k++) {
        size_t r = (size_t)(r0 + k);
        const float *weight_scales = w->scales + r * (size_t)weight_groups;
        const int32_t *weight_sums = m->weight_sums + r * (size_t)n_groups + (size_t)g0;
        const int32_t *d = token_dots + (size_t)k * (size_t)n_groups + (size_t)g0;
        float *term = terms[k];
        if (groups_per_weight_scale == 1) {
            for (int32_t i = 0; i < n_block; i++) {
                term[i] = weight_scales[g0 + i] * group_act_scales[i] *
                          (float)(d[i] - group_zeros[i] * weight_sums[i]);
            }
        } else {
            for (int32_t i = 0; i < n_block; i++) {
                term[i] = weight_scales[(g0 + i) / groups_per_weight_scale] * group_act_scales[i] *
                          (float)(d[i] - group_zeros[i] * weight_sums[i]);
            }
        }
    }
    for (int32_t i = 0; i < n_block; i++) {
        for (int32_t k = 0; k < n_rows; k++) {
            sums[k] += terms[k][i];
        }
    }
}

/* Turns the sums dots (batch, r1 - r0, n_kernel_groups) of rows [r0, r1) of one product into
 * fp32 outputs. */
static void epilogue(const qmatmul_task *t, const sq_rt_product *p, const int32_t *dots, int32_t r0, int32_t r1) {
    const sq_rt_matrix *m = p->matrix;
    const sq_spq_qmatrix *w = m->weights;
    int32_t rows = w->rows;
    int32_t n_rows = r1 - r0;
    int32_t n_groups = m->n_kernel_groups;
    int32_t weight_groups = w->cols / w->group;
    int32_t act_groups = t->act->groups_per_token;
    int32_t groups_per_act_scale = m->act_group / m->kernel_group;
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
        float sums[ROW_CHUNK];
        for (int32_t k = 0; k < n_rows; k++) {
            sums[k] = 0.0f;
        }
        /* Kernel group g lies in activation group g / groups_per_act_scale, tracked with a
         * counter instead of divisions. */
        int32_t ag = 0, a_count = 0;
        for (int32_t g0 = 0; g0 < n_groups; g0 += GROUP_BLOCK) {
            int32_t n_block = n_groups - g0 < GROUP_BLOCK ? n_groups - g0 : GROUP_BLOCK;
            float group_act_scales[GROUP_BLOCK];
            int32_t group_zeros[GROUP_BLOCK];
            for (int32_t i = 0; i < n_block; i++) {
                group_act_scales[i] = act_scales[ag];
                group_zeros[i] = zeros[ag];
                if (++a_count == groups_per_act_scale) {
                    a_count = 0;
                    ag++;
                }
            }
            add_group_block(m, group_act_scales, group_zeros, token_dots, r0, n_rows, g0, n_block, sums);
        }
        for (int32_t k = 0; k < n_rows; k++) {
            y[r0 + k] = sums[k];
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
