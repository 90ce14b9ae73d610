/* Norm fusion and the weight side of R1, R2 and R4. */
#include "rotation/fuse.h"

#include <stdlib.h>
#include <string.h>

#include "forward/matmul.h"

/* Scales column j of w (rows, cols) by gain[j]. */
static void scale_columns(float *w, const float *gain, int32_t rows, int32_t cols) {
    for (int32_t r = 0; r < rows; r++) {
        float *row = w + (int64_t)r * cols;
        for (int32_t j = 0; j < cols; j++) {
            row[j] *= gain[j];
        }
    }
}

static void set_ones(float *x, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        x[i] = 1.0f;
    }
}

sq_status sq_rotation_fuse_norms(sq_model *model, sq_error *err) {
    sq_status status = sq_model_untie_classifier(model, err);
    if (status != SQ_OK) {
        return status;
    }
    const sq_config *c = &model->config;
    int32_t q_dim = c->n_heads * c->head_dim;
    int32_t kv_dim = c->n_kv_heads * c->head_dim;
    for (int32_t l = 0; l < c->n_layers; l++) {
        sq_layer_weights *w = &model->layers[l];
        scale_columns(w->wq, w->attn_norm, q_dim, c->dim);
        scale_columns(w->wk, w->attn_norm, kv_dim, c->dim);
        scale_columns(w->wv, w->attn_norm, kv_dim, c->dim);
        set_ones(w->attn_norm, c->dim);
        scale_columns(w->w_gate, w->ffn_norm, c->hidden_dim, c->dim);
        scale_columns(w->w_up, w->ffn_norm, c->hidden_dim, c->dim);
        set_ones(w->ffn_norm, c->dim);
    }
    scale_columns(model->classifier, model->final_norm, c->vocab_size, c->dim);
    set_ones(model->final_norm, c->dim);
    return SQ_OK;
}

int sq_rotation_norms_fused(const sq_model *model) {
    const sq_config *c = &model->config;
    for (int32_t i = 0; i < c->dim; i++) {
        if (model->final_norm[i] != 1.0f) {
            return 0;
        }
        for (int32_t l = 0; l < c->n_layers; l++) {
            if (model->layers[l].attn_norm[i] != 1.0f || model->layers[l].ffn_norm[i] != 1.0f) {
                return 0;
            }
        }
    }
    return !model->tied_classifier;
}

static void transpose(float *dst, const float *src, int32_t rows, int32_t cols) {
    for (int32_t r = 0; r < rows; r++) {
        for (int32_t c = 0; c < cols; c++) {
            dst[(int64_t)c * rows + r] = src[(int64_t)r * cols + c];
        }
    }
}

/* w (rows, n) ← w·R, given rt = Rᵀ (n, n); scratch holds rows*n floats. */
static void multiply_right(float *w, const float *rt, int32_t rows, int32_t n, float *scratch, sq_threadpool *pool) {
    sq_matmul_f32_parallel(pool, scratch, w, rt, rows, n, n);
    memcpy(w, scratch, (size_t)rows * (size_t)n * sizeof(float));
}

/* w (n, cols) ← Rᵀ·w = (wᵀ·R)ᵀ, given rt = Rᵀ; scratch holds 2*n*cols floats. */
static void multiply_left_transposed(float *w, const float *rt, int32_t n, int32_t cols, float *scratch,
                                     sq_threadpool *pool) {
    float *wt = scratch;
    float *product = scratch + (int64_t)n * cols;
    transpose(wt, w, n, cols);
    sq_matmul_f32_parallel(pool, product, wt, rt, cols, n, n);
    transpose(w, product, cols, n);
}

sq_status sq_rotation_apply_r1(sq_model *model, const float *r1, sq_threadpool *pool, sq_error *err) {
    const sq_config *c = &model->config;
    if (model->tied_classifier) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "R1 needs an untied classifier; fuse the norms first");
    }
    int32_t dim = c->dim;
    int32_t q_dim = c->n_heads * c->head_dim;
    int32_t kv_dim = c->n_kv_heads * c->head_dim;
    int32_t widest = c->vocab_size;
    widest = widest > c->hidden_dim ? widest : c->hidden_dim;
    widest = widest > q_dim ? widest : q_dim;

    float *rt = malloc((size_t)dim * (size_t)dim * sizeof(float));
    float *scratch = malloc(2 * (size_t)widest * (size_t)dim * sizeof(float));
    if (rt == NULL || scratch == NULL) {
        free(rt);
        free(scratch);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the scratch space for R1 (%d x %d)", widest, dim);
    }
    transpose(rt, r1, dim, dim);

    multiply_right(model->token_embedding, rt, c->vocab_size, dim, scratch, pool);
    multiply_right(model->classifier, rt, c->vocab_size, dim, scratch, pool);
    for (int32_t l = 0; l < c->n_layers; l++) {
        sq_layer_weights *w = &model->layers[l];
        multiply_right(w->wq, rt, q_dim, dim, scratch, pool);
        multiply_right(w->wk, rt, kv_dim, dim, scratch, pool);
        multiply_right(w->wv, rt, kv_dim, dim, scratch, pool);
        multiply_right(w->w_gate, rt, c->hidden_dim, dim, scratch, pool);
        multiply_right(w->w_up, rt, c->hidden_dim, dim, scratch, pool);
        multiply_left_transposed(w->wo, rt, dim, q_dim, scratch, pool);
        multiply_left_transposed(w->w_down, rt, dim, c->hidden_dim, scratch, pool);
    }
    free(rt);
    free(scratch);
    return SQ_OK;
}

sq_status sq_rotation_apply_r2(sq_model *model, int32_t layer, const float *r2, sq_error *err) {
    const sq_config *c = &model->config;
    if (layer < 0 || layer >= c->n_layers) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid layer %d, expected 0 to %d", layer, c->n_layers - 1);
    }
    int32_t hd = c->head_dim;
    int32_t q_dim = c->n_heads * hd;
    sq_layer_weights *w = &model->layers[layer];
    float *column = malloc((size_t)hd * sizeof(float));
    if (column == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %d floats for R2", hd);
    }

    /* v_proj: rows h*hd..h*hd+hd-1 of each KV head become R2ᵀ·W_head, column by column. */
    for (int32_t h = 0; h < c->n_kv_heads; h++) {
        float *head = w->wv + (int64_t)h * hd * c->dim;
        for (int32_t j = 0; j < c->dim; j++) {
            for (int32_t i = 0; i < hd; i++) {
                float sum = 0.0f;
                for (int32_t k = 0; k < hd; k++) {
                    sum += r2[(int64_t)k * hd + i] * head[(int64_t)k * c->dim + j];
                }
                column[i] = sum;
            }
            for (int32_t i = 0; i < hd; i++) {
                head[(int64_t)i * c->dim + j] = column[i];
            }
        }
    }

    /* o_proj: the hd columns of each query head become W_head·R2, row by row. */
    for (int32_t row = 0; row < c->dim; row++) {
        for (int32_t h = 0; h < c->n_heads; h++) {
            float *segment = w->wo + (int64_t)row * q_dim + (int64_t)h * hd;
            for (int32_t j = 0; j < hd; j++) {
                float sum = 0.0f;
                for (int32_t k = 0; k < hd; k++) {
                    sum += segment[k] * r2[(int64_t)k * hd + j];
                }
                column[j] = sum;
            }
            memcpy(segment, column, (size_t)hd * sizeof(float));
        }
    }
    free(column);
    return SQ_OK;
}

void sq_rotation_apply_r4(sq_model *model, sq_vector_transform_fn transform, void *context) {
    const sq_config *c = &model->config;
    for (int32_t l = 0; l < c->n_layers; l++) {
        float *w_down = model->layers[l].w_down;
        for (int32_t row = 0; row < c->dim; row++) {
            transform(context, w_down + (int64_t)row * c->hidden_dim, c->hidden_dim);
        }
    }
}
