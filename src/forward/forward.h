/* The fp32 forward pass of a Llama block stack over a batch of consecutive tokens, with a KV
 * cache. Weights (sq_model), run state (activations and KV cache, sq_run_state) and the
 * optional hooks that simulate quantization are kept separate, so one model can serve
 * several states. */
#ifndef SQ_FORWARD_FORWARD_H
#define SQ_FORWARD_FORWARD_H

#include <stdint.h>

#include "core/status.h"
#include "core/threadpool.h"
#include "model/model.h"

/* Points in a block where a hook may rewrite activations in place (quantize, rotate). */
typedef enum sq_forward_point {
    SQ_POINT_ATTN_INPUT = 0,       /* normalized input of q, k, v: (batch, dim) */
    SQ_POINT_QUERY = 1,            /* queries after RoPE: (batch, n_heads * head_dim) */
    SQ_POINT_KEY = 2,              /* keys after RoPE, before they enter the cache: (batch, n_kv_heads * head_dim) */
    SQ_POINT_VALUE = 3,            /* values before they enter the cache: (batch, n_kv_heads * head_dim) */
    SQ_POINT_ATTN_OUTPUT = 4,      /* input of o_proj: (batch, n_heads * head_dim) */
    SQ_POINT_MLP_INPUT = 5,        /* normalized input of gate and up: (batch, dim) */
    SQ_POINT_DOWN_INPUT = 6,       /* input of down_proj: (batch, hidden_dim) */
    SQ_POINT_CLASSIFIER_INPUT = 7, /* normalized input of the classifier: (batch, dim) */
    SQ_POINT_COUNT = 8,
} sq_forward_point;

/* Rewrites data (rows, cols) in place at point of layer (-1 for the classifier input). */
typedef void (*sq_forward_hook_fn)(void *context, sq_forward_point point, int32_t layer, float *data,
                                   int32_t rows, int32_t cols);

typedef struct sq_forward_hooks {
    sq_forward_hook_fn fn; /* NULL: plain fp32 */
    void *context;
} sq_forward_hooks;

typedef enum sq_logits_mode {
    SQ_LOGITS_NONE = 0, /* skip the classifier (filling the cache only) */
    SQ_LOGITS_LAST = 1, /* logits of the last token of the batch only, in row 0 */
    SQ_LOGITS_ALL = 2,  /* logits of every token of the batch */
} sq_logits_mode;

typedef struct sq_run_state {
    const sq_model *model;  /* not owned */
    sq_threadpool *pool;    /* not owned; NULL runs serially */
    sq_forward_hooks hooks;
    int32_t capacity;       /* positions the KV cache holds */
    int32_t max_batch;      /* tokens per sq_forward call */

    float *x;           /* (max_batch, dim) residual stream */
    float *xb;          /* (max_batch, dim) normalized residual stream, and scratch of width dim */
    float *q;           /* (max_batch, n_heads * head_dim) */
    float *k;           /* (max_batch, n_kv_heads * head_dim) */
    float *v;           /* (max_batch, n_kv_heads * head_dim) */
    float *attn;        /* (max_batch, n_heads * head_dim) attention output */
    float *hb;          /* (max_batch, hidden_dim) gate, then SwiGLU output */
    float *hb2;         /* (max_batch, hidden_dim) up */
    float *scores;      /* (capacity) attention weights of one head */
    float *key_cache;   /* (n_layers, capacity, n_kv_heads * head_dim) */
    float *value_cache; /* (n_layers, capacity, n_kv_heads * head_dim) */
    float *rope_cos;    /* (capacity, head_dim / 2) */
    float *rope_sin;    /* (capacity, head_dim / 2) */
    float *logits;      /* (max_batch, vocab_size) */
} sq_run_state;

sq_status sq_run_state_create(const sq_model *model, int32_t capacity, int32_t max_batch, sq_threadpool *pool,
                              sq_run_state **out, sq_error *err);

void sq_run_state_free(sq_run_state *state);

/* Runs n_tokens tokens (1..max_batch) at positions position..position+n_tokens-1, appending
 * their keys and values to the cache (earlier positions must already be there) and writing
 * logits to state->logits as mode says. Fails on token ids outside the vocabulary and on
 * positions past the cache capacity. */
sq_status sq_forward(sq_run_state *state, const int32_t *tokens, int32_t n_tokens, int32_t position,
                     sq_logits_mode mode, sq_error *err);

/* The three stages of sq_forward, for callers that work layer by layer (GPTQ calibration):
 * the embedding fills state->x; a layer transforms state->x in place and appends to that
 * layer's KV cache; the classifier reads state->x. */
sq_status sq_forward_embed(sq_run_state *state, const int32_t *tokens, int32_t n_tokens, sq_error *err);
sq_status sq_forward_layer(sq_run_state *state, int32_t layer, int32_t n_tokens, int32_t position, sq_error *err);
void sq_forward_logits(sq_run_state *state, int32_t n_tokens, sq_logits_mode mode);

/* y = x / rms(x) * gain for each of rows rows of width n; gain may be NULL for a unit gain. */
void sq_rmsnorm(float *y, const float *x, const float *gain, int32_t rows, int32_t n, float eps);

#endif
