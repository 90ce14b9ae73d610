/* The integer forward pass. Each block runs RMSNorm → quantized activations → q/k/v (int4
 * weights) → RoPE → R3 → quantized KV cache → attention → quantized per head → o_proj →
 * residual, then RMSNorm → quantized → gate/up → SwiGLU → R4 → quantized → down_proj →
 * residual. The classifier follows the final RMSNorm: int8 weights with the input quantized to
 * int16 per token, or fp16 weights with the fp32 input. The quantization points and the online transforms are those of the fake-quant
 * evaluator (pipeline/fake_quant.h). */
#include <math.h>
#include <string.h>
#include <time.h>

#include "forward/matmul.h"
#include "kernels/matmul_i8.h"
#include "runtime/rt_attention.h"
#include "runtime/rt_qmatmul.h"
#include "runtime/rt_session.h"
#include "spq/spq_half.h"

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Adds the time since *mark to *bucket when profiling and moves the mark. */
static void lap(sq_rt_session *s, double *mark, double *bucket) {
    if (s->profiling) {
        double now = now_seconds();
        *bucket += now - *mark;
        *mark = now;
    }
}

/* Quantizes x (n_tokens, cols) with the activation settings and groups of group elements,
 * summing codes per kernel_group for the kernels. */
static void quantize_input(sq_rt_session *s, const float *x, int32_t n_tokens, int32_t cols, int32_t group,
                           int32_t kernel_group) {
    const sq_spq_settings *st = &s->model->spq.settings;
    sq_rt_quant_params params = {st->a_bits, st->a_symmetric, st->a_clip, group};
    sq_rt_quantize_rows(x, n_tokens, cols, &params, kernel_group, &s->act);
}

static void products(sq_rt_session *s, int32_t n_tokens, const sq_rt_product *list, int n) {
    sq_rt_qmatmul(s->pool, s->model->kernels, &s->act, s->model->spq.settings.a_bits, n_tokens, list, n, s->dots);
}

/* Rotates each adjacent pair of every head, as the fp32 path does. */
static void apply_rope(const sq_rt_session *s, float *x, int32_t n_tokens, int32_t position, int32_t n_heads) {
    int32_t head_dim = s->model->spq.config.head_dim;
    int32_t half = head_dim / 2;
    int32_t width = n_heads * head_dim;
    for (int32_t b = 0; b < n_tokens; b++) {
        const float *cos_row = s->rope_cos + (int64_t)(position + b) * half;
        const float *sin_row = s->rope_sin + (int64_t)(position + b) * half;
        for (int32_t h = 0; h < n_heads; h++) {
            float *head = x + (int64_t)b * width + (int64_t)h * head_dim;
            for (int32_t i = 0; i < half; i++) {
                float x0 = head[2 * i];
                float x1 = head[2 * i + 1];
                head[2 * i] = x0 * cos_row[i] - x1 * sin_row[i];
                head[2 * i + 1] = x0 * sin_row[i] + x1 * cos_row[i];
            }
        }
    }
}

/* Applies plan (x <- M·x) to every width-sized piece of rows (rows, cols). */
static void transform_rows(sq_rt_session *s, const sq_hadamard_plan *plan, float *x, int32_t rows, int32_t cols,
                           int32_t width) {
    for (int64_t offset = 0; offset < (int64_t)rows * cols; offset += width) {
        sq_hadamard_plan_apply(plan, SQ_HADAMARD_APPLY_M, x + offset, s->hadamard_scratch, NULL);
    }
}

static sq_status check_batch(const sq_rt_session *s, const int32_t *tokens, int32_t n_tokens, int32_t position,
                             sq_error *err) {
    if (n_tokens < 1 || n_tokens > s->max_batch) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid batch of %d tokens, expected 1 to %d", n_tokens, s->max_batch);
    }
    if (position < 0 || position > s->capacity - n_tokens) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "positions %d..%lld exceed the context of %d tokens; shorten the prompt or the generation",
                            position, (long long)position + n_tokens - 1, s->capacity);
    }
    for (int32_t b = 0; b < n_tokens; b++) {
        if (tokens[b] < 0 || tokens[b] >= s->model->spq.config.vocab_size) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG, "token id %d at batch index %d is outside the vocabulary of %d",
                                tokens[b], b, s->model->spq.config.vocab_size);
        }
    }
    return SQ_OK;
}

static void embed(sq_rt_session *s, const int32_t *tokens, int32_t n_tokens) {
    const sq_rt_model *m = s->model;
    int32_t dim = m->spq.config.dim;
    for (int32_t b = 0; b < n_tokens; b++) {
        float *x = s->x + (int64_t)b * dim;
        if (m->embedding_f32 != NULL) {
            memcpy(x, m->embedding_f32 + (int64_t)tokens[b] * dim, (size_t)dim * sizeof(float));
            continue;
        }
        const int8_t *codes = (const int8_t *)m->spq.embedding.data + (int64_t)tokens[b] * dim;
        float scale = m->spq.embedding.scales[tokens[b]];
        for (int32_t i = 0; i < dim; i++) {
            x[i] = (float)codes[i] * scale;
        }
    }
}

static void layer_forward(sq_rt_session *s, int32_t l, int32_t n_tokens, int32_t position, double *mark) {
    const sq_rt_model *m = s->model;
    const sq_config *c = &m->spq.config;
    const sq_spq_layer *w = &m->spq.layers[l];
    const sq_rt_layer *r = &m->layers[l];
    sq_rt_profile *prof = &s->profile;
    int32_t dim = c->dim;
    int32_t q_dim = c->n_heads * c->head_dim;
    int32_t kv_dim = c->n_kv_heads * c->head_dim;
    int32_t hidden = c->hidden_dim;

    /* ---- attention: projections, RoPE, R3 ---- */
    sq_rmsnorm(s->xb, s->x, w->attn_norm, n_tokens, dim, c->norm_eps);
    lap(s, mark, &prof->other);
    quantize_input(s, s->xb, n_tokens, dim, dim, r->wq.kernel_group);
    sq_rt_product qkv[3] = {{&r->wq, s->q}, {&r->wk, s->k}, {&r->wv, s->v}};
    products(s, n_tokens, qkv, 3);
    lap(s, mark, &prof->matmul);
    apply_rope(s, s->q, n_tokens, position, c->n_heads);
    apply_rope(s, s->k, n_tokens, position, c->n_kv_heads);
    lap(s, mark, &prof->attention);
    if (m->r3 != NULL) {
        transform_rows(s, m->r3, s->q, n_tokens, q_dim, c->head_dim);
        transform_rows(s, m->r3, s->k, n_tokens, kv_dim, c->head_dim);
        lap(s, mark, &prof->hadamard);
    }

    /* ---- attention: cache and weights ---- */
    for (int32_t b = 0; b < n_tokens; b++) {
        sq_rt_kv_store(&s->kv, l, position + b, s->k + (int64_t)b * kv_dim, s->v + (int64_t)b * kv_dim);
    }
    sq_rt_attention(s, l, n_tokens, position);
    lap(s, mark, &prof->attention);

    /* ---- attention: output projection, activations quantized per head ---- */
    quantize_input(s, s->attn, n_tokens, q_dim, c->head_dim, r->wo.kernel_group);
    sq_rt_product o[1] = {{&r->wo, s->xb}};
    products(s, n_tokens, o, 1);
    lap(s, mark, &prof->matmul);
    for (int64_t i = 0; i < (int64_t)n_tokens * dim; i++) {
        s->x[i] += s->xb[i];
    }

    /* ---- MLP ---- */
    sq_rmsnorm(s->xb, s->x, w->ffn_norm, n_tokens, dim, c->norm_eps);
    lap(s, mark, &prof->other);
    quantize_input(s, s->xb, n_tokens, dim, dim, r->w_gate.kernel_group);
    sq_rt_product gate_up[2] = {{&r->w_gate, s->hb}, {&r->w_up, s->hb2}};
    products(s, n_tokens, gate_up, 2);
    lap(s, mark, &prof->matmul);
    for (int64_t i = 0; i < (int64_t)n_tokens * hidden; i++) {
        float gate = s->hb[i];
        s->hb[i] = gate / (1.0f + expf(-gate)) * s->hb2[i];
    }
    lap(s, mark, &prof->other);
    if (m->r4 != NULL) {
        transform_rows(s, m->r4, s->hb, n_tokens, hidden, hidden);
        lap(s, mark, &prof->hadamard);
    }
    quantize_input(s, s->hb, n_tokens, hidden, hidden, r->w_down.kernel_group);
    sq_rt_product down[1] = {{&r->w_down, s->xb}};
    products(s, n_tokens, down, 1);
    lap(s, mark, &prof->matmul);
    for (int64_t i = 0; i < (int64_t)n_tokens * dim; i++) {
        s->x[i] += s->xb[i];
    }
    lap(s, mark, &prof->other);
}

/* The classifier: an int8 table with the input in int16 codes, or an fp16 table (expanded to
 * fp32) with the fp32 input, optionally through the tied transform. */
static void logits_forward(sq_rt_session *s, int32_t n_tokens, sq_logits_mode mode, double *mark) {
    const sq_rt_model *m = s->model;
    const sq_config *c = &m->spq.config;
    int32_t first = mode == SQ_LOGITS_LAST ? n_tokens - 1 : 0;
    int32_t rows = n_tokens - first;
    sq_rmsnorm(s->xb, s->x + (int64_t)first * c->dim, m->spq.final_norm, rows, c->dim, c->norm_eps);
    lap(s, mark, &s->profile.other);

    const float *input = s->xb;
    const sq_spq_table *table = &m->spq.classifier;
    const float *table_f32 = m->classifier_f32;
    if (m->spq.classifier_kind == SQ_SPQ_CLASSIFIER_TIED_TRANSFORM) {
        sq_matmul_f32_parallel(s->pool, s->z, s->xb, m->spq.classifier_transform, rows, c->dim, c->dim);
        input = s->z;
        table = &m->spq.embedding;
        table_f32 = m->embedding_f32;
    }
    if (table->dtype == SQ_SPQ_DTYPE_I8) {
        sq_quantize_rows_i16(s->z_codes, s->z_scales, input, rows, c->dim);
        sq_matmul_i8_i16_parallel(s->pool, s->logits, s->z_codes, s->z_scales, table->data, table->scales, rows, c->dim,
                                  c->vocab_size);
    } else {
        sq_matmul_f32_parallel(s->pool, s->logits, input, table_f32, rows, c->dim, c->vocab_size);
    }
    lap(s, mark, &s->profile.classifier);
}

sq_status sq_rt_forward(sq_rt_session *s, const int32_t *tokens, int32_t n_tokens, int32_t position,
                        sq_logits_mode mode, sq_error *err) {
    sq_status status = check_batch(s, tokens, n_tokens, position, err);
    if (status != SQ_OK) {
        return status;
    }
    double mark = s->profiling ? now_seconds() : 0.0;
    embed(s, tokens, n_tokens);
    lap(s, &mark, &s->profile.other);
    for (int32_t l = 0; l < s->model->spq.config.n_layers; l++) {
        layer_forward(s, l, n_tokens, position, &mark);
    }
    if (mode != SQ_LOGITS_NONE) {
        logits_forward(s, n_tokens, mode, &mark);
    }
    return SQ_OK;
}
