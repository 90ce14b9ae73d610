/* Causal grouped-query attention over the quantized KV cache. One task is one (token, KV head)
 * pair: cached key and value rows are dequantized a tile of positions at a time and used by
 * every query head of the group. Scores, softmax and the weighted sum follow the fp32 path's
 * operations in the same order, so equal inputs give equal outputs. */
#include "runtime/rt_attention.h"

#include <math.h>
#include <string.h>

#include "forward/matmul.h"

typedef struct attention_task {
    sq_rt_session *s;
    int32_t layer;
    int32_t n_tokens;
    int32_t position;
} attention_task;

/* Attention of one token and one KV head; rows holds SQ_RT_ATTENTION_TILE · head_dim floats. */
static void attend(const attention_task *t, int32_t item, float *rows) {
    sq_rt_session *s = t->s;
    const sq_config *c = &s->model->spq.config;
    int32_t head_dim = c->head_dim;
    int32_t q_dim = c->n_heads * head_dim;
    int32_t group = c->n_heads / c->n_kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
    int32_t b = item / c->n_kv_heads;
    int32_t kv_head = item % c->n_kv_heads;
    int32_t pos = t->position + b;
    float *scores_of_head = s->scores + ((int64_t)b * c->n_heads + (int64_t)kv_head * group) * s->capacity;

    /* ---- scores of every query head of the group ---- */
    for (int32_t p0 = 0; p0 <= pos; p0 += SQ_RT_ATTENTION_TILE) {
        int32_t n = pos + 1 - p0 < SQ_RT_ATTENTION_TILE ? pos + 1 - p0 : SQ_RT_ATTENTION_TILE;
        sq_rt_kv_load_keys(&s->kv, t->layer, p0, n, kv_head, rows);
        for (int32_t j = 0; j < group; j++) {
            const float *q = s->q + (int64_t)b * q_dim + (int64_t)(kv_head * group + j) * head_dim;
            float *scores = scores_of_head + (int64_t)j * s->capacity;
            for (int32_t i = 0; i < n; i++) {
                scores[p0 + i] = sq_dot_f32(q, rows + (int64_t)i * head_dim, head_dim) * scale;
            }
        }
    }

    /* ---- softmax, normalized when the weights are used ---- */
    float sums[SQ_RT_ATTENTION_MAX_GROUP];
    for (int32_t j = 0; j < group; j++) {
        float *scores = scores_of_head + (int64_t)j * s->capacity;
        float max_score = -INFINITY;
        for (int32_t p = 0; p <= pos; p++) {
            max_score = scores[p] > max_score ? scores[p] : max_score;
        }
        float sum = 0.0f;
        for (int32_t p = 0; p <= pos; p++) {
            scores[p] = expf(scores[p] - max_score);
            sum += scores[p];
        }
        sums[j] = sum;
        memset(s->attn + (int64_t)b * q_dim + (int64_t)(kv_head * group + j) * head_dim, 0,
               (size_t)head_dim * sizeof(float));
    }

    /* ---- weighted sum of the values ---- */
    for (int32_t p0 = 0; p0 <= pos; p0 += SQ_RT_ATTENTION_TILE) {
        int32_t n = pos + 1 - p0 < SQ_RT_ATTENTION_TILE ? pos + 1 - p0 : SQ_RT_ATTENTION_TILE;
        sq_rt_kv_load_values(&s->kv, t->layer, p0, n, kv_head, rows);
        for (int32_t j = 0; j < group; j++) {
            const float *scores = scores_of_head + (int64_t)j * s->capacity;
            float *out = s->attn + (int64_t)b * q_dim + (int64_t)(kv_head * group + j) * head_dim;
            for (int32_t i = 0; i < n; i++) {
                float weight = scores[p0 + i] / sums[j];
                const float *v = rows + (int64_t)i * head_dim;
                for (int32_t d = 0; d < head_dim; d++) {
                    out[d] += weight * v[d];
                }
            }
        }
    }
}

static void attention_task_run(void *context, int task_index, int n_tasks) {
    const attention_task *t = context;
    sq_rt_session *s = t->s;
    const sq_config *c = &s->model->spq.config;
    int32_t items = t->n_tokens * c->n_kv_heads;
    float *rows = s->head_scratch + (size_t)task_index * SQ_RT_ATTENTION_TILE * (size_t)c->head_dim;
    int32_t begin = (int32_t)((int64_t)items * task_index / n_tasks);
    int32_t end = (int32_t)((int64_t)items * (task_index + 1) / n_tasks);
    for (int32_t item = begin; item < end; item++) {
        attend(t, item, rows);
    }
}

void sq_rt_attention(sq_rt_session *s, int32_t layer, int32_t n_tokens, int32_t position) {
    const sq_config *c = &s->model->spq.config;
    attention_task task = {s, layer, n_tokens, position};
    int32_t items = n_tokens * c->n_kv_heads;
    int n_tasks = items < s->attention_tasks ? items : s->attention_tasks;
    sq_threadpool_run(s->pool, attention_task_run, &task, n_tasks);
}
