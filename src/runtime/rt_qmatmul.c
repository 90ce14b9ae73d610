/* Integer matrix products: kernels plus the scale and zero-point epilogue. */
#include "runtime/rt_qmatmul.h"

#include <stddef.h>

/* Rows per unit of work: enough to amortize a task, few enough to balance the threads. */
#define ROW_CHUNK 16
#define MAX_PRODUCTS 3

typedef struct qmatmul_task {
    const sq_qdot_kernels *kernels;
    const sq_rt_act *act;
    int act_bits;
    int32_t batch;
    const sq_rt_product *products;
    int n_products;
    int32_t *dots[MAX_PRODUCTS];   /* each product's (batch, rows · n_kernel_groups) region */
    int32_t chunk_begin[MAX_PRODUCTS + 1]; /* first global chunk of each product */
} qmatmul_task;

/* Turns the dots of rows [r0, r1) of one product into fp32 outputs. */
static void epilogue(const qmatmul_task *t, const sq_rt_product *p, const int32_t *dots, int32_t r0, int32_t r1) {
    const sq_rt_matrix *m = p->matrix;
    const sq_spq_qmatrix *w = m->weights;
    int32_t rows = w->rows;
    int32_t n_groups = m->n_kernel_groups;
    int32_t weight_groups = w->cols / w->group;
    int32_t act_groups = t->act->groups_per_token;
    int32_t groups_per_weight_scale = w->group / m->kernel_group;
    int32_t groups_per_act_scale = m->act_group / m->kernel_group;
    for (int32_t b = 0; b < t->batch; b++) {
        const float *act_scales = t->act->scales + (size_t)b * (size_t)act_groups;
        const int32_t *zeros = t->act->zeros + (size_t)b * (size_t)act_groups;
        float *y = p->y + (size_t)b * (size_t)rows;
        for (int32_t r = r0; r < r1; r++) {
            const int32_t *d = dots + ((size_t)b * (size_t)rows + (size_t)r) * (size_t)n_groups;
            const int32_t *weight_sums = m->weight_sums + (size_t)r * (size_t)n_groups;
            const float *weight_scales = w->scales + (size_t)r * (size_t)weight_groups;
            if (n_groups == 1) {
                y[r] = weight_scales[0] * act_scales[0] * (float)(d[0] - zeros[0] * weight_sums[0]);
                continue;
            }
            /* Kernel group g lies in weight group g / groups_per_weight_scale and activation
             * group g / groups_per_act_scale, tracked with counters instead of divisions. */
            float sum = 0.0f;
            int32_t wg = 0, ag = 0, w_count = 0, a_count = 0;
            for (int32_t g = 0; g < n_groups; g++) {
                sum += weight_scales[wg] * act_scales[ag] * (float)(d[g] - zeros[ag] * weight_sums[g]);
                if (++w_count == groups_per_weight_scale) {
                    w_count = 0;
                    wg++;
                }
                if (++a_count == groups_per_act_scale) {
                    a_count = 0;
                    ag++;
                }
            }
            y[r] = sum;
        }
    }
}

static void run_chunk(const qmatmul_task *t, int32_t chunk) {
    int j = 0;
    while (chunk >= t->chunk_begin[j + 1]) {
        j++;
    }
    const sq_rt_product *p = &t->products[j];
    const sq_rt_matrix *m = p->matrix;
    const sq_spq_qmatrix *w = m->weights;
    int32_t r0 = (chunk - t->chunk_begin[j]) * ROW_CHUNK;
    int32_t r1 = r0 + ROW_CHUNK < w->rows ? r0 + ROW_CHUNK : w->rows;
    size_t per_token = (size_t)w->rows * (size_t)m->n_kernel_groups;

    sq_qdot_args args;
    args.out = t->dots[j] + (size_t)r0 * (size_t)m->n_kernel_groups;
    args.out_stride = per_token;
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
    epilogue(t, p, t->dots[j], r0, r1);
}

static void qmatmul_task_run(void *context, int task_index, int n_tasks) {
    const qmatmul_task *t = context;
    int32_t total = t->chunk_begin[t->n_products];
    int32_t begin = (int32_t)((int64_t)total * task_index / n_tasks);
    int32_t end = (int32_t)((int64_t)total * (task_index + 1) / n_tasks);
    for (int32_t chunk = begin; chunk < end; chunk++) {
        run_chunk(t, chunk);
    }
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
    int32_t *next = dots;
    for (int j = 0; j < n_products; j++) {
        const sq_rt_matrix *m = products[j].matrix;
        t.dots[j] = next;
        next += (size_t)batch * (size_t)m->weights->rows * (size_t)m->n_kernel_groups;
        t.chunk_begin[j + 1] = t.chunk_begin[j] + (m->weights->rows + ROW_CHUNK - 1) / ROW_CHUNK;
    }
    int32_t total = t.chunk_begin[n_products];
    int n_tasks = 4 * sq_threadpool_size(pool);
    if (n_tasks > total) {
        n_tasks = total;
    }
    sq_threadpool_run(pool, qmatmul_task_run, &t, n_tasks);
}
