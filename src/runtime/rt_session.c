/* Creation and release of runtime sessions, and the windowed perplexity over them. */
#include "runtime/rt_session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/q4_layout.h"
#include "runtime/rt_attention.h"
#include "runtime/rt_qmatmul.h"

static sq_status alloc_array(void **out, size_t count, size_t element, const char *name, size_t *total, sq_error *err) {
    *out = calloc(count > 0 ? count : 1, element);
    if (*out == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %zu bytes for the session's %s", count * element, name);
    }
    *total += count * element;
    return SQ_OK;
}

sq_status sq_rt_session_create(const sq_rt_model *model, int32_t capacity, int32_t max_batch, sq_threadpool *pool,
                               sq_rt_session **out, sq_error *err) {
    const sq_config *c = &model->spq.config;
    *out = NULL;
    if (c->n_heads / c->n_kv_heads > SQ_RT_ATTENTION_MAX_GROUP) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "%d query heads per KV head, more than the supported %d",
                            c->n_heads / c->n_kv_heads, SQ_RT_ATTENTION_MAX_GROUP);
    }
    if (capacity <= 0 || max_batch <= 0 || capacity > c->context_length) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid session size: capacity %d, batch %d; expected 1 to %d positions and a positive batch",
                            capacity, max_batch, c->context_length);
    }
    sq_rt_session *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the session");
    }
    s->model = model;
    s->pool = pool;
    s->capacity = capacity;
    s->max_batch = max_batch;

    size_t batch = (size_t)max_batch;
    size_t dim = (size_t)c->dim;
    size_t q_dim = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t kv_dim = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    size_t hidden = (size_t)c->hidden_dim;
    size_t widest = dim > q_dim ? dim : q_dim;
    widest = widest > hidden ? widest : hidden;
    size_t half = (size_t)c->head_dim / 2;
    s->attention_tasks = 16 * sq_threadpool_size(pool);

    /* The kernel sums' scratch, sized for the matrix with the most kernel groups per row. */
    int32_t max_kernel_groups = 1;
    for (int32_t l = 0; l < c->n_layers; l++) {
        const sq_rt_layer *r = &model->layers[l];
        const sq_rt_matrix *matrices[] = {&r->wq, &r->wk, &r->wv, &r->wo, &r->w_gate, &r->w_up, &r->w_down};
        for (size_t i = 0; i < sizeof(matrices) / sizeof(matrices[0]); i++) {
            if (matrices[i]->n_kernel_groups > max_kernel_groups) {
                max_kernel_groups = matrices[i]->n_kernel_groups;
            }
        }
    }
    size_t dots = sq_rt_qmatmul_scratch_count(pool, max_batch, max_kernel_groups);
    size_t scratch = 1;
    if (model->r3 != NULL) {
        scratch += sq_hadamard_plan_scratch_floats(model->r3) + sq_hadamard_plan_scratch_floats(model->r4);
    }
    s->act.stride = widest > sq_q4_row_bytes((int64_t)widest) ? widest : sq_q4_row_bytes((int64_t)widest);

    size_t total = 0;
    sq_status status;
    if ((status = alloc_array((void **)&s->x, batch * dim, sizeof(float), "residual stream", &total, err)) ||
        (status = alloc_array((void **)&s->xb, batch * dim, sizeof(float), "normalized stream", &total, err)) ||
        (status = alloc_array((void **)&s->q, batch * q_dim, sizeof(float), "queries", &total, err)) ||
        (status = alloc_array((void **)&s->k, batch * kv_dim, sizeof(float), "keys", &total, err)) ||
        (status = alloc_array((void **)&s->v, batch * kv_dim, sizeof(float), "values", &total, err)) ||
        (status = alloc_array((void **)&s->attn, batch * q_dim, sizeof(float), "attention output", &total, err)) ||
        (status = alloc_array((void **)&s->hb, batch * hidden, sizeof(float), "MLP gate", &total, err)) ||
        (status = alloc_array((void **)&s->hb2, batch * hidden, sizeof(float), "MLP up", &total, err)) ||
        (status = alloc_array((void **)&s->z, batch * dim, sizeof(float), "classifier input", &total, err)) ||
        (status = alloc_array((void **)&s->z_codes, batch * dim, sizeof(int16_t), "classifier input codes", &total,
                              err)) ||
        (status = alloc_array((void **)&s->z_scales, batch, sizeof(float), "classifier input scales", &total, err)) ||
        (status = alloc_array((void **)&s->scores, batch * (size_t)c->n_heads * (size_t)capacity, sizeof(float),
                              "attention scores", &total, err)) ||
        (status = alloc_array((void **)&s->logits, batch * (size_t)c->vocab_size, sizeof(float), "logits", &total, err)) ||
        (status = alloc_array((void **)&s->rope_cos, (size_t)capacity * half, sizeof(float), "RoPE table", &total, err)) ||
        (status = alloc_array((void **)&s->rope_sin, (size_t)capacity * half, sizeof(float), "RoPE table", &total, err)) ||
        (status = alloc_array((void **)&s->head_scratch, (size_t)s->attention_tasks * SQ_RT_ATTENTION_TILE * (size_t)c->head_dim,
                              sizeof(float), "attention scratch", &total, err)) ||
        (status = alloc_array((void **)&s->hadamard_scratch, scratch, sizeof(float), "Hadamard scratch", &total, err)) ||
        (status = alloc_array((void **)&s->act.codes, batch * s->act.stride, 1, "activation codes", &total, err)) ||
        (status = alloc_array((void **)&s->act.scales, batch * widest, sizeof(float), "activation scales", &total, err)) ||
        (status = alloc_array((void **)&s->act.zeros, batch * widest, sizeof(int32_t), "activation zero points", &total,
                              err)) ||
        (status = alloc_array((void **)&s->act.sums, batch * widest, sizeof(int32_t), "activation sums", &total, err)) ||
        (status = alloc_array((void **)&s->dots, dots, sizeof(int32_t), "integer sums", &total, err)) ||
        (status = sq_rt_kv_cache_init(&s->kv, c, model->spq.settings.kv_bits, model->spq.settings.kv_clip, capacity,
                                      err))) {
        sq_rt_session_free(s);
        return status;
    }
    s->allocated_bytes = total + s->kv.bytes;

    /* Pair i of a head turns by position · theta^(-2i / head_dim), as in the fp32 path. */
    for (int32_t pos = 0; pos < capacity; pos++) {
        for (size_t i = 0; i < half; i++) {
            double frequency = pow((double)c->rope_theta, -2.0 * (double)i / (double)c->head_dim);
            double angle = (double)pos * frequency;
            s->rope_cos[(size_t)pos * half + i] = (float)cos(angle);
            s->rope_sin[(size_t)pos * half + i] = (float)sin(angle);
        }
    }
    *out = s;
    return SQ_OK;
}

void sq_rt_session_free(sq_rt_session *s) {
    if (s == NULL) {
        return;
    }
    free(s->x);
    free(s->xb);
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->attn);
    free(s->hb);
    free(s->hb2);
    free(s->z);
    free(s->z_codes);
    free(s->z_scales);
    free(s->scores);
    free(s->logits);
    free(s->rope_cos);
    free(s->rope_sin);
    free(s->head_scratch);
    free(s->hadamard_scratch);
    free(s->act.codes);
    free(s->act.scales);
    free(s->act.zeros);
    free(s->act.sums);
    free(s->dots);
    sq_rt_kv_cache_free(&s->kv);
    free(s);
}

size_t sq_rt_session_bytes(const sq_rt_session *s) {
    return s->allocated_bytes;
}

static sq_status forward_all_logits(void *context, const int32_t *tokens, int32_t batch, int32_t start,
                                    sq_error *err) {
    return sq_rt_forward(context, tokens, batch, start, SQ_LOGITS_ALL, err);
}

sq_status sq_rt_perplexity(sq_rt_session *s, const int32_t *tokens, size_t n_tokens, int32_t window,
                           int64_t max_windows, sq_perplexity_progress_fn progress, void *user_data,
                           sq_perplexity_result *result, sq_error *err) {
    sq_perplexity_model model = {
        .context = s,
        .forward = forward_all_logits,
        .logits = (const float *const *)&s->logits,
        .vocab_size = s->model->spq.config.vocab_size,
        .capacity = s->capacity,
        .max_batch = s->max_batch,
        .capacity_owner = "session",
    };
    return sq_perplexity_run(&model, tokens, n_tokens, window, max_windows, progress, user_data, result, err);
}
