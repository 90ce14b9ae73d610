/* Forward hooks that quantize and rotate activations at the points SpinQuant specifies. */
#include "pipeline/fake_quant.h"

static void transform_rows(sq_vector_transform_fn fn, void *context, float *data, int32_t rows, int32_t cols,
                           int32_t width) {
    for (int32_t r = 0; r < rows; r++) {
        for (int32_t offset = 0; offset < cols; offset += width) {
            fn(context, data + (int64_t)r * cols + offset, width);
        }
    }
}

void sq_fake_quant_hook(void *context, sq_forward_point point, int32_t layer, float *data, int32_t rows,
                        int32_t cols) {
    sq_fake_quant *fq = context;
    (void)layer;
    switch (point) {
    case SQ_POINT_ATTN_INPUT:
    case SQ_POINT_MLP_INPUT:
        sq_quant_act_fake(data, rows, cols, &fq->act, NULL);
        break;
    case SQ_POINT_QUERY:
        if (fq->r3 != NULL) {
            transform_rows(fq->r3, fq->r3_context, data, rows, cols, fq->head_dim);
        }
        break;
    case SQ_POINT_KEY:
        if (fq->r3 != NULL) {
            transform_rows(fq->r3, fq->r3_context, data, rows, cols, fq->head_dim);
        }
        sq_quant_act_fake(data, rows, cols, &fq->kv, NULL);
        break;
    case SQ_POINT_VALUE:
        sq_quant_act_fake(data, rows, cols, &fq->kv, NULL);
        break;
    case SQ_POINT_ATTN_OUTPUT:
        sq_quant_act_fake(data, rows, cols, &fq->act_heads, NULL);
        break;
    case SQ_POINT_DOWN_INPUT:
        if (fq->r4 != NULL) {
            transform_rows(fq->r4, fq->r4_context, data, rows, cols, cols);
        }
        sq_quant_act_fake(data, rows, cols, &fq->act, NULL);
        break;
    case SQ_POINT_CLASSIFIER_INPUT:
    case SQ_POINT_COUNT:
        break;
    }
}

sq_status sq_fake_quant_init(sq_fake_quant *fq, const sq_config *config, int a_bits, int kv_bits, float a_clip,
                             float kv_clip, int a_symmetric, sq_error *err) {
    *fq = (sq_fake_quant){0};
    fq->head_dim = config->head_dim;
    fq->act = (sq_act_quant_params){a_bits, a_symmetric, a_clip, 0};
    fq->act_heads = (sq_act_quant_params){a_bits, a_symmetric, a_clip, config->head_dim};
    fq->kv = sq_kv_quant_params(kv_bits, kv_clip, config->head_dim);

    sq_status status = sq_act_quant_params_check(&fq->act, config->dim, err);
    if (status == SQ_OK) {
        status = sq_act_quant_params_check(&fq->act_heads, config->n_heads * config->head_dim, err);
    }
    if (status == SQ_OK) {
        status = sq_act_quant_params_check(&fq->kv, config->n_kv_heads * config->head_dim, err);
    }
    return status;
}
