/* A run of the integer runtime over one prepared .spq model: activation buffers, the quantized
 * KV cache and the forward pass, with the same calling convention as sq_forward (batches of
 * consecutive tokens, logits of the last token or of all). One model can serve several
 * sessions. */
#ifndef SQ_RUNTIME_RT_SESSION_H
#define SQ_RUNTIME_RT_SESSION_H

#include <stdint.h>

#include "core/status.h"
#include "core/threadpool.h"
#include "eval/perplexity.h"
#include "forward/forward.h"
#include "runtime/rt_kv_cache.h"
#include "runtime/rt_model.h"
#include "runtime/rt_quantize.h"

/* Wall-clock seconds spent per part of the forward pass, summed over calls while profiling.
 * matmul covers activation quantization and the integer products of the layers; classifier
 * covers the final product with the vocabulary table (and the tied transform). attention
 * covers RoPE, the KV cache and the attention weights. other covers norms, SwiGLU, the
 * embedding and residual additions. */
typedef struct sq_rt_profile {
    double matmul;
    double classifier;
    double hadamard;
    double attention;
    double other;
} sq_rt_profile;

typedef struct sq_rt_session {
    const sq_rt_model *model;  /* not owned */
    sq_threadpool *pool;       /* not owned; NULL runs serially */
    int32_t capacity;          /* positions the KV cache can store */
    int32_t max_batch;         /* tokens per sq_rt_forward call */

    float *x;       /* (max_batch, dim) residual stream */
    float *xb;      /* (max_batch, dim) normalized stream and projection output */
    float *q;       /* (max_batch, n_heads · head_dim) */
    float *k;       /* (max_batch, n_kv_heads · head_dim) */
    float *v;       /* (max_batch, n_kv_heads · head_dim) */
    float *attn;    /* (max_batch, n_heads · head_dim) */
    float *hb;      /* (max_batch, hidden_dim) */
    float *hb2;     /* (max_batch, hidden_dim) */
    float *z;       /* (max_batch, dim) classifier input after the tied transform */
    int16_t *z_codes; /* (max_batch, dim) int16 codes of the classifier input */
    float *z_scales;  /* (max_batch) scales of z_codes */
    float *scores;  /* (max_batch, n_heads, capacity) attention weights */
    float *logits;  /* (max_batch, vocab_size) */
    float *rope_cos; /* (capacity, head_dim / 2) */
    float *rope_sin;
    float *head_scratch;      /* (attention tasks, SQ_RT_ATTENTION_TILE · head_dim) dequantized rows */
    float *hadamard_scratch;  /* scratch of the R3 and R4 plans */
    int32_t attention_tasks;

    sq_rt_act act;            /* quantized activations of the current product */
    int32_t *dots;            /* int32 scratch of sq_rt_qmatmul */
    sq_rt_kv_cache kv;

    size_t allocated_bytes;
    int profiling;            /* 1: add timings to profile */
    sq_rt_profile profile;
} sq_rt_session;

sq_status sq_rt_session_create(const sq_rt_model *model, int32_t capacity, int32_t max_batch, sq_threadpool *pool,
                               sq_rt_session **out, sq_error *err);

void sq_rt_session_free(sq_rt_session *session);

/* Runs n_tokens tokens (1..max_batch) at positions position..position + n_tokens - 1, as
 * sq_forward does. Their keys and values are appended to the cache, and logits go to
 * session->logits as mode selects. Fails on token ids outside the vocabulary and positions past
 * the capacity. */
sq_status sq_rt_forward(sq_rt_session *session, const int32_t *tokens, int32_t n_tokens, int32_t position,
                        sq_logits_mode mode, sq_error *err);

/* Windowed perplexity with the protocol of sq_perplexity_evaluate (non-overlapping windows
 * from an empty cache, positions 1..window-1 averaged). */
sq_status sq_rt_perplexity(sq_rt_session *session, const int32_t *tokens, size_t n_tokens, int32_t window,
                           int64_t max_windows, sq_perplexity_progress_fn progress, void *user_data,
                           sq_perplexity_result *result, sq_error *err);

/* Returns the bytes the session allocated (activations, scores, KV cache). */
size_t sq_rt_session_bytes(const sq_rt_session *session);

#endif
