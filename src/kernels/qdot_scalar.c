/* Scalar reference of the integer kernels: one multiply-add per element, read through the
 * q4 layout rule of q4_layout.h. */
#include "kernels/matmul_i8.h"
#include "kernels/qdot.h"

int32_t sq_qdot_range_q4_u8(const uint8_t *weight_row, const uint8_t *act_row, int32_t begin, int32_t end) {
    int32_t sum = 0;
    for (int32_t c = begin; c < end; c++) {
        sum += sq_q4_get_weight(weight_row, c) * (int32_t)act_row[c];
    }
    return sum;
}

int32_t sq_qdot_range_q4_u4(const uint8_t *weight_row, const uint8_t *act_row, int32_t begin, int32_t end) {
    int32_t sum = 0;
    for (int32_t c = begin; c < end; c++) {
        sum += sq_q4_get_weight(weight_row, c) * sq_q4_get_nibble(act_row, c);
    }
    return sum;
}

typedef int32_t (*range_fn)(const uint8_t *weight_row, const uint8_t *act_row, int32_t begin, int32_t end);

static void run_scalar(const sq_qdot_args *p, range_fn range) {
    int32_t n_groups = p->cols / p->group;
    for (int32_t t = 0; t < p->batch; t++) {
        const uint8_t *act_row = p->acts + (size_t)t * p->act_stride;
        int32_t *out = p->out + (size_t)t * p->out_stride;
        for (int32_t r = 0; r < p->rows; r++) {
            const uint8_t *weight_row = p->weights + (size_t)r * p->weight_stride;
            for (int32_t g = 0; g < n_groups; g++) {
                out[(size_t)r * (size_t)n_groups + (size_t)g] =
                    range(weight_row, act_row, g * p->group, (g + 1) * p->group);
            }
        }
    }
}

void sq_qdot_q4_u8_scalar(const sq_qdot_args *args) {
    run_scalar(args, sq_qdot_range_q4_u8);
}

void sq_qdot_q4_u4_scalar(const sq_qdot_args *args) {
    run_scalar(args, sq_qdot_range_q4_u4);
}
