/* fp32 forward pass: embedding, then per block RMSNorm → q/k/v → RoPE → causal grouped-query
 * attention over the KV cache → o_proj → residual, RMSNorm → SwiGLU MLP → residual, and
 * finally RMSNorm → classifier. Hooks run at the sq_forward_point places. */
#include "forward/forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forward/matmul.h"

static void run_hook(sq_run_state *s, sq_forward_point point, int32_t layer, float *data, int32_t rows,
                     int32_t cols) {
    if (s->hooks.fn != NULL) {
        s->hooks.fn(s->hooks.context, point, layer, data, rows, cols);
    }
}

void sq_rmsnorm(float *y, const float *x, const float *gain, int32_t rows, int32_t n, float eps) {
    for (int32_t r = 0; r < rows; r++) {
        const float *xr = x + (int64_t)r * n;
        float *yr = y + (int64_t)r * n;
        double sum_squares = 0.0;
        for (int32_t i = 0; i < n; i++) {
            sum_squares += (double)xr[i] * (double)xr[i];
        }
        float inverse_rms = (float)(1.0 / sqrt(sum_squares / n + (double)eps));
        for (int32_t i = 0; i < n; i++) {
            yr[i] = gain != NULL ? gain[i] * (inverse_rms * xr[i]) : inverse_rms * xr[i];
        }
    }
}

static sq_status alloc_floats(float **out, size_t count, const char *name, sq_error *err) {
    *out = calloc(count, sizeof(float));
    if (*out == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %zu bytes for the run state's %s",
                            count * sizeof(float), name);
    }
    return SQ_OK;
}

sq_status sq_run_state_create(const sq_model *model, int32_t capacity, int32_t max_batch, sq_threadpool *pool,
                              sq_run_state **out, sq_error *err) {
    const sq_config *c = &model->config;
    if (capacity <= 0 || max_batch <= 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid run state size: capacity %d, batch %d; expected positive values",
                            capacity, max_batch);
    }
    sq_run_state *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the run state");
    }
    s->model = model;
    s->pool = pool;
    s->capacity = capacity;
    s->max_batch = max_batch;

    size_t batch = (size_t)max_batch;
    size_t q_dim = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t kv_dim = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    size_t cache = (size_t)c->n_layers * (size_t)capacity * kv_dim;
    size_t half = (size_t)c->head_dim / 2;
    sq_status status;
    if ((status = alloc_floats(&s->x, batch * (size_t)c->dim, "residual stream", err)) ||
        (status = alloc_floats(&s->xb, batch * (size_t)c->dim, "normalized stream", err)) ||
        (status = alloc_floats(&s->q, batch * q_dim, "queries", err)) ||
        (status = alloc_floats(&s->k, batch * kv_dim, "keys", err)) ||
        (status = alloc_floats(&s->v, batch * kv_dim, "values", err)) ||
        (status = alloc_floats(&s->attn, batch * q_dim, "attention output", err)) ||
        (status = alloc_floats(&s->hb, batch * (size_t)c->hidden_dim, "MLP gate", err)) ||
        (status = alloc_floats(&s->hb2, batch * (size_t)c->hidden_dim, "MLP up", err)) ||
        (status = alloc_floats(&s->scores, batch * (size_t)c->n_heads * (size_t)capacity, "attention scores", err)) ||
        (status = alloc_floats(&s->key_cache, cache, "key cache", err)) ||
        (status = alloc_floats(&s->value_cache, cache, "value cache", err)) ||
        (status = alloc_floats(&s->rope_cos, (size_t)capacity * half, "RoPE table", err)) ||
        (status = alloc_floats(&s->rope_sin, (size_t)capacity * half, "RoPE table", err)) ||
        (status = alloc_floats(&s->logits, batch * (size_t)c->vocab_size, "logits", err))) {
        sq_run_state_free(s);
        return status;
    }

    /* Pair i of a head turns by position * theta^(-2i / head_dim); computed in double once. */
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

void sq_run_state_free(sq_run_state *s) {
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
    free(s->scores);
    free(s->key_cache);
    free(s->value_cache);
    free(s->rope_cos);
    free(s->rope_sin);
    free(s->logits);
    free(s);
}

/* Rotates each adjacent pair (x[2i], x[2i+1]) of every head in rows of width n_heads*head_dim. */
static void apply_rope(const sq_run_state *s, float *x, int32_t n_tokens, int32_t position, int32_t n_heads) {
    int32_t head_dim = s->model->config.head_dim;
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

typedef struct attention_task {
    sq_run_state *s;
    int32_t layer;
    int32_t n_tokens;
    int32_t position;
} attention_task;

/* One task is one (token, query head) pair: softmax(q·Kᵀ/√d) over positions 0..pos, times V. */
static void attention_task_run(void *context, int task_index, int n_tasks) {
    const attention_task *t = context;
    sq_run_state *s = t->s;
    const sq_config *c = &s->model->config;
    int32_t head_dim = c->head_dim;
    int32_t kv_dim = c->n_kv_heads * head_dim;
    int32_t q_dim = c->n_heads * head_dim;
    int32_t group = c->n_heads / c->n_kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
    int32_t per_task = (t->n_tokens * c->n_heads + n_tasks - 1) / n_tasks;

    for (int32_t item = task_index * per_task; item < (task_index + 1) * per_task && item < t->n_tokens * c->n_heads;
         item++) {
        int32_t b = item / c->n_heads;
        int32_t h = item % c->n_heads;
        int32_t pos = t->position + b;
        const float *q = s->q + (int64_t)b * q_dim + (int64_t)h * head_dim;
        const float *keys = s->key_cache + (int64_t)t->layer * s->capacity * kv_dim + (int64_t)(h / group) * head_dim;
        const float *values = s->value_cache + (int64_t)t->layer * s->capacity * kv_dim + (int64_t)(h / group) * head_dim;
        float *scores = s->scores + (int64_t)item * s->capacity;

        float max_score = -INFINITY;
        for (int32_t p = 0; p <= pos; p++) {
            float score = sq_dot_f32(q, keys + (int64_t)p * kv_dim, head_dim) * scale;
            scores[p] = score;
            max_score = score > max_score ? score : max_score;
        }
        float sum = 0.0f;
        for (int32_t p = 0; p <= pos; p++) {
            scores[p] = expf(scores[p] - max_score);
            sum += scores[p];
        }

        float *out = s->attn + (int64_t)b * q_dim + (int64_t)h * head_dim;
        memset(out, 0, (size_t)head_dim * sizeof(float));
        for (int32_t p = 0; p <= pos; p++) {
            float weight = scores[p] / sum;
            const float *v = values + (int64_t)p * kv_dim;
            for (int32_t i = 0; i < head_dim; i++) {
                out[i] += weight * v[i];
            }
        }
    }
}

static sq_status check_batch(const sq_run_state *s, int32_t n_tokens, int32_t position, sq_error *err) {
    if (n_tokens < 1 || n_tokens > s->max_batch) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid batch of %d tokens, expected 1 to %d", n_tokens,
                            s->max_batch);
    }
    if (position < 0 || position > s->capacity - n_tokens) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "positions %d..%lld exceed the context of %d tokens; shorten the prompt or the generation",
                            position, (long long)position + n_tokens - 1, s->capacity);
    }
    return SQ_OK;
}

sq_status sq_forward_embed(sq_run_state *s, const int32_t *tokens, int32_t n_tokens, sq_error *err) {
    const sq_config *c = &s->model->config;
    if (n_tokens < 1 || n_tokens > s->max_batch) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid batch of %d tokens, expected 1 to %d", n_tokens,
                            s->max_batch);
    }
    for (int32_t b = 0; b < n_tokens; b++) {
        if (tokens[b] < 0 || tokens[b] >= c->vocab_size) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG, "token id %d at batch index %d is outside the vocabulary of %d",
                                tokens[b], b, c->vocab_size);
        }
    }
    for (int32_t b = 0; b < n_tokens; b++) {
        memcpy(s->x + (int64_t)b * c->dim, s->model->token_embedding + (int64_t)tokens[b] * c->dim,
               (size_t)c->dim * sizeof(float));
    }
    return SQ_OK;
}

sq_status sq_forward_layer(sq_run_state *s, int32_t l, int32_t n_tokens, int32_t position, sq_error *err) {
    const sq_config *c = &s->model->config;
    sq_status status = check_batch(s, n_tokens, position, err);
    if (status != SQ_OK) {
        return status;
    }
    if (l < 0 || l >= c->n_layers) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid layer %d, expected 0 to %d", l, c->n_layers - 1);
    }
    const sq_layer_weights *w = &s->model->layers[l];
    int32_t dim = c->dim;
    int32_t q_dim = c->n_heads * c->head_dim;
    int32_t kv_dim = c->n_kv_heads * c->head_dim;
    int32_t hidden = c->hidden_dim;

    /* ---- attention: projections and RoPE ---- */
    sq_rmsnorm(s->xb, s->x, w->attn_norm, n_tokens, dim, c->norm_eps);
    run_hook(s, SQ_POINT_ATTN_INPUT, l, s->xb, n_tokens, dim);
    sq_matmul_f32_parallel(s->pool, s->q, s->xb, w->wq, n_tokens, dim, q_dim);
    sq_matmul_f32_parallel(s->pool, s->k, s->xb, w->wk, n_tokens, dim, kv_dim);
    sq_matmul_f32_parallel(s->pool, s->v, s->xb, w->wv, n_tokens, dim, kv_dim);
    apply_rope(s, s->q, n_tokens, position, c->n_heads);
    apply_rope(s, s->k, n_tokens, position, c->n_kv_heads);
    run_hook(s, SQ_POINT_QUERY, l, s->q, n_tokens, q_dim);
    run_hook(s, SQ_POINT_KEY, l, s->k, n_tokens, kv_dim);
    run_hook(s, SQ_POINT_VALUE, l, s->v, n_tokens, kv_dim);

    /* ---- attention: cache update and scores ---- */
    float *layer_keys = s->key_cache + (int64_t)l * s->capacity * kv_dim;
    float *layer_values = s->value_cache + (int64_t)l * s->capacity * kv_dim;
    memcpy(layer_keys + (int64_t)position * kv_dim, s->k, (size_t)n_tokens * kv_dim * sizeof(float));
    memcpy(layer_values + (int64_t)position * kv_dim, s->v, (size_t)n_tokens * kv_dim * sizeof(float));
    attention_task task = {s, l, n_tokens, position};
    int n_items = n_tokens * c->n_heads;
    int max_tasks = 16 * sq_threadpool_size(s->pool);
    sq_threadpool_run(s->pool, attention_task_run, &task, n_items < max_tasks ? n_items : max_tasks);

    /* ---- attention: output projection and residual ---- */
    run_hook(s, SQ_POINT_ATTN_OUTPUT, l, s->attn, n_tokens, q_dim);
    sq_matmul_f32_parallel(s->pool, s->xb, s->attn, w->wo, n_tokens, q_dim, dim);
    for (int64_t i = 0; i < (int64_t)n_tokens * dim; i++) {
        s->x[i] += s->xb[i];
    }

    /* ---- MLP: SwiGLU and residual ---- */
    sq_rmsnorm(s->xb, s->x, w->ffn_norm, n_tokens, dim, c->norm_eps);
    run_hook(s, SQ_POINT_MLP_INPUT, l, s->xb, n_tokens, dim);
    sq_matmul_f32_parallel(s->pool, s->hb, s->xb, w->w_gate, n_tokens, dim, hidden);
    sq_matmul_f32_parallel(s->pool, s->hb2, s->xb, w->w_up, n_tokens, dim, hidden);
    for (int64_t i = 0; i < (int64_t)n_tokens * hidden; i++) {
        float gate = s->hb[i];
        s->hb[i] = gate / (1.0f + expf(-gate)) * s->hb2[i];
    }
    run_hook(s, SQ_POINT_DOWN_INPUT, l, s->hb, n_tokens, hidden);
    sq_matmul_f32_parallel(s->pool, s->xb, s->hb, w->w_down, n_tokens, hidden, dim);
    for (int64_t i = 0; i < (int64_t)n_tokens * dim; i++) {
        s->x[i] += s->xb[i];
    }
    return SQ_OK;
}

void sq_forward_logits(sq_run_state *s, int32_t n_tokens, sq_logits_mode mode) {
    const sq_model *m = s->model;
    const sq_config *c = &m->config;
    if (mode == SQ_LOGITS_NONE) {
        return;
    }
    int32_t first = mode == SQ_LOGITS_LAST ? n_tokens - 1 : 0;
    int32_t rows = n_tokens - first;
    sq_rmsnorm(s->xb, s->x + (int64_t)first * c->dim, m->final_norm, rows, c->dim, c->norm_eps);
    run_hook(s, SQ_POINT_CLASSIFIER_INPUT, -1, s->xb, rows, c->dim);
    sq_matmul_f32_parallel(s->pool, s->logits, s->xb, m->classifier, rows, c->dim, c->vocab_size);
}

sq_status sq_forward(sq_run_state *s, const int32_t *tokens, int32_t n_tokens, int32_t position, sq_logits_mode mode,
                     sq_error *err) {
    sq_status status = check_batch(s, n_tokens, position, err);
    if (status == SQ_OK) {
        status = sq_forward_embed(s, tokens, n_tokens, err);
    }
    for (int32_t l = 0; status == SQ_OK && l < s->model->config.n_layers; l++) {
        status = sq_forward_layer(s, l, n_tokens, position, err);
    }
    if (status == SQ_OK) {
        sq_forward_logits(s, n_tokens, mode);
    }
    return status;
}
